"""The two ends of the link as pure state machines: bytes in, bytes and events out.

Theory of operation
-------------------
The programmer opens a session with a Noise KK handshake (session.py). The pump answers only a
programmer whose key is on its allow-list, and its answer carries a :class:`SessionGrant`: the
first command counter the session may use. Every request then travels sealed, with a counter that
must be higher than any the pump accepted before, in this session or any earlier one.

On the pump (:class:`PumpEndpoint`, one per pump, and a :class:`PumpConnection` per link), a frame
goes through these checks in order; the first that fails refuses the frame, changes nothing,
tells the handler (``on_refused``) and counts a failure for the rate limiter:

    =====================  =========================================  ===================
    check                  refusal reason                             answer
    =====================  =========================================  ===================
    rate limit             RATE_LIMITED                               silence
    framing, CRC           MALFORMED_FRAME                            plaintext REFUSAL
    handshake              UNKNOWN_KEY                                plaintext REFUSAL
    session exists         NO_SESSION                                 plaintext REFUSAL
    AEAD, nonce            NOT_AUTHENTIC                              plaintext REFUSAL
    decoding               MALFORMED_MESSAGE                          sealed Refused
    request id             REQUEST_ID_REUSED (same id, other body)    sealed Refused
    counter                REPLAYED_COUNTER                           sealed Refused
    role                   ROLE_FORBIDDEN                             sealed Refused
    high-risk, one step    NEEDS_PREPARE                              sealed Refused
    commit's challenge     BAD_COMMIT                                 sealed Refused
    =====================  =========================================  ===================

Then the handler applies the request. A command's answer is kept by request id: a retransmission
(same id and body, same counter, or a fresh counter) gets the kept answer and is not applied again.

High-risk commands (``HIGH_RISK_COMMANDS``) go in two steps. ``Prepare(command)``: the handler
checks the command on a copy (``handler.prepare``, nothing changes) and the pump answers
``Prepared`` with the summary and a fresh challenge (``random_bytes``, passed in) bound to this
session, the peer's key, the request id and the request's digest, valid ``CHALLENGE_LIFETIME_S``
on the clock passed in. ``Commit(request_id, challenge)`` applies exactly the prepared command,
once; a wrong challenge burns the prepared command, and a commit's kept answer is given again
only in its own session (a retransmission), so a recorded commit is useless later. Prepared
commands live in RAM only: a restart forgets them.

The persistent part of the pump's link state (counter ceiling, kept answers) is a JSON dict:
:meth:`PumpEndpoint.state_to_dict`; the pump stores it in its memory image whenever the handler's
``save_link_state`` is called, *before* returning. Counters jump ahead after a restart, as
OSCORE's appendix B.1.1 does: the stored value is a ceiling above every counter accepted since
the last save, so no counter is accepted twice even if the pump loses power between saves.

On the programmer (:class:`ProgrammerConnection`), requests are numbered from the grant; a
retransmission re-seals the same envelope. The asyncio client (transport.py) adds timeouts and
retries and reports a command whose answer never came as ``uncertain``, to be settled from the
pump's event log by :func:`resolve_uncertain`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from itb.telemetry.codec import (
    CodecError,
    Frame,
    FrameBuffer,
    FrameError,
    FrameType,
    decode_grant,
    decode_request,
    decode_response,
    encode_frame,
    encode_grant,
    encode_json,
    encode_request,
    encode_response,
)
from itb.telemetry.messages import (
    CHALLENGE_BYTES,
    HIGH_RISK_COMMANDS,
    JSON,
    MAX_COUNTER,
    Accepted,
    Command,
    Commit,
    EventLogPage,
    Interrogate,
    LogRecord,
    PatientBolusRequest,
    Prepare,
    Prepared,
    ReadEventLog,
    Refused,
    Rejected,
    Request,
    RequestEnvelope,
    Response,
    ResponseEnvelope,
    SessionGrant,
    StatusReport,
)
from itb.telemetry.session import (
    KEY_BYTES,
    MAX_PLAINTEXT_BYTES,
    InitiatorHandshake,
    SecureChannel,
    SessionError,
    respond,
)

COUNTER_RESERVE = 64  # counters accepted between two saves of the ceiling (OSCORE B.1.1)
MAX_KEPT_ANSWERS = 32  # command answers kept for retransmissions
MAX_PAIRED_KEYS = 16  # bounds the trial decryption of a handshake
LINK_STATE_FORMAT = 1
CHALLENGE_LIFETIME_S = 60.0  # a prepared command must be committed within this (clock passed in)
MAX_PENDING_PREPARES = 8  # prepared, uncommitted commands held at once (oldest dropped)


class Role(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"


# What each role may ask; the clinician may ask everything. Deny by default.
PATIENT_REQUESTS: frozenset[type[Request]] = frozenset({Interrogate, PatientBolusRequest})


def role_allows(role: Role, request: Request) -> bool:
    if role is Role.CLINICIAN:
        return True
    if role is Role.PATIENT:
        return type(request) in PATIENT_REQUESTS
    return False


class LinkStateError(ValueError):
    """A stored link state or allow-list that cannot be read; names the field."""


def key_id_of(public_key: bytes) -> str:
    """A short, stable name for a public key in logs (first 8 bytes of its SHA-256, in hex)."""
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True, slots=True)
class PairedKey:
    """One entry of the pump's allow-list, installed at pairing."""

    public_key: bytes
    role: Role
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != KEY_BYTES:
            raise LinkStateError(f"public_key: expected {KEY_BYTES} bytes")
        if not isinstance(self.role, Role):
            try:
                object.__setattr__(self, "role", Role(self.role))
            except ValueError:
                raise LinkStateError(f"role={self.role!r}: expected clinician or patient") from None

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def to_dict(self) -> dict[str, JSON]:
        return {"public_key": self.public_key.hex(), "role": self.role.value, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PairedKey:
        try:
            public_hex, role, label = data["public_key"], data["role"], data.get("label", "")
        except KeyError as missing:
            raise LinkStateError(f"paired key: missing {missing}") from None
        if not isinstance(public_hex, str) or not isinstance(label, str):
            raise LinkStateError("paired key: public_key and label must be strings")
        try:
            public_key = bytes.fromhex(public_hex)
        except ValueError:
            raise LinkStateError("paired key: public_key is not hex") from None
        return cls(public_key, role, label)  # type: ignore[arg-type]  # checked in __post_init__


# Refusals and the rate limiter -------------------------------------------------------------
class RefusalReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    MALFORMED_FRAME = "malformed_frame"
    UNEXPECTED_FRAME = "unexpected_frame"
    UNKNOWN_KEY = "unknown_key"
    NO_SESSION = "no_session"
    NOT_AUTHENTIC = "not_authentic"
    MALFORMED_MESSAGE = "malformed_message"
    REQUEST_ID_REUSED = "request_id_reused"
    REPLAYED_COUNTER = "replayed_counter"
    ROLE_FORBIDDEN = "role_forbidden"
    NEEDS_PREPARE = "needs_prepare"
    BAD_COMMIT = "bad_commit"


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """What the pump should log about a refused frame (never sent to the peer)."""

    reason: RefusalReason
    detail: str
    key_id: str | None = None
    role: Role | None = None
    request_type: str | None = None
    request_id: str | None = None
    failures_total: int = 0
    dropped_since_last_report: int = 0

    def to_log_data(self) -> dict[str, JSON]:
        """The ``data`` of the pump's event-log entry (kind ``"link_refused"``)."""
        data: dict[str, JSON] = {"reason": self.reason.value, "detail": self.detail}
        for name in ("key_id", "request_type", "request_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.role is not None:
            data["role"] = self.role.value
        data["failures_total"] = self.failures_total
        if self.dropped_since_last_report:
            data["dropped_since_last_report"] = self.dropped_since_last_report
        return data


@dataclass(slots=True)
class FailureLimiter:
    """Exponential back-off after repeated failures, pure: the caller passes ``now_s`` in.

    ``free_failures`` failures in a row cost nothing; each further one blocks the link for
    ``base_delay_s * 2**k`` (capped at ``max_delay_s``). One authenticated success resets it.
    """

    free_failures: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    consecutive_failures: int = 0
    blocked_until_s: float = float("-inf")

    def record_failure(self, now_s: float) -> None:
        self.consecutive_failures += 1
        extra = self.consecutive_failures - self.free_failures
        if extra > 0:
            delay_s = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(extra - 1, 30))
            self.blocked_until_s = max(self.blocked_until_s, now_s + delay_s)

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.blocked_until_s = float("-inf")

    def retry_after_s(self, now_s: float) -> float:
        """Seconds the link stays blocked from ``now_s`` (0 when open)."""
        return max(0.0, self.blocked_until_s - now_s)


# The pump side ------------------------------------------------------------------------------
class PumpHandler(Protocol):
    """What the pump process plugs in. All three are called synchronously by the endpoint."""

    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        """Apply ``request`` (already authenticated, role-checked and de-duplicated).

        Return :class:`StatusReport` for Interrogate, :class:`EventLogPage` for ReadEventLog and
        :class:`Accepted` for an applied command. A refused command may return :class:`Rejected`
        or raise a ``ValueError`` with ``.field`` and ``.reason`` (the firmware's
        ``CommandRejected``); either way it must have changed nothing. An applied command must
        be recorded in the event log with ``data["request_id"]`` (see :func:`resolve_uncertain`).
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


@dataclass(frozen=True, slots=True)
class _KeptAnswer:
    key_id: str
    counter: int
    digest: str
    response: Response
    stored: str  # the encoded answer, kept so a save does not re-encode every answer
    session: bytes = b""  # a commit's session (handshake hash); RAM only, empty after a restart


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A prepared, not yet committed high-risk command (RAM only)."""

    session: bytes
    key_id: str
    digest: str
    command: Command
    answer: Prepared
    expires_at_s: float


def _digest(request: Request) -> str:
    return hashlib.sha256(encode_json(request.to_wire())).hexdigest()[:32]


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
            raise LinkStateError(f"static_private: expected {KEY_BYTES} bytes")
        self._static_private = static_private
        self.handler = handler
        self._random_bytes = random_bytes
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()
        self.limiter = limiter or FailureLimiter()
        self.failures_total = 0
        self._dropped_while_blocked = 0
        self._reported_block_until_s = float("-inf")
        self._paired: dict[bytes, PairedKey] = {}
        self.set_paired_keys(paired_keys)
        self._counter_ceiling = 0
        self._kept: OrderedDict[str, _KeptAnswer] = OrderedDict()
        if state is not None:
            self._load_state(state)
        # Jump ahead: every counter up to the stored ceiling may have been used before a restart.
        self.last_counter = self._counter_ceiling

    def set_paired_keys(self, paired_keys: Sequence[PairedKey]) -> None:
        """Replace the allow-list (after pairing or unpairing)."""
        if len(paired_keys) > MAX_PAIRED_KEYS:
            raise LinkStateError(f"paired_keys: at most {MAX_PAIRED_KEYS}")
        self._paired = {k.public_key: k for k in paired_keys}

    def connection(self) -> PumpConnection:
        return PumpConnection(self)

    def retry_after_s(self, now_s: float) -> float:
        return self.limiter.retry_after_s(now_s)

    # Persistent state ----------------------------------------------------------------------
    def state_to_dict(self) -> dict[str, JSON]:
        return {
            "format": LINK_STATE_FORMAT,
            "counter_ceiling": self._counter_ceiling,
            "kept_answers": [
                {
                    "request_id": request_id,
                    "key_id": kept.key_id,
                    "counter": kept.counter,
                    "digest": kept.digest,
                    "response": kept.stored,
                }
                for request_id, kept in self._kept.items()
            ],
        }

    def _load_state(self, state: Mapping[str, object]) -> None:
        if state.get("format") != LINK_STATE_FORMAT:
            raise LinkStateError(f"link state: format must be {LINK_STATE_FORMAT}")
        ceiling = state.get("counter_ceiling")
        if isinstance(ceiling, bool) or not isinstance(ceiling, int):
            raise LinkStateError("link state: counter_ceiling must be an integer")
        if not 0 <= ceiling <= MAX_COUNTER:
            raise LinkStateError(f"link state: counter_ceiling outside 0 to {MAX_COUNTER}")
        kept_list = state.get("kept_answers", [])
        if not isinstance(kept_list, list):
            raise LinkStateError("link state: kept_answers must be a list")
        kept: OrderedDict[str, _KeptAnswer] = OrderedDict()
        for i, item in enumerate(kept_list[-MAX_KEPT_ANSWERS:]):
            try:
                stored = str(item["response"])
                envelope = decode_response(stored.encode("ascii"))
                kept[str(item["request_id"])] = _KeptAnswer(
                    str(item["key_id"]),
                    int(item["counter"]),
                    str(item["digest"]),
                    envelope.response,
                    stored,
                )
            except (CodecError, KeyError, TypeError, ValueError, AttributeError):
                raise LinkStateError(f"link state: kept_answers[{i}] is malformed") from None
        self._counter_ceiling = ceiling
        self._kept = kept

    def _save(self) -> None:
        self.handler.save_link_state(self.state_to_dict())

    # Used by PumpConnection ------------------------------------------------------------------
    def _refuse(self, report: RefusalReport, now_s: float) -> None:
        self.failures_total += 1
        self.limiter.record_failure(now_s)
        self.handler.on_refused(_with_total(report, self.failures_total))

    def _paired_keys(self) -> list[bytes]:
        return list(self._paired)

    def _take_prepared(
        self, commit: Commit, session: bytes, peer: PairedKey, now_s: float
    ) -> _Prepared | str:
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

    def _accept_counter(self, counter: int) -> None:
        if counter > self._counter_ceiling:
            self._counter_ceiling = min(MAX_COUNTER, counter + COUNTER_RESERVE)
            self._save()  # before the command acts, so a restart never reuses this counter
        self.last_counter = counter


def _with_total(report: RefusalReport, total: int) -> RefusalReport:
    return RefusalReport(
        report.reason,
        report.detail,
        report.key_id,
        report.role,
        report.request_type,
        report.request_id,
        total,
        report.dropped_since_last_report,
    )


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
        endpoint = self._endpoint
        dropped = self._frames.buffered_bytes
        self._frames = FrameBuffer()
        if not dropped:
            return
        endpoint._dropped_while_blocked += 1
        blocked_until_s = endpoint.limiter.blocked_until_s
        if endpoint._reported_block_until_s != blocked_until_s:  # one log entry per blocked spell
            endpoint._reported_block_until_s = blocked_until_s
            endpoint.handler.on_refused(
                RefusalReport(
                    RefusalReason.RATE_LIMITED,
                    f"link blocked for {endpoint.retry_after_s(now_s):.1f} s after failures",
                    failures_total=endpoint.failures_total,
                    dropped_since_last_report=endpoint._dropped_while_blocked,
                )
            )
            endpoint._dropped_while_blocked = 0

    def _refuse_plain(self, reason: RefusalReason, detail: str, now_s: float) -> bytes:
        key = self.peer
        self._endpoint._refuse(
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
        endpoint = self._endpoint
        try:
            pending = respond(endpoint._static_private, endpoint._paired_keys(), body)
        except SessionError as error:
            # The current session, if any, stays as it was: a forged handshake changes nothing.
            endpoint._refuse(RefusalReport(RefusalReason.UNKNOWN_KEY, str(error)), now_s)
            return encode_frame(FrameType.REFUSAL, b"")
        grant = SessionGrant(min(MAX_COUNTER, endpoint.last_counter + 1))
        message, channel = pending.reply(encode_grant(grant))
        self._channel = channel
        self.peer = endpoint._paired[pending.initiator_public]
        endpoint.limiter.record_success()
        return encode_frame(FrameType.HANDSHAKE_REPLY, message)

    def _on_request(
        self, plaintext: bytes, channel: SecureChannel, peer: PairedKey, now_s: float
    ) -> bytes:
        endpoint = self._endpoint

        def refuse(
            reason: RefusalReason, detail: str, counter: int, request: Request | None
        ) -> bytes:
            endpoint._refuse(
                RefusalReport(
                    reason,
                    detail,
                    peer.key_id,
                    peer.role,
                    _logged_type(request),
                    request.request_id if isinstance(request, Command | Prepare) else None,
                ),
                now_s,
            )
            return self._seal(channel, ResponseEnvelope(counter, Refused()))

        try:
            envelope = decode_request(plaintext)
        except CodecError as error:
            return refuse(RefusalReason.MALFORMED_MESSAGE, str(error), 0, None)
        request, counter = envelope.request, envelope.counter
        session = channel.handshake_hash

        if isinstance(request, Command) and type(request) not in HIGH_RISK_COMMANDS:
            kept = endpoint._kept.get(request.request_id)
            if kept is not None:
                if kept.key_id != peer.key_id or kept.digest != _digest(request):
                    return refuse(
                        RefusalReason.REQUEST_ID_REUSED,
                        "request id already used for another request",
                        counter,
                        request,
                    )
                if isinstance(request, Commit) and kept.session != session:
                    return refuse(
                        RefusalReason.BAD_COMMIT,
                        "commit replayed outside the session that prepared it",
                        counter,
                        request,
                    )
                if counter != kept.counter and counter <= endpoint.last_counter:
                    return refuse(
                        RefusalReason.REPLAYED_COUNTER,
                        f"counter {counter} already used",
                        counter,
                        request,
                    )
                if counter > endpoint.last_counter:
                    endpoint._accept_counter(counter)
                endpoint.limiter.record_success()
                # A retransmission: the first answer again, the command not applied twice.
                return self._seal(channel, ResponseEnvelope(counter, kept.response))

        if counter <= endpoint.last_counter:
            return refuse(
                RefusalReason.REPLAYED_COUNTER,
                f"counter {counter} is not above {endpoint.last_counter}",
                counter,
                request,
            )
        if not role_allows(peer.role, request):
            return refuse(
                RefusalReason.ROLE_FORBIDDEN,
                f"{peer.role.value} may not {request.type_name}",
                counter,
                request,
            )

        if type(request) in HIGH_RISK_COMMANDS:
            return refuse(
                RefusalReason.NEEDS_PREPARE,
                f"{request.type_name} must be prepared and committed, not sent in one step",
                counter,
                request,
            )
        if isinstance(request, Prepare):
            return self._on_prepare(request, counter, session, peer, now_s, refuse)
        applied: Request = request
        if isinstance(request, Commit):
            taken = endpoint._take_prepared(request, session, peer, now_s)
            if isinstance(taken, str):
                return refuse(RefusalReason.BAD_COMMIT, taken, counter, request)
            applied = taken.command

        endpoint._accept_counter(counter)
        endpoint.limiter.record_success()
        response = _apply(endpoint.handler, applied, peer)
        if isinstance(request, Command):
            stored = encode_response(ResponseEnvelope(counter, response)).decode("ascii")
            endpoint._kept[request.request_id] = _KeptAnswer(
                peer.key_id,
                counter,
                _digest(request),
                response,
                stored,
                session if isinstance(request, Commit) else b"",
            )
            while len(endpoint._kept) > MAX_KEPT_ANSWERS:
                endpoint._kept.popitem(last=False)
            endpoint._save()
        return self._seal(channel, ResponseEnvelope(counter, response))

    def _on_prepare(
        self,
        request: Prepare,
        counter: int,
        session: bytes,
        peer: PairedKey,
        now_s: float,
        refuse: Callable[[RefusalReason, str, int, Request | None], bytes],
    ) -> bytes:
        """Check the command on the handler's dry run; answer the summary and a challenge."""
        endpoint = self._endpoint
        channel = self._channel
        assert channel is not None
        command = request.command
        request_id = command.request_id
        digest = _digest(command)
        if request_id in endpoint._kept:
            return refuse(
                RefusalReason.REQUEST_ID_REUSED, "request id already used", counter, request
            )
        existing = endpoint._prepared.get(request_id)
        if existing is not None and existing.session == session and now_s <= existing.expires_at_s:
            if existing.key_id != peer.key_id or existing.digest != digest:
                return refuse(
                    RefusalReason.REQUEST_ID_REUSED,
                    "request id already prepared for another request",
                    counter,
                    request,
                )
            endpoint._accept_counter(counter)
            endpoint.limiter.record_success()
            return self._seal(channel, ResponseEnvelope(counter, existing.answer))  # asked again

        endpoint._accept_counter(counter)
        endpoint.limiter.record_success()
        try:
            summary = endpoint.handler.prepare(command, peer.role, peer.key_id)
        except ValueError as error:  # the firmware would refuse it: say why, keep nothing
            return self._seal(channel, ResponseEnvelope(counter, _rejected(command, error)))
        challenge = endpoint._random_bytes(CHALLENGE_BYTES)
        if len(challenge) != CHALLENGE_BYTES:
            raise ValueError(f"random_bytes gave {len(challenge)} bytes, not {CHALLENGE_BYTES}")
        answer = Prepared(request_id, challenge.hex(), CHALLENGE_LIFETIME_S, summary)
        if len(encode_response(ResponseEnvelope(counter, answer))) > MAX_PLAINTEXT_BYTES:
            trimmed: dict[str, JSON] = {"request": command.type_name, "trimmed": True}
            answer = Prepared(request_id, answer.challenge, CHALLENGE_LIFETIME_S, trimmed)
        endpoint._prepared.pop(request_id, None)
        endpoint._prepared[request_id] = _Prepared(
            session, peer.key_id, digest, command, answer, now_s + CHALLENGE_LIFETIME_S
        )
        while len(endpoint._prepared) > MAX_PENDING_PREPARES:
            endpoint._prepared.popitem(last=False)
        return self._seal(channel, ResponseEnvelope(counter, answer))

    @staticmethod
    def _seal(channel: SecureChannel, envelope: ResponseEnvelope) -> bytes:
        return encode_frame(FrameType.SEALED, channel.seal(_fit(envelope)))


_EXPECTED_RESPONSES: dict[type[Request], tuple[type[Response], ...]] = {
    Interrogate: (StatusReport,),
    ReadEventLog: (EventLogPage,),
}


def _logged_type(request: Request | None) -> str | None:
    """The request type a refusal is logged under: a prepare under the command it carries."""
    if isinstance(request, Prepare):
        return request.command.type_name
    return request.type_name if request else None


def _rejected(command: Command, error: ValueError) -> Rejected:
    field_name = str(getattr(error, "field", "request"))[:100] or "request"
    reason = str(getattr(error, "reason", error))[:500] or "refused"
    return Rejected(command.request_id, field_name, reason)


def _apply(handler: PumpHandler, request: Request, peer: PairedKey) -> Response:
    try:
        response = handler.handle(request, peer.role, peer.key_id)
    except ValueError as error:  # the firmware's CommandRejected is one
        if not isinstance(request, Command):
            return Refused()
        return _rejected(request, error)
    expected = _EXPECTED_RESPONSES.get(type(request), (Accepted, Rejected))
    if not isinstance(response, expected):
        raise TypeError(
            f"handler answered {request.type_name} with {type(response).__name__}; "
            f"expected {' or '.join(t.__name__ for t in expected)}"
        )
    if (
        isinstance(response, Accepted | Rejected)
        and isinstance(request, Command)
        and response.request_id != request.request_id
    ):
        raise TypeError("handler answered with another request's request_id")
    return response


def _fit(envelope: ResponseEnvelope) -> bytes:
    """Encode, trimming an event-log page from its end until it fits one frame."""
    encoded = encode_response(envelope)
    response = envelope.response
    while len(encoded) > MAX_PLAINTEXT_BYTES and isinstance(response, EventLogPage):
        if not response.entries:
            raise ValueError("an empty event-log page cannot exceed a frame")
        kept = response.entries[:-1]
        next_seq = kept[-1].seq if kept else response.entries[0].seq - 1
        response = EventLogPage(kept, max(0, next_seq), True, response.lost_count)
        encoded = encode_response(ResponseEnvelope(envelope.counter, response))
    if len(encoded) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"{response.type_name} answer larger than one frame")
    return encoded


# The programmer side ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionOpened:
    next_counter: int
    handshake_hash: bytes


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    detail: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    counter: int
    response: Response


@dataclass(frozen=True, slots=True)
class LinkRefused:
    """A plaintext refusal: the pump could not authenticate something we sent (or a forger)."""


@dataclass(frozen=True, slots=True)
class FrameDiscarded:
    detail: str


ProgrammerEvent = SessionOpened | HandshakeFailed | ResponseReceived | LinkRefused | FrameDiscarded


class ProgrammerConnection:
    """The programmer's end, pure. ``ephemeral_private`` is for test vectors only."""

    def __init__(self, static_private: bytes, pump_public: bytes) -> None:
        self._static_private = static_private
        self._pump_public = pump_public
        self._frames = FrameBuffer()
        self._handshake: InitiatorHandshake | None = None
        self._channel: SecureChannel | None = None
        self._next_counter = 0
        self._sent: dict[int, bytes] = {}  # counter -> encoded envelope, for retransmission

    @property
    def is_open(self) -> bool:
        return self._channel is not None

    def start_handshake(self) -> bytes:
        """Begin (or begin again) a session; send the returned frame."""
        self._handshake = InitiatorHandshake(self._static_private, self._pump_public)
        self._channel = None
        self._sent.clear()
        return encode_frame(FrameType.HANDSHAKE_INIT, self._handshake.first_message())

    def send(self, request: Request) -> tuple[int, bytes]:
        """Number ``request`` with the next counter; return the counter and the frame to send."""
        if self._channel is None:
            raise SessionError("no open session: handshake first")
        counter = self._next_counter
        if counter > MAX_COUNTER:
            raise SessionError("command counters exhausted")
        self._next_counter += 1
        plaintext = encode_request(RequestEnvelope(counter, request))
        self._sent[counter] = plaintext
        return counter, encode_frame(FrameType.SEALED, self._channel.seal(plaintext))

    def resend(self, counter: int) -> bytes:
        """The same request again (same counter and request id), sealed under a fresh nonce."""
        if self._channel is None or counter not in self._sent:
            raise SessionError(f"counter {counter} was not sent in this session")
        return encode_frame(FrameType.SEALED, self._channel.seal(self._sent[counter]))

    def forget(self, counter: int) -> None:
        self._sent.pop(counter, None)

    def receive_data(self, data: bytes) -> list[ProgrammerEvent]:
        self._frames.receive_data(data)
        events: list[ProgrammerEvent] = []
        while True:
            try:
                frame = self._frames.next_frame()
            except FrameError as error:
                events.append(FrameDiscarded(str(error)))
                continue
            if frame is None:
                return events
            events.append(self._on_frame(frame))

    def _on_frame(self, frame: Frame) -> ProgrammerEvent:
        if frame.type is FrameType.REFUSAL:
            return LinkRefused()
        if frame.type is FrameType.HANDSHAKE_REPLY:
            return self._on_reply(frame.body)
        if frame.type is not FrameType.SEALED or self._channel is None:
            return FrameDiscarded(f"unexpected {frame.type.name} frame")
        try:
            envelope = decode_response(self._channel.open(frame.body))
        except (SessionError, CodecError) as error:
            return FrameDiscarded(str(error))
        return ResponseReceived(envelope.counter, envelope.response)

    def _on_reply(self, body: bytes) -> ProgrammerEvent:
        handshake = self._handshake
        if handshake is None:
            return FrameDiscarded("handshake reply without a handshake")
        self._handshake = None  # a Noise handshake state is single-use, whatever happens next
        try:
            payload, channel = handshake.read_reply(body)
            grant = decode_grant(payload)
        except (SessionError, CodecError) as error:
            return HandshakeFailed(str(error))
        self._channel = channel
        self._next_counter = grant.next_counter
        return SessionOpened(grant.next_counter, channel.handshake_hash)


# Outcomes and their resolution ----------------------------------------------------------------
class Outcome(StrEnum):
    DONE = "done"  # applied, answer received
    REJECTED = "rejected"  # the firmware refused it; nothing changed
    REFUSED = "refused"  # the link refused it (role, replay, ...); nothing changed
    UNCERTAIN = "uncertain"  # sent, but no answer: maybe applied; resolve from the event log


@dataclass(frozen=True, slots=True)
class CommandResult:
    request_id: str
    outcome: Outcome
    response: Response | None = None
    detail: str = ""
    summary: dict[str, JSON] | None = None  # the pump's prepare summary (two-step commands)


class Resolution(StrEnum):
    APPLIED = "applied"
    NOT_APPLIED = "not_applied"
    UNKNOWN = "unknown"  # the entries that could say were lost from the pump's log ring


def resolve_uncertain(
    request_id: str, entries: Iterable[LogRecord], *, lost_count: int = 0
) -> Resolution:
    """Settle an uncertain command from the pump's event log read at a later session.

    The pump logs each applied command with ``data["request_id"]`` (and, if it logs refusals,
    ``data["outcome"] = "rejected"``). Read the whole log since before the command was sent.
    A command not found is NOT_APPLIED: its session is gone, so it can no longer be applied
    (the pump applies only what arrives in a live session, and the programmer never resends an
    uncertain command in a new session without asking the user). If the log ring overflowed
    (``lost_count > 0``), absence proves nothing: UNKNOWN.
    """
    found_rejected = False
    for entry in entries:
        if entry.data.get("request_id") != request_id:
            continue
        if entry.data.get("outcome", "applied") == "applied":
            return Resolution.APPLIED
        found_rejected = True
    if found_rejected:
        return Resolution.NOT_APPLIED
    return Resolution.UNKNOWN if lost_count > 0 else Resolution.NOT_APPLIED
