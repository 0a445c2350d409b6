"""Adapters that move the endpoints' bytes: an in-memory pipe with faults, and asyncio TCP.

This is the only telemetry module that does I/O or reads a clock. It holds no protocol rules:
the endpoints (endpoint.py) decide everything; here we only wait, retry and time out.

* :class:`Link` is the tiny transport interface (send, receive, close), as in httpcore's backends.
* :func:`memory_pipe` gives two linked ends; each direction may lose, corrupt (flip one bit) and
  delay chunks, from one seeded generator, so a lossy run replays exactly.
* :class:`ProgrammerClient` connects, handshakes, sends requests with retries and a timeout, and
  reports a command whose answer never came as ``uncertain``.
* :class:`PumpServer` serves a :class:`PumpEndpoint` over any link, one session at a time (like
  the pump's single radio), and slows a link the endpoint's rate limiter has blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from itb.errors import InputError
from itb.pump.status import PumpStatus
from itb.telemetry.messages import (
    HIGH_RISK_COMMANDS,
    MAX_LOG_PAGE,
    Accepted,
    Command,
    Commit,
    EventLogPage,
    Interrogate,
    LogRecord,
    Prepare,
    Prepared,
    ReadEventLog,
    Refused,
    Rejected,
    Request,
    Response,
    StatusReport,
    new_request_id,
)
from itb.telemetry.outcomes import CommandResult, Outcome, Resolution, resolve_uncertain
from itb.telemetry.programmer_endpoint import (
    HandshakeFailed,
    LinkRefused,
    ProgrammerConnection,
    ResponseReceived,
    SessionOpened,
)
from itb.telemetry.pump_endpoint import PumpEndpoint

READ_CHUNK_BYTES = 64 * 1024


class LinkError(Exception):
    """The link failed: closed, timed out, or the pump refused the session."""


class LinkClosedError(LinkError):
    """The other end is gone."""


class HandshakeRefusedError(LinkError):
    """The pump did not accept our key (not paired, or the wrong pump key)."""


class NoAnswerError(LinkError):
    """A request got no answer after every retry. ``sent`` says whether it left at all."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Link(Protocol):
    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes:
        """The next chunk of bytes; raises LinkClosedError when the other end has gone."""
        ...

    async def close(self) -> None: ...


