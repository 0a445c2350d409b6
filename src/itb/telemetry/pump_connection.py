"""One link to the pump, as a pure state machine: bytes in, bytes out (pump_endpoint.py holds
the endpoint it belongs to, the request checks and their table).

Theory of operation
-------------------
Per link the pump is in one of these states (docs/telemetry.md, section 10):

    =============  ===============================================  ==========================
    state          what the link has shown                          its refusals
    =============  ===============================================  ==========================
    new            nothing, or frames that failed                   counted (the ledger), the
                                                                    source backs off
    half-open      message 1 from a paired key, answered            counted, as above
    proved         a sealed frame that opened under the session     logged one by one, the
                                                                    link backs off
    =============  ===============================================  ==========================

A handshake on a proved link makes a *pending* session beside the proved one: the proved one
serves until a sealed frame opens under the new one (a replayed message 1 cannot end a live
session). The first sealed frame that proves a session is held back (``wants_session``) when
the caller says the session is not free (``may_open_session=False``): the server then waits for
the pump's one session and calls :meth:`PumpConnection.resume`, so unauthenticated work never
waits for, or holds, the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from itb.telemetry.admission import Promise
from itb.telemetry.codec import (
    CodecError,
    Frame,
    FrameBuffer,
    FrameError,
    FrameType,
    decode_request,
    encode_frame,
)
from itb.telemetry.messages import RequestEnvelope
from itb.telemetry.pairing import PairedKey
from itb.telemetry.pump_answers import fit_frame
from itb.telemetry.pump_endpoint import REQUEST_CHECKS, AnswerAgain, Incoming, Refuse
from itb.telemetry.rate_limit import fresh_limiter
from itb.telemetry.refusals import RefusalReason, RefusalReport
from itb.telemetry.requests import Command, Prepare, Request
from itb.telemetry.responses import Refused, Response
from itb.telemetry.session import SecureChannel, SessionError

if TYPE_CHECKING:
    from itb.telemetry.pump_endpoint import PumpEndpoint

REFUSAL_FRAME = encode_frame(FrameType.REFUSAL, b"")
MAX_PENDING_HANDSHAKES = 4  # answered handshakes a link may prove (a programmer's retries)


class PumpConnection:
    """One link to the pump. Feed it bytes with :meth:`receive_data`; send what it returns.

    Make it with :meth:`PumpEndpoint.connection`, tell it :meth:`close` when the link ends.
    ``closed`` set by the endpoint means: close this link (evicted to make room, or too many
    refused frames before a session was proved; :meth:`PumpEndpoint.take_evicted`).
    """

    def __init__(self, endpoint: PumpEndpoint, source: str | None, accepted_at_s: float) -> None:
        self._endpoint = endpoint
        self._source = source
        self._accepted_at_s = accepted_at_s
        self._frames = FrameBuffer()
        self._channel: SecureChannel | None = None  # the proved session
        self.peer: PairedKey | None = None  # its peer
        # Answered, not proved, newest last: a programmer whose reply was slow retries, and its
        # first sealed frame may prove any of its handshakes (programmer_endpoint.py).
        self._pending: list[tuple[SecureChannel, PairedKey]] = []
        self._held: tuple[bytes, SecureChannel, PairedKey] | None = None  # waits for the session
        self._limiter = fresh_limiter(endpoint.limiter_template)  # the proved session's back-off
        self._reported_block_until_s = float("-inf")
        self._dropped_while_blocked = 0
        self.unproved_failures = 0
        self.bytes_received = 0
        self.closed = False

    # What the server and the admission policy read ----------------------------------------
    @property
    def source(self) -> str | None:
        return self._source

    @property
    def accepted_at_s(self) -> float:
        return self._accepted_at_s

    @property
    def is_open(self) -> bool:
        """A proved session is open on this link."""
        return self._channel is not None

    @property
    def wants_session(self) -> bool:
        """A sealed frame proved a session; it waits for :meth:`resume`."""
        return self._held is not None

    @property
    def promise(self) -> Promise:
        """How far this unauthenticated link got (admission.py's eviction rank). A fresh
        handshake from a paired key outranks earlier refusals (a noisy link's lost frame)."""
        if self._pending or self._held is not None:
            return Promise.HALF_OPEN
        if self.unproved_failures:
            return Promise.REFUSED
        return Promise.TALKING

    def deadline_s(self) -> float | None:
        """When this link is closed unless it has talked (silent) or proved a session; None
        once it has proved one."""
        if self.is_open or self._held is not None:
            return None
        budget = self._endpoint.budget
        if self.bytes_received == 0:
            return self._accepted_at_s + budget.silent_s
        return self._accepted_at_s + budget.handshake_deadline_s

    def retry_after_s(self, now_s: float) -> float:
        """How long the proved session's back-off blocks this link (0 when open)."""
        return self._limiter.retry_after_s(now_s)

    def evict(self) -> None:
        """The endpoint closes this unauthenticated link to make room (admission.py)."""
        if not self.closed:
            self.closed = True
            self._endpoint.evicted(self)

    def close(self) -> None:
        """The link ended (closed by either side, or timed out)."""
        self.closed = True
        self._endpoint.forget(self, unproved_close=not self.is_open)

    # Bytes in, bytes out ---------------------------------------------------------------------
    def receive_data(self, data: bytes, now_s: float, *, may_open_session: bool = True) -> bytes:
        """Process every whole frame in ``data``; return the bytes to send back.

        ``may_open_session=False``: the pump's one session is taken; a frame that would prove a
        session here is held (``wants_session``) until :meth:`resume`.
        """
        if self.closed:
            return b""
        first = self.bytes_received == 0 and bool(data)
        self.bytes_received += len(data)
        self._frames.receive_data(data)
        out = self._drain(now_s, may_open_session)
        if first:
            self._endpoint.talked(self)  # after its frames: a handshake makes it half-open
        return out

    def resume(self, now_s: float) -> bytes:
        """The session is ours: prove the held session, answer its request and what followed."""
        if self._held is None:
            return b""
        plaintext, channel, peer = self._held
        self._held = None
        out = self._prove(plaintext, channel, peer, now_s)
        return out + self._drain(now_s, True)

    def _drain(self, now_s: float, may_open_session: bool) -> bytes:
        out = bytearray()
        while not self.closed and self._held is None:
            if self.is_open and self._limiter.retry_after_s(now_s) > 0.0:
                self._drop_blocked(now_s)
                break
            try:
                frame = self._frames.next_frame()
            except FrameError as error:
                if self._unproved_and_held_off(now_s):
                    self._endpoint.drop_unread(1)
                else:
                    out += self._refuse_plain(RefusalReason.MALFORMED_FRAME, str(error), now_s)
                continue
            if frame is None:
                break
            out += self._on_frame(frame, now_s, may_open_session)
        return bytes(out)

    def _drop_blocked(self, now_s: float) -> None:
        """While a proved link is blocked, its buffered input is dropped unread and unanswered;
        one RATE_LIMITED report per blocked spell."""
        if not self._frames.buffered_bytes:
            return
        self._frames = FrameBuffer()
        self._dropped_while_blocked += 1
        blocked_until_s = self._limiter.blocked_until_s
        if self._reported_block_until_s == blocked_until_s or self.peer is None:
            return
        self._reported_block_until_s = blocked_until_s
        self._endpoint.refuse_authenticated(
            RefusalReport(
                RefusalReason.RATE_LIMITED,
                f"link blocked for {self.retry_after_s(now_s):.1f} s after failures",
                self.peer.key_id,
                self.peer.role,
                dropped_since_last_report=self._dropped_while_blocked,
            )
        )
        self._dropped_while_blocked = 0

    def _unproved_and_held_off(self, now_s: float) -> bool:
        """Before a session is proved or answered, a backed-off source's frames are dropped
        unread (a handshake is always tried: it is how a paired programmer gets in)."""
        return (
            not self.is_open
            and not self._pending
            and self._endpoint.source_retry_after_s(self._source, now_s) > 0.0
        )

    def _on_frame(self, frame: Frame, now_s: float, may_open_session: bool) -> bytes:
        if frame.type is FrameType.HANDSHAKE_INIT:
            return self._on_handshake(frame.body, now_s)
        if self._unproved_and_held_off(now_s):
            self._endpoint.drop_unread(1)
            return b""
        if frame.type is not FrameType.SEALED:
            return self._refuse_plain(
                RefusalReason.UNEXPECTED_FRAME, f"{frame.type.name} is not for the pump", now_s
            )
        for channel, peer in reversed(self._pending):  # newest first
            try:
                plaintext = channel.open(frame.body)
            except SessionError:
                continue  # another handshake's, or a late frame of the proved session
            if not may_open_session:
                self._held = (plaintext, channel, peer)
                self._endpoint.forget(self)  # proved: no longer an unauthenticated link
                return b""
            return self._prove(plaintext, channel, peer, now_s)
        if self._channel is None or self.peer is None:
            reason = RefusalReason.NOT_AUTHENTIC if self._pending else RefusalReason.NO_SESSION
            return self._refuse_plain(reason, "sealed frame without a proved session", now_s)
        try:
            plaintext = self._channel.open(frame.body)
        except SessionError as error:
            return self._refuse_plain(RefusalReason.NOT_AUTHENTIC, str(error), now_s)
        return self._on_request(plaintext, self._channel, self.peer, now_s)

    def _on_handshake(self, body: bytes, now_s: float) -> bytes:
        if self._endpoint.seen_hello(body):  # a replay: answered without a DH or any state
            return self._refuse_plain(
                RefusalReason.STALE_HANDSHAKE, "handshake message already answered", now_s
            )
        try:
            message, channel, peer = self._endpoint.open_session(body)
        except SessionError as error:
            # The current session, if any, stays as it was: a forged handshake changes nothing.
            return self._refuse_plain(RefusalReason.UNKNOWN_KEY, str(error), now_s)
        # A proved session, if any, serves until one of these is proved.
        self._pending = [*self._pending, (channel, peer)][-MAX_PENDING_HANDSHAKES:]
        return encode_frame(FrameType.HANDSHAKE_REPLY, message)

    def _prove(
        self, plaintext: bytes, channel: SecureChannel, peer: PairedKey, now_s: float
    ) -> bytes:
        self._channel, self.peer, self._pending = channel, peer, []
        self._limiter = fresh_limiter(self._endpoint.limiter_template)
        self._endpoint.session_proved(self, now_s)
        return self._on_request(plaintext, channel, peer, now_s)

    def _refuse_plain(self, reason: RefusalReason, detail: str, now_s: float) -> bytes:
        """Refuse a frame with a plaintext REFUSAL: logged on a proved link; counted before."""
        if self.is_open and self.peer is not None:
            self._limiter.record_failure(now_s)
            report = RefusalReport(reason, detail, self.peer.key_id, self.peer.role)
            self._endpoint.refuse_authenticated(report)
            return REFUSAL_FRAME
        blocked = self._endpoint.source_retry_after_s(self._source, now_s) > 0.0
        self.unproved_failures += 1
        self._endpoint.refuse_unauthenticated(RefusalReport(reason, detail), self._source, now_s)
        if self.unproved_failures >= self._endpoint.budget.max_failures:
            self.evict()  # it has had its chances
        return b"" if blocked else REFUSAL_FRAME  # a backed-off source gets no answer

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
        response = self._endpoint.answer(incoming)
        self._limiter.record_success()
        return self._seal(channel, incoming.counter, response)

    def _answer_again(self, incoming: Incoming, verdict: AnswerAgain) -> Response:
        endpoint = self._endpoint
        if incoming.counter > endpoint.last_counter:
            endpoint.accept_counter(incoming.counter)
        self._limiter.record_success()
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
        self._limiter.record_failure(now_s)
        self._endpoint.refuse_authenticated(report)
        return self._seal(channel, counter, Refused())

    @staticmethod
    def _seal(channel: SecureChannel, counter: int, response: Response) -> bytes:
        return encode_frame(FrameType.SEALED, channel.seal(fit_frame(counter, response)))


def _logged_type(request: Request | None) -> str | None:
    """The request type a refusal is logged under: a prepare under the command it carries."""
    if isinstance(request, Prepare):
        return request.command.type_name
    return request.type_name if request else None
