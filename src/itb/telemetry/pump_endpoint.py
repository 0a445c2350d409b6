"""The pump's end of the link as a pure state machine: bytes in, bytes and events out.

Theory of operation
-------------------
The programmer opens a session with a Noise KK handshake (session.py). The pump answers only a
programmer whose key is on its allow-list (pairing.py), and its answer carries a
``SessionGrant``: the first command counter the session may use. Every request then travels
sealed, with a counter that must be higher than any the pump accepted before, in this session or
any earlier one (link_state.py keeps the ceiling across restarts).

A :class:`PumpEndpoint` (one per pump) serves a :class:`PumpConnection` per link
(pump_connection.py). A link is *unauthenticated* until its session is proved: message 1 from a
paired key gets the reply (the link is then *half-open*), and the first sealed frame that opens
under that session proves it (a recorded message 1 replays, but only the programmer holding its
ephemeral key can seal that frame). Only a proved session resets a back-off, counts as a
session, or is served; admission.py says what unauthenticated links may cost. A frame first
goes through the frame checks, in this order, as :meth:`PumpConnection.receive_data` reads it:

    =====================  =========================================  ===================
    frame check            refusal reason                             answer
    =====================  =========================================  ===================
    rate limit             RATE_LIMITED                               silence
    framing, CRC           MALFORMED_FRAME                            plaintext REFUSAL
    handshake not seen     STALE_HANDSHAKE                            plaintext REFUSAL
    handshake              UNKNOWN_KEY                                plaintext REFUSAL
    session exists         NO_SESSION                                 plaintext REFUSAL
    AEAD, nonce            NOT_AUTHENTIC                              plaintext REFUSAL
    decoding               MALFORMED_MESSAGE                          sealed Refused
    =====================  =========================================  ===================

The rate limit is per link once its session is proved (its frames are then dropped unread while
it is blocked, and one RATE_LIMITED is logged per blocked spell), and per source before: a
backed-off source's frames are dropped unread and unanswered, *except* a handshake and a sealed
frame on a half-open link, which are always tried, so the back-off never locks out a paired
programmer that completes a handshake. Refusals of unauthenticated work are counted and
summarised rather than logged one by one (refusals.py).

then a decoded request goes through ``REQUEST_CHECKS``, the functions named here, in this order
(a test holds this table and the tuple to the same order):

    ====================  =========================================  =========================
    request check         refusal reason                             or answered at once with
    ====================  =========================================  =========================
    retransmission        REQUEST_ID_REUSED, BAD_COMMIT,             the kept answer
                          REPLAYED_COUNTER
    fresh_counter         REPLAYED_COUNTER
    role_allowed          ROLE_FORBIDDEN
    prepared_first        NEEDS_PREPARE
    prepare_once          REQUEST_ID_REUSED                          the same Prepared again
    commit_challenge      BAD_COMMIT
    ====================  =========================================  =========================

The first check that fails refuses the request (sealed ``Refused``), changes nothing, tells the
handler (``on_refused``) and counts a failure for the link's rate limiter (rate_limit.py). A
check may instead answer at once without applying anything: a retransmission (same request id
and body) gets the command's kept answer, so it is applied exactly once.

Then the handler acts. High-risk commands (``HIGH_RISK_COMMANDS``) go in two steps.
``Prepare(command)``: the handler checks the command on a copy (``handler.prepare``, nothing
changes) and the pump answers ``Prepared`` with the summary and a fresh challenge
(``random_bytes``, passed in) bound to this session, the peer's key, the request id and the
request's digest, valid ``CHALLENGE_LIFETIME_S`` on the clock passed in. ``Commit(request_id,
challenge)`` applies exactly the prepared command, once; a wrong challenge burns the prepared
command, and a commit's kept answer is given again only in its own session (a retransmission),
so a recorded commit is useless later.

The handler's ``save_link_state`` is called with :meth:`PumpEndpoint.state_to_dict` whenever the
counter ceiling moves or an answer is kept, *before* the answer is sealed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from itb.telemetry.admission import PreAuthBudget, choose_evictions, oldest_silent
from itb.telemetry.codec import encode_grant, encode_response
from itb.telemetry.link_state import (
    KeptAnswer,
    LinkState,
    PreparedCommand,
    request_digest,
)
from itb.telemetry.messages import ResponseEnvelope, SessionGrant
from itb.telemetry.pairing import (
    MAX_PAIRED_KEYS,
    LinkStateError,
    PairedKey,
    Role,
    role_allows,
)
from itb.telemetry.pump_answers import apply_request, rejected
from itb.telemetry.rate_limit import FailureLimiter, SourceLimiters
from itb.telemetry.refusals import RefusalLedger, RefusalReason, RefusalReport, with_total
from itb.telemetry.requests import HIGH_RISK_COMMANDS, Command, Commit, Prepare, Request
from itb.telemetry.responses import Prepared, Response
from itb.telemetry.session import (
    KEY_BYTES,
    MAX_PLAINTEXT_BYTES,
    SecureChannel,
    respond,
)
from itb.telemetry.validation import CHALLENGE_BYTES, JSON, MAX_COUNTER

if TYPE_CHECKING:
    from itb.telemetry.pump_connection import PumpConnection

CHALLENGE_LIFETIME_S = 60.0  # a prepared command must be committed within this (clock passed in)
MAX_PENDING_PREPARES = 8  # prepared, uncommitted commands held at once (oldest dropped)


class PumpHandler(Protocol):
    """What the pump process plugs in. All four are called synchronously by the endpoint."""

    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        """Apply ``request`` (already authenticated, role-checked and de-duplicated).

        Return ``StatusReport`` for Interrogate, ``EventLogPage`` for ReadEventLog and
        ``Accepted`` for an applied command. A refused command may return ``Rejected`` or raise
        a ``ValueError`` with ``.field`` and ``.reason`` (the firmware's ``CommandRejected``);
        either way it must have changed nothing. An applied command must be recorded in the
        event log with ``data["request_id"]`` (see ``outcomes.resolve_uncertain``).
        """
        ...

    def prepare(self, command: Command, role: Role, key_id: str) -> dict[str, JSON]:
        """Check ``command`` as :meth:`handle` would, WITHOUT applying it; return the summary of
        what it would change (JSON; old and new values, units in the key names). Raise what
        :meth:`handle` raises for a refusal (``ValueError`` with ``.field``/``.reason``).
        Must change nothing the pump keeps (no therapy change, no log entry, no save)."""
        ...

    def on_refused(self, report: RefusalReport) -> None:
        """Log a refusal, or a summary of unauthenticated ones: ``firmware.record(now,
        report.log_kind, report.to_log_data())``. No memory write is needed (nor wanted: a
        peer without a key causes these); the entry is saved with the pump's next write."""
        ...

    def save_link_state(self, state: dict[str, JSON]) -> None:
        """Store ``state`` (JSON) in the pump's non-volatile memory before returning."""
        ...


# The request checks ------------------------------------------------------------------------
@dataclass(slots=True)
class Incoming:
    """One decoded, authenticated request on its way through ``REQUEST_CHECKS``."""

    endpoint: PumpEndpoint
    peer: PairedKey
    session: bytes  # the session's handshake hash
    counter: int
    request: Request
    now_s: float
    applied: Request | None = None  # set by commit_challenge: the command a commit applies


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: RefusalReason
    detail: str


@dataclass(frozen=True, slots=True)
class AnswerAgain:
    """Answered from memory, nothing applied: a kept answer, or the same Prepared again."""

    response: Response


Verdict = Refuse | AnswerAgain | None  # None: this check passes, go on to the next


def retransmission(incoming: Incoming) -> Verdict:
    """A command whose answer is kept gets that answer again, and is not applied twice."""
    request, endpoint = incoming.request, incoming.endpoint
    if not isinstance(request, Command) or type(request) in HIGH_RISK_COMMANDS:
        return None
    kept = endpoint.kept_answer(request.request_id)
    if kept is None:
        return None
    if kept.key_id != incoming.peer.key_id or kept.digest != request_digest(request):
        return Refuse(
            RefusalReason.REQUEST_ID_REUSED, "request id already used for another request"
        )
    if isinstance(request, Commit) and kept.session != incoming.session:
        return Refuse(
            RefusalReason.BAD_COMMIT, "commit replayed outside the session that prepared it"
        )
    if incoming.counter != kept.counter and incoming.counter <= endpoint.last_counter:
        return Refuse(RefusalReason.REPLAYED_COUNTER, f"counter {incoming.counter} already used")
    return AnswerAgain(kept.response)


def fresh_counter(incoming: Incoming) -> Verdict:
    """Every new request carries a counter above every one accepted before."""
    last = incoming.endpoint.last_counter
    if incoming.counter <= last:
        return Refuse(
            RefusalReason.REPLAYED_COUNTER, f"counter {incoming.counter} is not above {last}"
        )
    return None


def role_allowed(incoming: Incoming) -> Verdict:
    """The peer's role (clinician, patient) may send this request type."""
    role = incoming.peer.role
    if not role_allows(role, incoming.request):
        detail = f"{role.value} may not {incoming.request.type_name}"
        return Refuse(RefusalReason.ROLE_FORBIDDEN, detail)
    return None


def prepared_first(incoming: Incoming) -> Verdict:
    """A high-risk command travels only inside Prepare, then Commit."""
    name = incoming.request.type_name
    if type(incoming.request) in HIGH_RISK_COMMANDS:
        detail = f"{name} must be prepared and committed, not sent in one step"
        return Refuse(RefusalReason.NEEDS_PREPARE, detail)
    return None


def prepare_once(incoming: Incoming) -> Verdict:
    """A prepare's request id is new, or the same prepare asked again in its session."""
    request, endpoint = incoming.request, incoming.endpoint
    if not isinstance(request, Prepare):
        return None
    if endpoint.kept_answer(request.request_id) is not None:
        return Refuse(RefusalReason.REQUEST_ID_REUSED, "request id already used")
    existing = endpoint.prepared_command(request.request_id)
    if (
        existing is None
        or existing.session != incoming.session
        or incoming.now_s > existing.expires_at_s
    ):
        return None
    if existing.key_id != incoming.peer.key_id or existing.digest != request_digest(
        request.command
    ):
        detail = "request id already prepared for another request"
        return Refuse(RefusalReason.REQUEST_ID_REUSED, detail)
    return AnswerAgain(existing.answer)


def commit_challenge(incoming: Incoming) -> Verdict:
    """A commit names a command prepared in this session, in time, with its challenge."""
    request = incoming.request
    if not isinstance(request, Commit):
        return None
    taken = incoming.endpoint.take_prepared(
        request, incoming.session, incoming.peer, incoming.now_s
    )
    if isinstance(taken, str):
        return Refuse(RefusalReason.BAD_COMMIT, taken)
    incoming.applied = taken.command
    return None


RequestCheck = Callable[[Incoming], Verdict]
REQUEST_CHECKS: tuple[RequestCheck, ...] = (
    retransmission,
    fresh_counter,
    role_allowed,
    prepared_first,
    prepare_once,
    commit_challenge,
)


# The endpoint ------------------------------------------------------------------------------
MAX_REMEMBERED_HELLOS = 1024  # digests of answered handshake messages (RAM): replays are stale


class PumpEndpoint:
    """The pump's end of the link: allow-list, counters, kept answers, back-off and budgets."""

    def __init__(
        self,
        static_private: bytes,
        paired_keys: Sequence[PairedKey],
        handler: PumpHandler,
        *,
        random_bytes: Callable[[int], bytes],
        state: Mapping[str, object] | None = None,
        limiter: FailureLimiter | None = None,
        budget: PreAuthBudget | None = None,
    ) -> None:
        """``random_bytes(n)`` draws the prepare/commit challenges (``os.urandom`` in the pump
        process; the endpoint itself draws no randomness). ``limiter`` is the template of every
        back-off (one per proved link, one per source); ``budget`` what unauthenticated links
        may cost (admission.py)."""
        if len(static_private) != KEY_BYTES:
            raise LinkStateError("static_private", f"expected {KEY_BYTES} bytes")
        self._static_private = static_private
        self.handler = handler
        self._random_bytes = random_bytes
        self._prepared: OrderedDict[str, PreparedCommand] = OrderedDict()
        self.limiter_template = limiter or FailureLimiter()
        self.budget = budget or PreAuthBudget()
        self._sources = SourceLimiters(self.limiter_template)
        self._ledger = RefusalLedger()
        self._silent: list[PumpConnection] = []  # unauthenticated, nothing received yet
        self._talking: list[PumpConnection] = []  # unauthenticated, something received
        self._evicted: list[PumpConnection] = []
        self._hellos: OrderedDict[bytes, None] = OrderedDict()
        self.failures_total = 0
        self.handshakes = 0  # sessions proved (each one costs the implant's battery a charge)
        self._paired: dict[bytes, PairedKey] = {}
        self.set_paired_keys(paired_keys)
        self._state = LinkState() if state is None else LinkState.from_dict(state)
        # Jump ahead: every counter up to the stored ceiling may have been used before a restart.
        self.last_counter = self._state.counter_ceiling

    def set_paired_keys(self, paired_keys: Sequence[PairedKey]) -> None:
        """Replace the allow-list (after pairing or unpairing)."""
        if len(paired_keys) > MAX_PAIRED_KEYS:
            raise LinkStateError("paired_keys", f"at most {MAX_PAIRED_KEYS}")
        self._paired = {k.public_key: k for k in paired_keys}

    def connection(self, source: str | None = None, now_s: float = 0.0) -> PumpConnection:
        """A new link from ``source`` (a peer's address), accepted at ``now_s``. Always
        admitted: the links closed to make room are in :meth:`take_evicted`."""
        from itb.telemetry.pump_connection import PumpConnection  # a cycle: it imports us

        conn = PumpConnection(self, source, now_s)
        self._silent.append(conn)
        for victim in oldest_silent(self._silent, self.budget, now_s):
            victim.evict()
        return conn

    def talked(self, conn: PumpConnection) -> None:
        """``conn`` sent its first bytes (and they were processed): it now counts against the
        talking budgets, and the least promising talking links make room (admission.py)."""
        if conn not in self._silent:
            return
        self._silent.remove(conn)
        self._talking.append(conn)
        for victim in choose_evictions(self._talking, conn, self.budget):
            victim.evict()

    def evicted(self, conn: PumpConnection) -> None:
        self.forget(conn, unproved_close=True)
        self._evicted.append(conn)

    def take_evicted(self) -> list[PumpConnection]:
        """The links closed to make room since the last call (the caller closes them)."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def source_retry_after_s(self, source: str | None, now_s: float) -> float:
        """How long ``source``'s unauthenticated work stays backed off (0 when not)."""
        return self._sources.retry_after_s(source, now_s)

    @property
    def unauthenticated_links(self) -> int:
        return len(self._silent) + len(self._talking)

    def state_to_dict(self) -> dict[str, JSON]:
        return self._state.to_dict()

    def tick(self, now_s: float) -> None:
        """Log the summary of unauthenticated refusals once it is due (the server calls this
        every fraction of a second; nothing happens unless something was counted)."""
        self._log_summary(self._ledger.due(now_s, self.failures_total))

    # What the checks and the connection use ---------------------------------------------------
    def kept_answer(self, request_id: str) -> KeptAnswer | None:
        return self._state.kept.get(request_id)

    def prepared_command(self, request_id: str) -> PreparedCommand | None:
        return self._prepared.get(request_id)

    def take_prepared(
        self, commit: Commit, session: bytes, peer: PairedKey, now_s: float
    ) -> PreparedCommand | str:
        """The prepared command ``commit`` may apply (removed), or why not (for the log)."""
        prepared = self._prepared.get(commit.request_id)
        if prepared is None:
            return "no prepared command with this request id"
        if prepared.session != session or prepared.key_id != peer.key_id:
            return "the command was prepared in another session"
        del self._prepared[commit.request_id]  # from here on, one try only
        if now_s > prepared.expires_at_s:
            return f"challenge expired {now_s - prepared.expires_at_s:.1f} s ago"
        if not hmac.compare_digest(commit.challenge, prepared.answer.challenge):
            return "wrong challenge; the prepared command is dropped"
        return prepared

    def accept_counter(self, counter: int) -> None:
        if self._state.raise_ceiling(counter):
            self._save()  # before the command acts, so a restart never reuses this counter
        self.last_counter = counter

    def refuse_authenticated(self, report: RefusalReport) -> None:
        """A refusal on a proved session: logged as it is (only a paired key can cause it)."""
        self.failures_total += 1
        self.handler.on_refused(with_total(report, self.failures_total))

    def refuse_unauthenticated(
        self, report: RefusalReport, source: str | None, now_s: float
    ) -> None:
        """A refusal of unauthenticated work: the source backs off, the ledger counts it."""
        self.failures_total += 1
        self._sources.get(source).record_failure(now_s)
        to_log = self._ledger.note(with_total(report, self.failures_total), now_s)
        self._log_summary(to_log)

    def drop_unread(self, frames: int) -> None:
        """Frames of a backed-off source, dropped unread and unanswered: only counted."""
        self._ledger.note_dropped(frames)

    def seen_hello(self, body: bytes) -> bool:
        """Was this handshake message answered before (a replay)? A digest lookup, no DH."""
        return _hello_digest(body) in self._hellos

    def open_session(self, body: bytes) -> tuple[bytes, SecureChannel, PairedKey]:
        """Answer a handshake from a paired key: reply, channel, peer; SessionError if none.
        Nothing else moves: the session is not proved until a sealed frame opens under it."""
        pending = respond(self._static_private, list(self._paired), body)
        grant = SessionGrant(min(MAX_COUNTER, self.last_counter + 1))
        message, channel = pending.reply(encode_grant(grant))
        self._hellos[_hello_digest(body)] = None
        while len(self._hellos) > MAX_REMEMBERED_HELLOS:
            self._hellos.popitem(last=False)
        return message, channel, self._paired[pending.initiator_public]

    def session_proved(self, conn: PumpConnection, now_s: float) -> None:
        """``conn``'s session is proved: a session, its source's back-off reset, no longer
        unauthenticated; what the ledger counted is logged now, for the clinician to read."""
        self.handshakes += 1
        self._sources.get(conn.source).record_success()
        self.forget(conn)
        self._log_summary(self._ledger.due(now_s, self.failures_total, force=True))

    def forget(self, conn: PumpConnection, *, unproved_close: bool = False) -> None:
        """``conn`` is no longer unauthenticated (proved, or closed; ``unproved_close``: it
        closed without proving a session, which the ledger counts)."""
        for pool in (self._silent, self._talking):
            if conn in pool:
                pool.remove(conn)
                if unproved_close:
                    self._ledger.note_closed()

    def _log_summary(self, report: RefusalReport | None) -> None:
        if report is not None:
            self.handler.on_refused(report)

    # Acting on a request that passed every check ---------------------------------------------
    def answer(self, incoming: Incoming) -> Response:
        """Accept the request's counter and act: a prepare's dry run, or the handler's apply
        (a command's answer is kept and saved before it is sent)."""
        self.accept_counter(incoming.counter)
        request, peer = incoming.request, incoming.peer
        if isinstance(request, Prepare):
            return self._prepare(request, incoming)
        response = apply_request(self.handler, incoming.applied or request, peer)
        if isinstance(request, Command):
            stored = encode_response(ResponseEnvelope(incoming.counter, response)).decode("ascii")
            session = incoming.session if isinstance(request, Commit) else b""
            kept = KeptAnswer(
                peer.key_id, incoming.counter, request_digest(request), response, stored, session
            )
            self._state.keep(request.request_id, kept)
            self._save()
        return response

    def _prepare(self, request: Prepare, incoming: Incoming) -> Response:
        """Check the command on the handler's dry run; answer the summary and a challenge."""
        peer = incoming.peer
        command = request.command
        request_id = command.request_id
        try:
            summary = self.handler.prepare(command, peer.role, peer.key_id)
        except ValueError as error:  # the firmware would refuse it: say why, keep nothing
            return rejected(command, error)
        challenge = self._random_bytes(CHALLENGE_BYTES)
        if len(challenge) != CHALLENGE_BYTES:
            raise ValueError(f"random_bytes gave {len(challenge)} bytes, not {CHALLENGE_BYTES}")
        answer = Prepared(request_id, challenge.hex(), CHALLENGE_LIFETIME_S, summary)
        envelope = ResponseEnvelope(incoming.counter, answer)
        if len(encode_response(envelope)) > MAX_PLAINTEXT_BYTES:
            trimmed: dict[str, JSON] = {"request": command.type_name, "trimmed": True}
            answer = Prepared(request_id, answer.challenge, CHALLENGE_LIFETIME_S, trimmed)
        self._prepared.pop(request_id, None)
        self._prepared[request_id] = PreparedCommand(
            incoming.session, peer.key_id, request_digest(command), command, answer,
            incoming.now_s + CHALLENGE_LIFETIME_S,
        )  # fmt: skip
        while len(self._prepared) > MAX_PENDING_PREPARES:
            self._prepared.popitem(last=False)
        return answer

    def _save(self) -> None:
        self.handler.save_link_state(self.state_to_dict())


def _hello_digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()[:16]
