"""Telemetry link speed on loopback TCP: handshake, interrogate round trip, commands per second.

Baselines measured in the same run: a plain TCP echo of the same bytes (what the network and
asyncio cost alone) and the same exchange with the two endpoints joined in memory (what the
protocol costs without a network). The pump is the real one: ``itb.pumpd``'s FirmwareHandler
over the firmware, with its state directory in a temporary directory, so every command is
persisted (fsync) before it is answered, as ``itb pump serve`` does.

The command is a low-reservoir threshold, a high-risk command: each one is a prepare (the
firmware's dry run on a copy, a fresh challenge) and a commit (applied, fsynced, answered), two
round trips. "Commands per second" counts those prepare+commit pairs.

Under attack (issue 12): ``itb pump serve`` in its own process, a keyless attacker in another
(1,000 connections sending garbage and 100 idle sockets, each reconnecting the moment the pump
closes it), and a paired programmer here: connect, handshake, interrogate, close. Its time is
printed against the same session on the same pump, quiet, measured just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.link.transport import ProgrammerClient, PumpServer
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.server import READY_PREFIX, boot_pump
from itb.pumpd.state import StateDir
from itb.telemetry.admission import PreAuthBudget
from itb.telemetry.messages import Interrogate, SetLowReservoirAlarm
from itb.telemetry.pairing import Role
from itb.telemetry.programmer_endpoint import ProgrammerConnection
from itb.telemetry.pump_endpoint import PumpEndpoint
from itb.telemetry.rate_limit import FailureLimiter
from itb.telemetry.refusals import SUMMARY_INTERVAL_S
from itb.therapy import continuous

HANDSHAKES = 50
ROUND_TRIPS = 300
COMMANDS = 300
GARBAGE_CONNECTIONS = 1000
IDLE_SOCKETS = 100
GARBAGE_EVERY_S = 0.05  # each garbage connection sends a chunk this often
SESSIONS = 20  # programmer sessions timed, quiet and under attack
ITB = str(Path(sys.executable).with_name("itb"))


def _real_pump(directory: Path, programmer_private: bytes) -> tuple[PumpEndpoint, bytes]:
    """A pump state directory, paired with ``programmer_private``, booted at speed 3600."""
    state = StateDir(directory)
    state.create(
        Firmware.implant(
            pump_model("peristaltic-20"), datetime(2027, 1, 4, 8), serial="BENCH",
            concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(600.0),
        )
    )  # fmt: skip
    state.pair(public_key_of(programmer_private), Role.CLINICIAN)
    pump = boot_pump(state, speed=3600.0)
    return pump.endpoint, public_key_of(state.pump_private_key())


def _ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1e3:.3f} ms, p90 {_p90(seconds) * 1e3:.3f} ms"


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


async def _echo_baseline(size_bytes: int) -> list[float]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"x" * size_bytes
    times = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        received = 0
        while received < size_bytes:
            received += len(await reader.read(65536))
        times.append(time.perf_counter() - started)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.01)  # let the echo task see the end of stream before the loop stops
    server.close()
    await server.wait_closed()
    return times


def _in_memory_round_trips(directory: Path) -> list[float]:
    programmer_private = generate_private_key()
    endpoint, pump_public = _real_pump(directory, programmer_private)
    pump = endpoint.connection()
    programmer = ProgrammerConnection(programmer_private, pump_public)
    programmer.receive_data(pump.receive_data(programmer.start_handshake(), 0.0))
    times = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        _, frame = programmer.send(Interrogate())
        programmer.receive_data(pump.receive_data(frame, 0.0))
        times.append(time.perf_counter() - started)
    return times


async def _tcp(directory: Path) -> tuple[list[float], list[float], float, int]:
    programmer_private = generate_private_key()
    endpoint, pump_public = _real_pump(directory, programmer_private)
    server = await PumpServer(endpoint).serve_tcp()
    port = server.sockets[0].getsockname()[1]
    handshakes = []
    for _ in range(HANDSHAKES):
        started = time.perf_counter()
        client = await ProgrammerClient.connect("127.0.0.1", port, programmer_private, pump_public)
        handshakes.append(time.perf_counter() - started)
        await client.close()
    client = await ProgrammerClient.connect("127.0.0.1", port, programmer_private, pump_public)
    round_trips = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        await client.interrogate()
        round_trips.append(time.perf_counter() - started)
    started = time.perf_counter()
    applied = 0
    for i in range(COMMANDS):
        result = await client.command(SetLowReservoirAlarm(client.new_request_id(), 2.0 + i % 2))
        applied += result.outcome.value == "done"
    commands_per_s = COMMANDS / (time.perf_counter() - started)
    await client.close()
    server.close()
    return handshakes, round_trips, commands_per_s, applied


# Under attack ----------------------------------------------------------------------------------
def _attacker(port: int, connections: multiprocessing.sharedctypes.Synchronized[int]) -> None:
    """The keyless attacker's process: garbage connections and idle sockets, reconnecting."""
    garbage = b"\x00not a frame\xff" * 8

    async def connection(send: bool) -> None:
        while True:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                with connections.get_lock():
                    connections.value += 1
                closed = asyncio.ensure_future(reader.read())
                try:
                    while not closed.done():
                        if send:
                            writer.write(garbage)
                            await writer.drain()
                        await asyncio.wait([closed], timeout=GARBAGE_EVERY_S)
                finally:
                    closed.cancel()
                    writer.close()
            await asyncio.sleep(0.001)

    async def run() -> None:
        tasks = [connection(True) for _ in range(GARBAGE_CONNECTIONS)]
        tasks += [connection(False) for _ in range(IDLE_SOCKETS)]
        await asyncio.gather(*tasks)

    asyncio.run(run())


