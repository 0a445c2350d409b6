"""The programmer's end of the link as a pure state machine: bytes in, events out.

Theory of operation
-------------------
:class:`ProgrammerConnection` starts a Noise KK handshake (session.py) with the pump's known key;
the pump's reply carries a ``SessionGrant``, the first command counter this session may use.
Requests are then numbered from the grant and sealed; a retransmission re-seals the same envelope
(same counter, same request id) under a fresh nonce, so the pump can answer it from its kept
answers instead of applying it twice. Whatever arrives comes out as a typed event
(:data:`ProgrammerEvent`): a session opened, a handshake failed, an answer, a plaintext refusal,
or a frame discarded. The asyncio client (``itb.link.transport``) adds timeouts and retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from itb.telemetry.codec import (
    CodecError,
    Frame,
    FrameBuffer,
    FrameError,
    FrameType,
    decode_grant,
    decode_response,
    encode_frame,
    encode_request,
)
from itb.telemetry.messages import RequestEnvelope
from itb.telemetry.requests import Request
from itb.telemetry.responses import Response
from itb.telemetry.session import InitiatorHandshake, SecureChannel, SessionError
from itb.telemetry.validation import MAX_COUNTER


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


MAX_OUTSTANDING_HANDSHAKES = 4  # handshakes a programmer may await at once (retries)

ProgrammerEvent = SessionOpened | HandshakeFailed | ResponseReceived | LinkRefused | FrameDiscarded


class ProgrammerConnection:
    """The programmer's end, pure."""

    def __init__(self, static_private: bytes, pump_public: bytes) -> None:
        self._static_private = static_private
        self._pump_public = pump_public
        self._frames = FrameBuffer()
        # Handshakes sent and not answered yet, oldest first: a retried handshake's reply may
        # come after the retry (a slow pump), and must not be taken for a forgery.
        self._handshakes: list[InitiatorHandshake] = []
        self._channel: SecureChannel | None = None
        self._next_counter = 0
        self._sent: dict[int, bytes] = {}  # counter -> encoded envelope, for retransmission

    @property
    def is_open(self) -> bool:
        return self._channel is not None

    def start_handshake(self) -> bytes:
        """Begin (or begin again) a session; send the returned frame."""
        handshake = InitiatorHandshake(self._static_private, self._pump_public)
        self._handshakes = [*self._handshakes, handshake][-MAX_OUTSTANDING_HANDSHAKES:]
        self._channel = None
        self._sent.clear()
        return encode_frame(FrameType.HANDSHAKE_INIT, handshake.first_message())

    @property
    def next_counter(self) -> int:
        """The counter the next :meth:`send` will use."""
        return self._next_counter

    def send(self, request: Request, *, counter: int | None = None) -> tuple[int, bytes]:
        """Number ``request`` with the next counter; return the counter and the frame to send.

        ``counter`` seals it under a counter of the caller's choosing instead, without moving
        the sequence: for attack tests and test vectors only (the pump refuses a reused one).
        """
        if self._channel is None:
            raise SessionError("no open session: handshake first")
        chosen = counter is not None
        counter = self._next_counter if counter is None else counter
        if counter > MAX_COUNTER:
            raise SessionError("command counters exhausted")
        if not chosen:
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
        """The pump answers handshakes in the order they were sent (some may be lost), so the
        reply is tried on the outstanding handshakes oldest first; each is single-use, so those
        it does not fit (their own replies were lost) are dropped on the way."""
        if not self._handshakes:
            return FrameDiscarded("handshake reply without a handshake")
        failure = "handshake reply failed authentication"
        while self._handshakes:
            handshake = self._handshakes.pop(0)
            try:
                payload, channel = handshake.read_reply(body)
                grant = decode_grant(payload)
            except (SessionError, CodecError) as error:
                failure = str(error)
                continue
            self._handshakes.clear()
            self._channel = channel
            self._next_counter = grant.next_counter
            return SessionOpened(grant.next_counter, channel.handshake_hash)
        return HandshakeFailed(failure)
