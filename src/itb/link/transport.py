"""The endpoints driven over links (links.py: TCP, the in-memory pipe with faults, which this
module re-exports): the programmer's client and the pump's server.

With links.py, the only telemetry code that does I/O or reads a clock. It holds no protocol
rules: the endpoints (itb.telemetry) decide everything; here we only wait, retry and time out.

* :class:`ProgrammerClient` connects, handshakes, sends requests with retries and a timeout, and
  reports a command whose answer never came as ``uncertain``.
* :class:`PumpServer` serves a :class:`PumpEndpoint` over any links, one authenticated session
  at a time (like the pump's single radio); unauthenticated links never wait for or hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace

from itb.link.links import (
    READ_CHUNK_BYTES,
    HandshakeRefusedError,
    Impairment,
    Link,
    LinkClosedError,
    LinkError,
    NoAnswerError,
    PipeEnd,
    TcpLink,
    memory_pipe,
    open_tcp_link,
)
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
from itb.telemetry.pump_connection import PumpConnection
from itb.telemetry.pump_endpoint import PumpEndpoint

__all__ = [
    "READ_CHUNK_BYTES", "HandshakeRefusedError", "Impairment", "Link", "LinkClosedError",
    "LinkError", "NoAnswerError", "PipeEnd", "ProgrammerClient", "PumpServer", "TcpLink",
    "memory_pipe", "open_tcp_link",
]  # fmt: skip


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
ACCEPT_BACKLOG = 512  # connections the kernel queues before the server accepts them


class PumpServer:
    """Serve one :class:`PumpEndpoint` over many links, one authenticated session at a time.

    Every link is read at once, so an unauthenticated one can neither wait for nor hold the
    pump's one session (like its single radio): it is closed if silent for the budget's
    ``silent_s`` or unproved at its handshake deadline, counts against the pre-auth budgets (the
    endpoint closes the least promising links to make room: admission.py) and never takes the
    session lock. A link
    whose sealed frame proves a session takes the lock (waiting for the session before it, if
    any) and is then served until it closes or stays silent ``idle_timeout_s``; its own back-off
    slows it rather than cuts it. ``clock`` gives monotonic seconds; ``on_session_start`` is
    called when a proved session takes the lock (the pump charges its battery for a session).
    """

    def __init__(
        self,
        endpoint: PumpEndpoint,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout_s: float = 30.0,
        on_session_start: Callable[[], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._on_session_start = on_session_start
        self._one_session = asyncio.Lock()
        self._links: dict[PumpConnection, Link] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.links_served = 0
        self.sessions_served = 0

    def tick(self) -> None:
        """Housekeeping the pump's loop calls often: a due summary of refusals is logged."""
        self.endpoint.tick(self._clock())

    async def serve_link(self, link: Link, source: str | None = None) -> None:
        """Run one link until it closes, misses its deadline or idles out."""
        conn = self.endpoint.connection(source, self._clock())
        self.links_served += 1
        self._links[conn] = link
        self._close_evicted()
        holding = False
        try:
            while not conn.closed:
                data = await self._receive(link, conn)
                if data is None:
                    return
                reply = conn.receive_data(data, self._clock(), may_open_session=holding)
                self._close_evicted()
                if conn.wants_session:
                    await self._send(link, reply)
                    await self._one_session.acquire()
                    holding = True
                    self.sessions_served += 1
                    if self._on_session_start is not None:
                        self._on_session_start()
                    reply = conn.resume(self._clock())
                if not await self._send(link, reply):
                    return
        finally:
            conn.close()
            self._links.pop(conn, None)
            if holding:
                self._one_session.release()
            await link.close()

    async def _receive(self, link: Link, conn: PumpConnection) -> bytes | None:
        """The next chunk, or None: the link closed, missed its deadline or idled out. A proved
        link its back-off blocks is slowed, not cut: its bytes wait in the socket meanwhile."""
        now_s = self._clock()
        deadline_s = conn.deadline_s()
        if deadline_s is None:
            wait_s = conn.retry_after_s(now_s)
            if wait_s > 0.0:
                await asyncio.sleep(wait_s)
            timeout_s = self._idle_timeout_s
        else:
            timeout_s = deadline_s - now_s
            if timeout_s <= 0.0:
                return None
        try:
            return await asyncio.wait_for(link.receive(), timeout_s)
        except (LinkError, TimeoutError):
            return None

    @staticmethod
    async def _send(link: Link, reply: bytes) -> bool:
        if not reply:
            return True
        try:
            await link.send(reply)
        except LinkError:
            return False
        return True

    def _close_evicted(self) -> None:
        """Close the transports of links the endpoint evicted to make room; each one's own
        ``serve_link`` then sees its link closed and ends."""
        for victim in self.endpoint.take_evicted():
            link = self._links.get(victim)
            if link is None:
                continue
            task = asyncio.get_running_loop().create_task(link.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
        """Listen on ``host:port`` (0: an ephemeral port; read it from ``server.sockets``)."""
        return await asyncio.start_server(self.on_tcp_connect, host, port, backlog=ACCEPT_BACKLOG)

    async def on_tcp_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one accepted TCP connection; its source is the peer's address."""
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else None
        with contextlib.suppress(asyncio.CancelledError):  # shutdown: no traceback per link
            await self.serve_link(TcpLink(reader, writer), source)

    async def close(self) -> None:
        """Close every link (at shutdown): each ``serve_link`` then ends promptly."""
        await asyncio.gather(*(link.close() for link in list(self._links.values())))
