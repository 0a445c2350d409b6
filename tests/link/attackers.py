"""Keyless attackers on 127.0.0.1, for the availability and log-washing tests.

Each holds its sockets open (or keeps reconnecting) until :meth:`Attack.stop`; none of them has a
paired key. What they model (issue 12, the attack run):

* ``idle``: connect and say nothing (the run held the pump's one session this way);
* ``garbage``: connect and send bytes that are not frames, over and over, reconnecting whenever
  the pump closes the link;
* ``replay``: send a recorded first handshake message (KK message 1 of a genuine session), then
  garbage sealed frames, on a new connection each time.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from itb.telemetry.codec import FrameType, encode_frame
from itb.telemetry.endpoint import ProgrammerConnection, SessionOpened

GARBAGE = b"\x00garbage that is not a frame\xff" * 4
SEALED_GARBAGE = encode_frame(FrameType.SEALED, bytes(range(40)))  # well framed, not authentic


@dataclass
class Attack:
    port: int
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    connections: int = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.connections += 1
        self.writers.append(writer)
        return reader, writer

    async def idle(self, count: int) -> None:
        """``count`` sockets that connect and say nothing, reconnecting when closed."""
        for _ in range(count):
            self.tasks.append(asyncio.create_task(self._idle_loop()))
        await asyncio.sleep(0.05)

    async def _idle_loop(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                reader, _writer = await self._open()
                await reader.read()  # returns when the pump closes the link
            await asyncio.sleep(0.01)

    async def garbage(self, count: int, every_s: float = 0.02) -> None:
        """``count`` connections that send garbage every ``every_s``, reconnecting when closed."""
        for _ in range(count):
            self.tasks.append(asyncio.create_task(self._garbage_loop(every_s)))
        await asyncio.sleep(0.05)

    async def _garbage_loop(self, every_s: float) -> None:
        while True:
            with contextlib.suppress(OSError):
                reader, writer = await self._open()
                closed = asyncio.create_task(reader.read())  # done when the pump closes it
                try:
                    while not closed.done():
                        writer.write(GARBAGE)
                        await writer.drain()
                        await asyncio.sleep(every_s)
                finally:
                    closed.cancel()
            await asyncio.sleep(0.01)

    async def replay(self, hello: bytes, times: int, wait_s: float = 0.1) -> None:
        """A recorded first handshake message, replayed ``times`` times, each on a new link and
        followed by garbage sealed frames; waits up to ``wait_s`` for an answer each time (a
        backed-off source gets none)."""
        for _ in range(times):
            with contextlib.suppress(OSError):
                reader, writer = await self._open()
                writer.write(hello + SEALED_GARBAGE * 3)
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(4096), wait_s)
                writer.close()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        for writer in self.writers:
            writer.close()


async def recorded_hello(port: int, programmer: bytes, pump_public: bytes) -> bytes:
    """A genuine first handshake message, sent once (and answered) while an attacker records."""
    conn = ProgrammerConnection(programmer, pump_public)
    hello = conn.start_handshake()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(hello)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(4096), 5.0)
    assert reply[3] == FrameType.HANDSHAKE_REPLY
    assert any(isinstance(e, SessionOpened) for e in conn.receive_data(reply))
    writer.close()
    return hello
