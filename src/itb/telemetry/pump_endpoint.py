"""The pump's end of the link as a pure state machine: bytes in, bytes and events out.

Theory of operation
-------------------
The programmer opens a session with a Noise KK handshake (session.py). The pump answers only a
programmer whose key is on its allow-list (pairing.py), and its answer carries a
``SessionGrant``: the first command counter the session may use. Every request then travels
sealed, with a counter that must be higher than any the pump accepted before, in this session or
any earlier one (link_state.py keeps the ceiling across restarts).

A :class:`PumpEndpoint` (one per pump) serves a :class:`PumpConnection` per link. A frame first
goes through the frame checks, in this order, as :meth:`PumpConnection.receive_data` reads it:

    =====================  =========================================  ===================
    frame check            refusal reason                             answer
    =====================  =========================================  ===================
    rate limit             RATE_LIMITED                               silence
    framing, CRC           MALFORMED_FRAME                            plaintext REFUSAL
    handshake              UNKNOWN_KEY                                plaintext REFUSAL
    session exists         NO_SESSION                                 plaintext REFUSAL
    AEAD, nonce            NOT_AUTHENTIC                              plaintext REFUSAL
    decoding               MALFORMED_MESSAGE                          sealed Refused
    =====================  =========================================  ===================

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
handler (``on_refused``) and counts a failure for the rate limiter (rate_limit.py). A check may
instead answer at once without applying anything: a retransmission (same request id and body)
gets the command's kept answer, so it is applied exactly once.

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

import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from itb.telemetry.codec import (
    CodecError,
    Frame,
    FrameBuffer,
    FrameError,
    FrameType,
    decode_request,
    encode_frame,
    encode_grant,
    encode_response,
)
from itb.telemetry.link_state import (
    KeptAnswer,
    LinkState,
    PreparedCommand,
    request_digest,
)
from itb.telemetry.messages import RequestEnvelope, ResponseEnvelope, SessionGrant
from itb.telemetry.pairing import (
    MAX_PAIRED_KEYS,
    LinkStateError,
    PairedKey,
    Role,
    role_allows,
)
from itb.telemetry.pump_answers import apply_request, fit_frame, rejected
from itb.telemetry.rate_limit import FailureLimiter
from itb.telemetry.refusals import RefusalReason, RefusalReport, with_total
from itb.telemetry.requests import HIGH_RISK_COMMANDS, Command, Commit, Prepare, Request
from itb.telemetry.responses import Prepared, Refused, Response
from itb.telemetry.session import (
    KEY_BYTES,
    MAX_PLAINTEXT_BYTES,
    SecureChannel,
    SessionError,
    respond,
)
from itb.telemetry.validation import CHALLENGE_BYTES, JSON, MAX_COUNTER

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
        """Log a refused frame: ``firmware.record(now, "link_refused", report.to_log_data())``."""
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
class PumpEndpoint:
    """The pump's end of the link: allow-list, counters, kept answers and the rate limiter."""

    def __init__(
        self,
        static_private: bytes,
        paired_keys: Sequence[PairedKey],
        handler: PumpHandler,
        *,
        random_bytes: Callable[[int], bytes],
        state: Mapping[str, object] | None = None,
        limiter: FailureLimiter | None = None,
    ) -> None:
        """``random_bytes(n)`` draws the prepare/commit challenges (``os.urandom`` in the pump
        process; the endpoint itself draws no randomness)."""
        if len(static_private) != KEY_BYTES:
            raise LinkStateError("static_private", f"expected {KEY_BYTES} bytes")
        self._static_private = static_private
        self.handler = handler
        self._random_bytes = random_bytes
        self._prepared: OrderedDict[str, PreparedCommand] = OrderedDict()
        self.limiter = limiter or FailureLimiter()
        self.failures_total = 0
        self.handshakes = 0  # sessions opened (each one costs the implant's battery a charge)
        self._dropped_while_blocked = 0
        self._reported_block_until_s = float("-inf")
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

    def connection(self) -> PumpConnection:
        return PumpConnection(self)

    def retry_after_s(self, now_s: float) -> float:
        return self.limiter.retry_after_s(now_s)

    def state_to_dict(self) -> dict[str, JSON]:
        return self._state.to_dict()

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

    def refuse(self, report: RefusalReport, now_s: float) -> None:
        self.failures_total += 1
        self.limiter.record_failure(now_s)
        self.handler.on_refused(with_total(report, self.failures_total))

    def open_session(self, body: bytes) -> tuple[bytes, SecureChannel, PairedKey]:
        """Answer a handshake from a paired key: reply, channel, peer; SessionError if none."""
        pending = respond(self._static_private, list(self._paired), body)
        grant = SessionGrant(min(MAX_COUNTER, self.last_counter + 1))
        message, channel = pending.reply(encode_grant(grant))
        self.handshakes += 1
        self.limiter.record_success()
        return message, channel, self._paired[pending.initiator_public]

    def note_blocked_input(self, now_s: float) -> None:
        """Input dropped unread while blocked: one log entry per blocked spell."""
        self._dropped_while_blocked += 1
        blocked_until_s = self.limiter.blocked_until_s
        if self._reported_block_until_s == blocked_until_s:
            return
        self._reported_block_until_s = blocked_until_s
        self.handler.on_refused(
            RefusalReport(
                RefusalReason.RATE_LIMITED,
                f"link blocked for {self.retry_after_s(now_s):.1f} s after failures",
                failures_total=self.failures_total,
                dropped_since_last_report=self._dropped_while_blocked,
            )
        )
        self._dropped_while_blocked = 0

    # Acting on a request that passed every check ---------------------------------------------
    def answer(self, incoming: Incoming) -> Response:
        """Accept the request's counter and act: a prepare's dry run, or the handler's apply
        (a command's answer is kept and saved before it is sent)."""
        self.accept_counter(incoming.counter)
        self.limiter.record_success()
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


