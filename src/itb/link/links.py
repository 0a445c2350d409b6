"""The links that carry the endpoints' bytes: the tiny interface, asyncio TCP, and an in-memory
pipe with faults. No protocol here (transport.py drives the endpoints over these).

* :class:`Link` is the transport interface (send, receive, close), as in httpcore's backends.
* :class:`TcpLink` is one asyncio TCP connection; :func:`open_tcp_link` opens one.
* :func:`memory_pipe` gives two linked ends; each direction may lose, corrupt (flip one bit) and
  delay chunks, from one seeded generator, so a lossy run replays exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Protocol

from itb.errors import InputError

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
