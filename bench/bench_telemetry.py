"""Telemetry link speed on loopback TCP: handshake, interrogate round trip, commands per second.

Baselines measured in the same run: a plain TCP echo of the same bytes (what the network and
asyncio cost alone) and the same exchange with the two endpoints joined in memory (what the
protocol costs without a network). The pump is the real one: ``itb.pumpd``'s FirmwareHandler
over the firmware, with its state directory in a temporary directory, so every command is
persisted (fsync) before it is answered, as ``itb pump serve`` does.

The command is a low-reservoir threshold, a high-risk command: each one is a prepare (the
firmware's dry run on a copy, a fresh challenge) and a commit (applied, fsynced, answered), two
round trips. "Commands per second" counts those prepare+commit pairs.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.link.transport import ProgrammerClient, PumpServer
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.server import boot_pump
from itb.pumpd.state import StateDir
from itb.telemetry.messages import Interrogate, SetLowReservoirAlarm
from itb.telemetry.pairing import Role
from itb.telemetry.programmer_endpoint import ProgrammerConnection
from itb.telemetry.pump_endpoint import PumpEndpoint
from itb.therapy import continuous

HANDSHAKES = 50
ROUND_TRIPS = 300
COMMANDS = 300


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


if __name__ == "__main__":
    main()