async def _session_times(port: int, private: bytes, pump_public: bytes) -> list[float]:
    times = []
    for _ in range(SESSIONS):
        started = time.perf_counter()
        async with await ProgrammerClient.connect(
            "127.0.0.1", port, private, pump_public, timeout_s=1.0, attempts=4
        ) as client:
            await client.interrogate()
        times.append(time.perf_counter() - started)
    return times


def _under_attack(directory: Path) -> tuple[list[float], list[float], int]:
    """Quiet and attacked session times on one ``itb pump serve``; attacker connections made."""
    private = generate_private_key()
    state = StateDir(directory)
    state.create(
        Firmware.implant(
            pump_model("peristaltic-20"), datetime(2027, 1, 4, 8), serial="BENCH-ATTACK",
            concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(600.0),
        )
    )  # fmt: skip
    state.pair(public_key_of(private), Role.CLINICIAN)
    pump_public = public_key_of(state.pump_private_key())
    pump = subprocess.Popen(
        [ITB, "pump", "serve", "--state", str(directory), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    attacker: multiprocessing.Process | None = None
    try:
        assert pump.stdout is not None
        line = pump.stdout.readline()
        assert line.startswith(READY_PREFIX), line
        port = int(line.rsplit(":", 1)[1])
        quiet = asyncio.run(_session_times(port, private, pump_public))
        connections = multiprocessing.Value("i", 0)
        attacker = multiprocessing.Process(target=_attacker, args=(port, connections))
        attacker.start()
        while connections.value < GARBAGE_CONNECTIONS + IDLE_SOCKETS:  # all of them open
            time.sleep(0.05)
        time.sleep(1.0)  # and the pump's back-off and budgets engaged
        attacked = asyncio.run(_session_times(port, private, pump_public))
        return quiet, attacked, int(connections.value)
    finally:
        if attacker is not None:
            attacker.kill()
            attacker.join()
        pump.terminate()
        pump.wait(timeout=30)


def _print_attack(quiet: list[float], attacked: list[float], connections: int) -> None:
    budget, limiter = PreAuthBudget(), FailureLimiter()
    print(
        f"under attack: {GARBAGE_CONNECTIONS} garbage connections (a chunk every "
        f"{GARBAGE_EVERY_S * 1e3:.0f} ms each) and {IDLE_SOCKETS} idle sockets, all reconnecting "
        f"when closed ({connections} connections made); pump limits: silent links closed after "
        f"{budget.silent_s:g} s (at most {budget.max_silent_links}), handshake deadline "
        f"{budget.handshake_deadline_s:g} s, {budget.max_links} talking unauthenticated links "
        f"({budget.max_per_source} per source), {budget.max_failures} refused frames per link, "
        f"back-off {limiter.free_failures} free then {limiter.base_delay_s:g} s doubling to "
        f"{limiter.max_delay_s:g} s per source, one log entry per {SUMMARY_INTERVAL_S:g} s"
    )
    print(f"  programmer session (connect + handshake + interrogate), quiet: {_ms(quiet)}")
    print(f"  the same, under attack, {SESSIONS} runs: {_ms(attacked)}, max {max(attacked):.3f} s")
    ratio = statistics.median(attacked) / statistics.median(quiet)
    print(f"  ratio under attack / quiet (medians): {ratio:.1f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        handshakes, round_trips, commands_per_s, applied = asyncio.run(_tcp(Path(tmp) / "tcp"))
        in_memory = _in_memory_round_trips(Path(tmp) / "memory")
    echo = asyncio.run(_echo_baseline(700))  # about the size of a sealed status answer
    print(f"handshake (TCP connect + Noise KK), {HANDSHAKES} runs: {_ms(handshakes)}")
    print(f"interrogate round trip over TCP, {ROUND_TRIPS} runs: {_ms(round_trips)}")
    print(f"  baseline plain TCP echo of 700 bytes: {_ms(echo)}")
    print(f"  baseline same exchange in memory (no network): {_ms(in_memory)}")
    rtt = statistics.median(round_trips)
    print(f"  ratio TCP round trip / TCP echo: {rtt / statistics.median(echo):.1f}x")
    print(f"  ratio TCP round trip / in memory: {rtt / statistics.median(in_memory):.1f}x")
    print(
        f"commands on one connection (prepare + commit pairs; each commit persisted (fsync) "
        f"before its answer): {commands_per_s:.0f} /s ({applied} applied)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _print_attack(*_under_attack(Path(tmp) / "attacked"))


if __name__ == "__main__":
    main()
