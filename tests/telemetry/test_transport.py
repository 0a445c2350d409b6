"""Black-box attacks and faults on real links: TCP on 127.0.0.1 and the in-memory pipe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from itb.telemetry.codec import Frame, FrameBuffer, FrameError, FrameType, encode_frame
from itb.telemetry.endpoint import FailureLimiter, Outcome, PumpEndpoint, RefusalReason, Resolution
from itb.telemetry.messages import (
    Interrogate,
    PatientBolusRequest,
    SetProgram,
    StatusReport,
    StopPump,
)
from itb.telemetry.transport import (
    HandshakeRefusedError,
    Impairment,
    ProgrammerClient,
    PumpServer,
    memory_pipe,
)
from tests.telemetry.fakes import FakePump, make_keys

KEYS = make_keys()
NEW_PROGRAM = {"rate_ug_per_day": 250.0}
FrameHook = Callable[[Frame], list[bytes]]


def forward(frame: Frame) -> list[bytes]:
    return [encode_frame(frame.type, frame.body)]


class Proxy:
    """A man in the middle on 127.0.0.1 that sees whole frames and may drop, alter or copy them."""

    def __init__(self, pump_port: int) -> None:
        self.pump_port = pump_port
        self.to_pump: FrameHook = forward
        self.to_client: FrameHook = forward
        self.seen_by_pump: list[Frame] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pump_reader, pump_writer = await asyncio.open_connection("127.0.0.1", self.pump_port)
        await asyncio.gather(
            self._pipe(reader, pump_writer, lambda f: self._record(f)),
            self._pipe(pump_reader, writer, lambda f: self.to_client(f)),
            return_exceptions=True,
        )

    def _record(self, frame: Frame) -> list[bytes]:
        self.seen_by_pump.append(frame)
        return self.to_pump(frame)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hook: FrameHook
    ) -> None:
        frames = FrameBuffer()
        try:
            while data := await reader.read(65536):
                frames.receive_data(data)
                while True:
                    try:
                        frame = frames.next_frame()
                    except FrameError:
                        continue
                    if frame is None:
                        break
                    for out in hook(frame):
                        writer.write(out)
                await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        self._server.close()


def make_endpoint() -> tuple[PumpEndpoint, FakePump]:
    fake = FakePump()
    limiter = FailureLimiter(base_delay_s=0.01, max_delay_s=0.05)  # quick tests, same logic
    return PumpEndpoint(KEYS.pump_private, KEYS.paired(), fake, limiter=limiter), fake


Scenario = Callable[[int, Proxy, FakePump], Awaitable[None]]


def run_over_tcp(scenario: Scenario) -> None:
    async def main() -> None:
        endpoint, fake = make_endpoint()
        server = await PumpServer(endpoint, idle_timeout_s=5.0).serve_tcp("127.0.0.1", 0)
        proxy = Proxy(int(server.sockets[0].getsockname()[1]))
        port = await proxy.start()
        try:
            await scenario(port, proxy, fake)
        finally:
            await proxy.close()
            server.close()

    asyncio.run(main())


async def connect(port: int, private: bytes, attempts: int = 3) -> ProgrammerClient:
    return await ProgrammerClient.connect(
        "127.0.0.1", port, private, KEYS.pump_public, timeout_s=0.3, attempts=attempts
    )


def flip_one_bit(frame: Frame) -> list[bytes]:
    if frame.type is not FrameType.SEALED:
        return forward(frame)
    body = bytearray(frame.body)
    body[len(body) // 2] ^= 0x10
    return [encode_frame(frame.type, bytes(body))]  # a fresh CRC: only the AEAD can tell


def test_tcp_a_replayed_frame_is_refused_and_changes_nothing() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            result = await client.command(StopPump(client.new_request_id()))
            assert result.outcome is Outcome.DONE
            recorded = list(proxy.seen_by_pump)
            # Within the session: the same sealed frame again.
            proxy.to_pump = lambda f: forward(f) * (2 if f.type is FrameType.SEALED else 1)
            assert isinstance(await client.interrogate(), StatusReport)
        after_command = fake.therapy()
        # A whole recorded session, replayed on a new connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for frame in recorded:
            writer.write(encode_frame(frame.type, frame.body))
        await writer.drain()
        await reader.read(65536)
        await asyncio.sleep(0.1)
        writer.close()
        assert fake.therapy() == after_command and fake.applied == 1
        reasons = [r.reason for r in fake.refusals]
        assert reasons.count(RefusalReason.NOT_AUTHENTIC) >= 2  # one in-session, one replayed
        assert fake.log[-1].kind == "link_refused"

    run_over_tcp(scenario)


def test_tcp_a_flipped_bit_is_refused_and_the_command_stays_uncertain_then_resolves() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        before = fake.therapy()
        async with await connect(port, KEYS.clinician_private) as client:
            proxy.to_pump = flip_one_bit
            request = SetProgram(client.new_request_id(), NEW_PROGRAM)
            result = await client.command(request)
        assert result.outcome is Outcome.UNCERTAIN
        assert fake.therapy() == before
        assert {r.reason for r in fake.refusals} == {RefusalReason.NOT_AUTHENTIC}
        proxy.to_pump = forward
        async with await connect(port, KEYS.clinician_private) as client:
            assert await client.resolve(request.request_id) is Resolution.NOT_APPLIED

    run_over_tcp(scenario)


def test_tcp_an_unpaired_key_is_refused_and_changes_nothing() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        before = fake.therapy()
        with pytest.raises(HandshakeRefusedError):
            await connect(port, KEYS.stranger_private)
        assert fake.therapy() == before
        assert [r.reason for r in fake.refusals] == [RefusalReason.UNKNOWN_KEY]

    run_over_tcp(scenario)


def test_tcp_a_patient_cannot_change_the_program() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.patient_private) as client:
            before = fake.therapy()
            result = await client.command(SetProgram(client.new_request_id(), NEW_PROGRAM))
            assert result.outcome is Outcome.REFUSED
            assert fake.therapy() == before
            bolus = await client.command(PatientBolusRequest(client.new_request_id()))
            assert bolus.outcome is Outcome.DONE
        assert [r.reason for r in fake.refusals] == [RefusalReason.ROLE_FORBIDDEN]
        assert fake.refusals[0].request_type == "set_program"

    run_over_tcp(scenario)


def test_tcp_a_command_whose_answer_was_lost_is_applied_once() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            dropped: list[Frame] = []

            def drop_first_answer(frame: Frame) -> list[bytes]:
                if frame.type is FrameType.SEALED and not dropped:
                    dropped.append(frame)
                    return []
                return forward(frame)

            proxy.to_client = drop_first_answer
            result = await client.command(SetProgram(client.new_request_id(), NEW_PROGRAM))
        assert dropped and result.outcome is Outcome.DONE
        assert fake.applied == 1 and fake.program == NEW_PROGRAM

    run_over_tcp(scenario)


def test_tcp_a_link_that_dies_mid_command_is_uncertain_then_resolved_applied() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            proxy.to_client = lambda f: [] if f.type is FrameType.SEALED else forward(f)
            request = StopPump(client.new_request_id())
            result = await client.command(request)
        assert result.outcome is Outcome.UNCERTAIN  # never "failed": it may have been applied
        assert fake.applied == 1
        proxy.to_client = forward
        async with await connect(port, KEYS.clinician_private) as client:
            assert await client.resolve(request.request_id) is Resolution.APPLIED

    run_over_tcp(scenario)


def test_pipe_a_session_survives_loss_and_corruption_and_applies_each_command_once() -> None:
    async def main() -> None:
        endpoint, fake = make_endpoint()
        fault = Impairment(loss=0.2, corruption=0.1, delay_s=0.001, jitter_s=0.002)
        programmer_end, pump_end = memory_pipe(seed=7, a_to_b=fault, b_to_a=fault)
        serving = asyncio.create_task(PumpServer(endpoint).serve_link(pump_end))
        client = ProgrammerClient(
            programmer_end, KEYS.clinician_private, KEYS.pump_public, timeout_s=0.05, attempts=12
        )
        await client.handshake()
        outcomes = []
        for _ in range(15):
            result = await client.command(StopPump(client.new_request_id()))
            outcomes.append(result.outcome)
            fake.stopped = False  # let the next stop apply too
        assert isinstance(await client.query(Interrogate()), StatusReport)
        await client.close()
        await serving
        assert outcomes == [Outcome.DONE] * 15
        assert fake.applied == 15  # not one applied twice despite the retransmissions
        assert programmer_end.lost_chunks + pump_end.lost_chunks > 0
        assert programmer_end.corrupted_chunks + pump_end.corrupted_chunks > 0

    asyncio.run(main())
