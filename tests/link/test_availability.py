"""Keyless attacks on a real pump over TCP (issue 12, items 1 and 2): the pump stays reachable
for a paired programmer, and its clinical log and memory are not worn or washed.

The pump is the real one (``boot_pump``: the firmware, its state directory with fsync, the
endpoint) served by ``PumpServer`` on 127.0.0.1 with its default deadlines and budgets; the
attackers (tests/link/attackers.py) hold no key. Bounds are a few seconds where the attack run
measured minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.link.transport import ProgrammerClient, PumpServer
from itb.pump.eventlog import SECURITY_KINDS, LogEntry
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.status import PumpStatus
from itb.pumpd.server import Pump, boot_pump
from itb.pumpd.state import StateDir
from itb.telemetry.pairing import Role
from itb.therapy import continuous
from tests.link.attackers import Attack, recorded_hello

# What a paired programmer may wait for its interrogate under attack (the attack run: 233 s
# with three idle sockets, over 19 minutes with garbage connections).
INTERROGATE_BOUND_S = 4.0


def real_pump(directory: Path, programmer_private: bytes) -> Pump:
    state = StateDir(directory)
    state.create(
        Firmware.implant(
            pump_model("peristaltic-20"), datetime(2027, 1, 4, 8), serial="ATTACKED",
            concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(600.0),
        )
    )  # fmt: skip
    state.pair(public_key_of(programmer_private), Role.CLINICIAN)
    return boot_pump(state, speed=1.0)


Scenario = Callable[[Pump, PumpServer, int, bytes], Awaitable[None]]


def serve(tmp_path: Path, scenario: Scenario) -> None:
    programmer = generate_private_key()
    pump = real_pump(tmp_path / "pump", programmer)

    async def main() -> None:
        server = PumpServer(pump.endpoint)
        tcp = await server.serve_tcp("127.0.0.1", 0)
        port = int(tcp.sockets[0].getsockname()[1])
        try:
            await scenario(pump, server, port, programmer)
        finally:
            tcp.close()

    asyncio.run(main())


async def timed_interrogate(port: int, programmer: bytes, pump_public: bytes) -> float:
    """Connect, handshake, interrogate, close; the seconds it took (fails past the bound)."""
    started = time.monotonic()

    async def once() -> PumpStatus:
        async with await ProgrammerClient.connect(
            "127.0.0.1", port, programmer, pump_public, timeout_s=1.0, attempts=4
        ) as client:
            return await client.interrogate()

    status = await asyncio.wait_for(once(), INTERROGATE_BOUND_S)
    assert status.serial == "ATTACKED"
    return time.monotonic() - started


def pump_public(pump: Pump) -> bytes:
    return public_key_of(pump.state.pump_private_key())


def test_idle_sockets_and_garbage_connections_do_not_keep_a_paired_programmer_out(
    tmp_path: Path,
) -> None:
    async def scenario(pump: Pump, server: PumpServer, port: int, programmer: bytes) -> None:
        attack = Attack(port)
        try:
            await attack.idle(20)  # the attack run needed three
            await attack.garbage(40)
            await asyncio.sleep(0.5)
            for _ in range(3):  # and again: a first success is no fluke
                await timed_interrogate(port, programmer, pump_public(pump))
        finally:
            await attack.stop()
        assert attack.connections > 60  # the pump closed and the attackers came back

    serve(tmp_path, scenario)


def test_back_off_after_garbage_never_locks_out_a_programmer_that_completes_a_handshake(
    tmp_path: Path,
) -> None:
    async def scenario(pump: Pump, server: PumpServer, port: int, programmer: bytes) -> None:
        attack = Attack(port)
        await attack.garbage(10, every_s=0.005)
        await asyncio.sleep(1.0)  # long enough for the back-off to climb (1 s, 2 s, 4 s...)
        await attack.stop()
        await timed_interrogate(port, programmer, pump_public(pump))

    serve(tmp_path, scenario)


def clinical(entries: list[LogEntry]) -> list[tuple[int, str]]:
    return [(e.seq, e.kind) for e in entries if e.kind not in SECURITY_KINDS]


def test_a_replayed_first_message_washes_nothing_and_writes_nothing(tmp_path: Path) -> None:
    async def scenario(pump: Pump, server: PumpServer, port: int, programmer: bytes) -> None:
        fw = pump.handler.firmware
        for _ in range(fw.log.capacity - len(clinical(fw.log.entries()))):  # a full log
            fw.log.append(fw.t_s, "bolus_end", {"delivered_ug": 1.0})
        hello = await recorded_hello(port, programmer, pump_public(pump))
        before = clinical(fw.log.entries())
        saves = pump.handler.saves
        security_before = len(fw.log) - len(before)
        attack = Attack(port)
        await attack.replay(hello, 40)
        await attack.garbage(5)
        await asyncio.sleep(0.3)
        await attack.stop()
        server.tick()  # what the pump's tick loop does: a burst ending is summarised, not logged
        assert clinical(fw.log.entries()) == before  # nothing washed out
        assert pump.handler.saves == saves  # no memory write for any refused connection
        assert fw.log.lost_count == 0
        # The replays reset no back-off: they are refused as stale, and their source backs off.
        assert pump.endpoint.source_retry_after_s("127.0.0.1", time.monotonic()) > 0.0
        # One entry for the first refusal, the rest counted in one summary at most a minute on.
        assert len(fw.log) - len(before) - security_before <= 2
        # The genuine programmer still gets in, and its session is not confused by the replay.
        await timed_interrogate(port, programmer, pump_public(pump))

    serve(tmp_path, scenario)
