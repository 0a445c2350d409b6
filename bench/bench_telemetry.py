"""Telemetry link speed on loopback TCP: handshake, interrogate round trip, commands per second.

Baselines measured in the same run: a plain TCP echo of the same bytes (what the network and
asyncio cost alone) and the same exchange with the two endpoints joined in memory (what the
protocol costs without a network). The handler is a small in-process stand-in for the firmware.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from itb.telemetry.endpoint import PairedKey, ProgrammerConnection, PumpEndpoint, Role
from itb.telemetry.keys import generate_private_key, public_key_of
from itb.telemetry.messages import (
    JSON,
    Accepted,
    BatteryReport,
    Command,
    Interrogate,
    Request,
    Response,
    SetLowReservoirAlarm,
    StatusReport,
)
from itb.telemetry.transport import ProgrammerClient, PumpServer
from itb.therapy import PUMP_EPOCH

HANDSHAKES = 50
ROUND_TRIPS = 300
COMMANDS = 500


class BenchPump:
    def __init__(self) -> None:
        self.applied = 0

    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        if isinstance(request, Command):
            self.applied += 1
            return Accepted(request.request_id)
        return StatusReport(
            "BENCH", "peristaltic-20", PUMP_EPOCH, "running", {"rate_ug_per_day": 100.0},
            100.0, 500.0, 18.0, 2.0, BatteryReport(1800.0, None, None), (), 0.0, 0.0, 0.0, None,
        )  # fmt: skip

    def on_refused(self, report: object) -> None:
        pass

    def save_link_state(self, state: dict[str, JSON]) -> None:
        pass


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


def _in_memory_round_trips(pump_private: bytes, programmer_private: bytes) -> list[float]:
    endpoint = PumpEndpoint(
        pump_private, [PairedKey(public_key_of(programmer_private), Role.CLINICIAN)], BenchPump()
    )
    pump = endpoint.connection()
    programmer = ProgrammerConnection(programmer_private, public_key_of(pump_private))
    programmer.receive_data(pump.receive_data(programmer.start_handshake(), 0.0))
    times = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        _, frame = programmer.send(Interrogate())
        programmer.receive_data(pump.receive_data(frame, 0.0))
        times.append(time.perf_counter() - started)
    return times


async def _tcp() -> tuple[list[float], list[float], float, int]:
    pump_private, programmer_private = generate_private_key(), generate_private_key()
    paired = [PairedKey(public_key_of(programmer_private), Role.CLINICIAN)]
    handler = BenchPump()
    server = await PumpServer(PumpEndpoint(pump_private, paired, handler)).serve_tcp()
    port = server.sockets[0].getsockname()[1]
    pump_public = public_key_of(pump_private)
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
    for _ in range(COMMANDS):
        await client.command(SetLowReservoirAlarm(client.new_request_id(), 2.5))
    commands_per_s = COMMANDS / (time.perf_counter() - started)
    await client.close()
    server.close()
    return handshakes, round_trips, commands_per_s, handler.applied


def main() -> None:
    handshakes, round_trips, commands_per_s, applied = asyncio.run(_tcp())
    echo = asyncio.run(_echo_baseline(400))  # about the size of a sealed status answer
    in_memory = _in_memory_round_trips(generate_private_key(), generate_private_key())
    print(f"handshake (TCP connect + Noise KK), {HANDSHAKES} runs: {_ms(handshakes)}")
    print(f"interrogate round trip over TCP, {ROUND_TRIPS} runs: {_ms(round_trips)}")
    print(f"  baseline plain TCP echo of 400 bytes: {_ms(echo)}")
    print(f"  baseline same exchange in memory (no network): {_ms(in_memory)}")
    rtt = statistics.median(round_trips)
    print(f"  ratio TCP round trip / TCP echo: {rtt / statistics.median(echo):.1f}x")
    print(f"  ratio TCP round trip / in memory: {rtt / statistics.median(in_memory):.1f}x")
    print(f"commands on one connection: {commands_per_s:.0f} /s ({applied} applied)")


if __name__ == "__main__":
    main()