# TCP ------------------------------------------------------------------------------------------
class TcpLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise LinkClosedError("connection closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as error:
            raise LinkClosedError(str(error)) from None

    async def receive(self) -> bytes:
        try:
            data = await self._reader.read(READ_CHUNK_BYTES)
        except (ConnectionError, OSError) as error:
            raise LinkClosedError(str(error)) from None
        if not data:
            raise LinkClosedError("connection closed by peer")
        return data

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def open_tcp_link(host: str, port: int, *, timeout_s: float = 5.0) -> TcpLink:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as error:
        raise LinkClosedError(f"cannot connect to {host}:{port}: {error}") from None
    return TcpLink(reader, writer)


# In-memory pipe with faults ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Impairment:
    """Faults on one direction of a pipe: probabilities per chunk, delays in seconds."""

    loss: float = 0.0
    corruption: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "corruption"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                value = getattr(self, name)
                raise InputError(name, "allowed 0 to 1", f"{name}={value}: allowed 0 to 1")
        for name in ("delay_s", "jitter_s"):
            if not 0.0 <= getattr(self, name) <= 60.0:
                value = getattr(self, name)
                raise InputError(name, "allowed 0 to 60 s", f"{name}={value}: allowed 0 to 60 s")


class PipeEnd:
    def __init__(self, rng: random.Random, impairment: Impairment) -> None:
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._rng = rng
        self._impairment = impairment
        self._peer: PipeEnd | None = None
        self._closed = False
        self.sent_chunks = 0
        self.lost_chunks = 0
        self.corrupted_chunks = 0

    async def send(self, data: bytes) -> None:
        if self._closed or self._peer is None or self._peer._closed:
            raise LinkClosedError("pipe closed")
        self.sent_chunks += 1
        rng, fault = self._rng, self._impairment
        if rng.random() < fault.loss:
            self.lost_chunks += 1
            return
        if data and rng.random() < fault.corruption:
            self.corrupted_chunks += 1
            flipped = bytearray(data)
            bit = rng.randrange(len(flipped) * 8)
            flipped[bit // 8] ^= 1 << (bit % 8)
            data = bytes(flipped)
        delay_s = fault.delay_s + rng.uniform(0.0, fault.jitter_s)
        peer = self._peer
        if delay_s > 0.0:
            asyncio.get_running_loop().call_later(delay_s, peer._deliver, data)
        else:
            peer._deliver(data)

    def _deliver(self, data: bytes | None) -> None:
        if not self._closed:
            self._inbox.put_nowait(data)

    async def receive(self) -> bytes:
        if self._closed:
            raise LinkClosedError("pipe closed")
        data = await self._inbox.get()
        if data is None:
            self._closed = True
            raise LinkClosedError("pipe closed by peer")
        return data

    async def close(self) -> None:
        if self._closed:
            return
        if self._peer is not None:
            self._peer._deliver(None)
        self._deliver(None)


def memory_pipe(
    seed: int,
    a_to_b: Impairment | None = None,
    b_to_a: Impairment | None = None,
) -> tuple[PipeEnd, PipeEnd]:
    """Two linked ends; all faults come from one generator seeded with ``seed``."""
    rng = random.Random(seed)
    a = PipeEnd(rng, a_to_b or Impairment())
    b = PipeEnd(rng, b_to_a or Impairment())
    a._peer, b._peer = b, a
    return a, b


# The programmer's client ------------------------------------------------------------------------
class ProgrammerClient:
    """An asyncio programmer session over one :class:`Link`.

    ``timeout_s`` is the wait for each answer and ``attempts`` the number of sends (the first and
    its retransmissions, same counter and request id). ``random_bytes`` draws request ids.
    """

    def __init__(
        self,
        link: Link,
        programmer_private: bytes,
        pump_public: bytes,
        *,
        timeout_s: float = 1.0,
        attempts: int = 4,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if timeout_s <= 0 or attempts < 1:
            raise ValueError("timeout_s must be more than 0 and attempts at least 1")
        self._link = link
        self._conn = ProgrammerConnection(programmer_private, pump_public)
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._random_bytes = random_bytes
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._superseded: set[int] = set()
        self._handshake: asyncio.Future[SessionOpened] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed_error: LinkError | None = None
        self.session: SessionOpened | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        programmer_private: bytes,
        pump_public: bytes,
        *,
        timeout_s: float = 1.0,
        attempts: int = 4,
    ) -> ProgrammerClient:
        """Open TCP to the pump and handshake; LinkError if either fails."""
        link = await open_tcp_link(host, port, timeout_s=max(timeout_s, 1.0))
        client = cls(link, programmer_private, pump_public, timeout_s=timeout_s, attempts=attempts)
        try:
            await client.handshake()
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> ProgrammerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def new_request_id(self) -> str:
        return new_request_id(self._random_bytes(16))

    async def handshake(self) -> SessionOpened:
        """Open a session; a lost handshake frame is retried with a fresh handshake."""
        self._start_reader()
        for _ in range(self._attempts):
            self._check_open()
            loop = asyncio.get_running_loop()
            self._handshake = loop.create_future()
            await self._send(self._conn.start_handshake())
            try:
                opened = await asyncio.wait_for(asyncio.shield(self._handshake), self._timeout_s)
            except TimeoutError:
                continue
            self.session = opened
            return opened
        raise NoAnswerError("the pump did not answer the handshake", sent=True)

    async def query(self, request: Request) -> Response:
        """A read-only request; LinkError if no answer came."""
        if isinstance(request, Command):
            raise TypeError("use command() for a state-changing request")
        return await self._exchange(request)

    async def command(self, request: Command) -> CommandResult:
        """A state-changing request: done, rejected, refused, or uncertain (sent, no answer).

        A high-risk command goes as :meth:`prepare` then :meth:`commit` (the result carries the
        pump's summary). Raises LinkError only when the command never left, or only its prepare
        did (it is then certainly not applied).
        """
        if type(request) in HIGH_RISK_COMMANDS:
            prepared = await self.prepare(request)
            if isinstance(prepared, CommandResult):
                return prepared
            return await self.commit(prepared)
        return await self.send_command(request)

    async def prepare(self, request: Command) -> Prepared | CommandResult:
        """Step one of a high-risk command: the pump checks it and changes nothing.

        Returns the pump's :class:`Prepared` (summary, challenge) to inspect and pass to
        :meth:`commit`, or the result that ends the command here: rejected (the firmware would
        refuse it) or refused (the link refused it). NoAnswerError if no answer came: the
        command was then not applied (a prepare applies nothing).
        """
        try:
            response = await self._exchange(Prepare(request))
        except NoAnswerError as error:
            raise NoAnswerError(f"{error}; the command was not applied", sent=False) from None
        if isinstance(response, Prepared) and response.request_id == request.request_id:
            return response
        if isinstance(response, Rejected):
            return CommandResult(request.request_id, Outcome.REJECTED, response, response.reason)
        return CommandResult(request.request_id, Outcome.REFUSED, response, "refused by the pump")

    async def commit(self, prepared: Prepared) -> CommandResult:
        """Step two: apply the prepared command (exactly once; uncertain if no answer came).
        Commit within ``prepared.expires_in_s`` of the prepare, in the same session."""
        result = await self.send_command(Commit(prepared.request_id, prepared.challenge))
        return replace(result, summary=prepared.summary)

    async def send_command(self, request: Command) -> CommandResult:
        """One command in one step, exactly as given (:meth:`command` wraps a high-risk one in
        prepare and commit; sent bare, the pump refuses it). Uncertain if no answer came."""
        try:
            response = await self._exchange(request)
        except NoAnswerError as error:
            if not error.sent:
                raise
            return CommandResult(request.request_id, Outcome.UNCERTAIN, None, str(error))
        if isinstance(response, Accepted):
            return CommandResult(request.request_id, Outcome.DONE, response)
        if isinstance(response, Rejected):
            return CommandResult(request.request_id, Outcome.REJECTED, response, response.reason)
        return CommandResult(request.request_id, Outcome.REFUSED, response, "refused by the pump")

    async def interrogate(self) -> PumpStatus:
        """The pump's status; ``status.now`` is its clock (no second session needed)."""
        response = await self.query(Interrogate())
        if not isinstance(response, StatusReport):
            raise LinkError("the pump refused to be interrogated")
        return response.status

    async def read_event_log(self, since_seq: int = 0) -> tuple[list[LogRecord], int]:
        """Every entry after ``since_seq``, page by page; and the pump's lost-entry count."""
        entries: list[LogRecord] = []
        lost_count = 0
        while True:
            page = await self.query(ReadEventLog(since_seq, MAX_LOG_PAGE))
            if not isinstance(page, EventLogPage):
                raise LinkError("the pump refused to send its event log")
            entries.extend(page.entries)
            lost_count = page.lost_count
            if not page.more or page.next_seq <= since_seq:
                return entries, lost_count
            since_seq = page.next_seq

    async def resolve(self, request_id: str) -> Resolution:
        """Settle an uncertain command from the pump's whole event log (in a new session)."""
        entries, lost_count = await self.read_event_log(0)
        return resolve_uncertain(request_id, entries, lost_count=lost_count)

    async def close(self) -> None:
        self._fail_all(LinkClosedError("client closed"))
        await self._link.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, LinkError):
                await self._reader
            self._reader = None

    # Internals ----------------------------------------------------------------------------------
    async def _exchange(self, request: Request) -> Response:
        """Send with retries. A command is resent under its counter and request id (the pump
        answers a duplicate from its kept answers); a query is re-asked under a fresh counter,
        since the pump refuses a reused counter and a query is harmless to repeat."""
        self._check_open()
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        counters: list[int] = []
        sent = False
        try:
            for attempt in range(self._attempts):
                if attempt == 0 or not isinstance(request, Command):
                    # A late answer to an earlier copy is welcome, but not its replay refusal.
                    self._superseded.update(counters)
                    counter, frame = self._conn.send(request)
                    counters.append(counter)
                    self._pending[counter] = answer
                else:
                    frame = self._conn.resend(counters[0])
                try:
                    await self._send(frame)
                except LinkError:
                    break
                sent = True
                try:
                    return await asyncio.wait_for(asyncio.shield(answer), self._timeout_s)
                except TimeoutError:
                    continue
                except LinkError:
                    break
        finally:
            for counter in counters:
                self._pending.pop(counter, None)
                self._superseded.discard(counter)
                self._conn.forget(counter)
        raise NoAnswerError(f"no answer to {request.type_name}", sent=sent)

    async def _send(self, data: bytes) -> None:
        self._check_open()
        await self._link.send(data)

    def _check_open(self) -> None:
        if self._closed_error is not None:
            raise self._closed_error

    def _start_reader(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._link.receive()
                for event in self._conn.receive_data(data):
                    self._dispatch(event)
        except LinkError as error:
            self._fail_all(error)

    def _dispatch(self, event: object) -> None:
        handshake = self._handshake
        if isinstance(event, SessionOpened) and handshake and not handshake.done():
            handshake.set_result(event)
        elif isinstance(event, HandshakeFailed | LinkRefused) and not self._conn.is_open:
            # Before a session exists, a refusal means the pump does not accept our key.
            if handshake and not handshake.done():
                handshake.set_exception(HandshakeRefusedError("the pump refused the session"))
        elif isinstance(event, ResponseReceived):
            if event.counter in self._superseded and isinstance(event.response, Refused):
                return
            answer = self._pending.get(event.counter)
            if answer is not None and not answer.done():
                answer.set_result(event.response)
        # LinkRefused in a session (a frame of ours was corrupted) and discarded frames: the
        # retransmission timer in _exchange deals with them.

    def _fail_all(self, error: LinkError) -> None:
        if self._closed_error is None:
            self._closed_error = error
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(error)
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(error)


# The pump's server ----------------------------------------------------------------------------
class PumpServer:
    """Serve one :class:`PumpEndpoint` over links, one session at a time.

    ``clock`` gives monotonic seconds for the rate limiter. ``idle_timeout_s`` ends a link that
    stays silent, so a peer that connects and says nothing cannot hold the pump's one session.
    """

    def __init__(
        self,
        endpoint: PumpEndpoint,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout_s: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._one_session = asyncio.Lock()
        self.links_served = 0

    async def serve_link(self, link: Link) -> None:
        """Run one link until it closes or idles out."""
        async with self._one_session:
            self.links_served += 1
            conn = self.endpoint.connection()
            try:
                while True:
                    # A blocked link is slowed, not cut: bytes wait in the socket until it opens.
                    wait_s = self.endpoint.retry_after_s(self._clock())
                    if wait_s > 0.0:
                        await asyncio.sleep(wait_s)
                    try:
                        data = await asyncio.wait_for(link.receive(), self._idle_timeout_s)
                    except (LinkError, TimeoutError):
                        return
                    reply = conn.receive_data(data, self._clock())
                    if reply:
                        try:
                            await link.send(reply)
                        except LinkError:
                            return
            finally:
                await link.close()

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
        """Listen on ``host:port`` (0: an ephemeral port; read it from ``server.sockets``)."""

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.serve_link(TcpLink(reader, writer))

        return await asyncio.start_server(on_connect, host, port)