# One link ----------------------------------------------------------------------------------
class PumpConnection:
    """One link to the pump. Feed it bytes with :meth:`receive_data`; send what it returns."""

    def __init__(self, endpoint: PumpEndpoint) -> None:
        self._endpoint = endpoint
        self._frames = FrameBuffer()
        self._channel: SecureChannel | None = None
        self.peer: PairedKey | None = None

    @property
    def is_open(self) -> bool:
        return self._channel is not None

    def receive_data(self, data: bytes, now_s: float) -> bytes:
        """Process every whole frame in ``data``; return the bytes to send back."""
        self._frames.receive_data(data)
        out = bytearray()
        while True:
            if self._endpoint.retry_after_s(now_s) > 0.0:
                self._drop_blocked(now_s)
                return bytes(out)
            try:
                frame = self._frames.next_frame()
            except FrameError as error:
                out += self._refuse_plain(RefusalReason.MALFORMED_FRAME, str(error), now_s)
                continue
            if frame is None:
                return bytes(out)
            out += self._on_frame(frame, now_s)

    def _drop_blocked(self, now_s: float) -> None:
        """While the link is blocked, whole buffered input is dropped unread and unanswered."""
        dropped = self._frames.buffered_bytes
        self._frames = FrameBuffer()
        if dropped:
            self._endpoint.note_blocked_input(now_s)

    def _refuse_plain(self, reason: RefusalReason, detail: str, now_s: float) -> bytes:
        key = self.peer
        self._endpoint.refuse(
            RefusalReport(reason, detail, key.key_id if key else None, key.role if key else None),
            now_s,
        )
        return encode_frame(FrameType.REFUSAL, b"")

    def _on_frame(self, frame: Frame, now_s: float) -> bytes:
        if frame.type is FrameType.HANDSHAKE_INIT:
            return self._on_handshake(frame.body, now_s)
        if frame.type is not FrameType.SEALED:
            return self._refuse_plain(
                RefusalReason.UNEXPECTED_FRAME, f"{frame.type.name} is not for the pump", now_s
            )
        if self._channel is None or self.peer is None:
            return self._refuse_plain(
                RefusalReason.NO_SESSION, "sealed frame before a handshake", now_s
            )
        try:
            plaintext = self._channel.open(frame.body)
        except SessionError as error:
            return self._refuse_plain(RefusalReason.NOT_AUTHENTIC, str(error), now_s)
        return self._on_request(plaintext, self._channel, self.peer, now_s)

    def _on_handshake(self, body: bytes, now_s: float) -> bytes:
        try:
            message, channel, peer = self._endpoint.open_session(body)
        except SessionError as error:
            # The current session, if any, stays as it was: a forged handshake changes nothing.
            self._endpoint.refuse(RefusalReport(RefusalReason.UNKNOWN_KEY, str(error)), now_s)
            return encode_frame(FrameType.REFUSAL, b"")
        self._channel = channel
        self.peer = peer
        return encode_frame(FrameType.HANDSHAKE_REPLY, message)

    def _on_request(
        self, plaintext: bytes, channel: SecureChannel, peer: PairedKey, now_s: float
    ) -> bytes:
        try:
            envelope: RequestEnvelope = decode_request(plaintext)
        except CodecError as error:
            refusal = Refuse(RefusalReason.MALFORMED_MESSAGE, str(error))
            return self._refuse_sealed(channel, peer, 0, None, refusal, now_s)
        incoming = Incoming(
            self._endpoint, peer, channel.handshake_hash, envelope.counter, envelope.request, now_s
        )
        for check in REQUEST_CHECKS:
            verdict = check(incoming)
            if isinstance(verdict, Refuse):
                return self._refuse_sealed(
                    channel, peer, incoming.counter, incoming.request, verdict, now_s
                )
            if isinstance(verdict, AnswerAgain):
                return self._seal(channel, incoming.counter, self._answer_again(incoming, verdict))
        return self._seal(channel, incoming.counter, self._endpoint.answer(incoming))

    def _answer_again(self, incoming: Incoming, verdict: AnswerAgain) -> Response:
        endpoint = self._endpoint
        if incoming.counter > endpoint.last_counter:
            endpoint.accept_counter(incoming.counter)
        endpoint.limiter.record_success()
        return verdict.response

    def _refuse_sealed(
        self,
        channel: SecureChannel,
        peer: PairedKey,
        counter: int,
        request: Request | None,
        refusal: Refuse,
        now_s: float,
    ) -> bytes:
        report = RefusalReport(
            refusal.reason,
            refusal.detail,
            peer.key_id,
            peer.role,
            _logged_type(request),
            request.request_id if isinstance(request, Command | Prepare) else None,
        )
        self._endpoint.refuse(report, now_s)
        return self._seal(channel, counter, Refused())

    @staticmethod
    def _seal(channel: SecureChannel, counter: int, response: Response) -> bytes:
        return encode_frame(FrameType.SEALED, channel.seal(fit_frame(counter, response)))


def _logged_type(request: Request | None) -> str | None:
    """The request type a refusal is logged under: a prepare under the command it carries."""
    if isinstance(request, Prepare):
        return request.command.type_name
    return request.type_name if request else None
