"""Black-box attacks and faults on real links: TCP on 127.0.0.1 and the in-memory pipe."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from itb.link.transport import (
    HandshakeRefusedError,
    Impairment,
    ProgrammerClient,
    PumpServer,
    memory_pipe,
)
from itb.pump.status import PumpStatus
from itb.telemetry.codec import Frame, FrameBuffer, FrameError, FrameType, encode_frame
from itb.telemetry.endpoint import (
    CommandResult,
    FailureLimiter,
    Outcome,
    PumpEndpoint,
    RefusalReason,
    Resolution,
)
from itb.telemetry.messages import (
    JSON,
    Commit,
    Interrogate,
    PatientBolusRequest,
    Prepared,
    SetProgram,
    StatusReport,
    StopPump,
)
from tests.telemetry.fakes import FakePump, make_keys

KEYS = make_keys()
NEW_PROGRAM: dict[str, JSON] = {"rate_ug_per_day": 250.0}
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
    endpoint = PumpEndpoint(
        KEYS.pump_private, KEYS.paired(), fake, random_bytes=os.urandom, limiter=limiter
    )
    return endpoint, fake


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


def after_first_sealed(hook: FrameHook) -> FrameHook:
    """Forward the first sealed frame (a prepare, or its answer); ``hook`` the later ones."""
    seen: list[Frame] = []

    def apply(frame: Frame) -> list[bytes]:
        if frame.type is not FrameType.SEALED:
            return forward(frame)
        seen.append(frame)
        return forward(frame) if len(seen) == 1 else hook(frame)

    return apply


def test_tcp_a_commit_replayed_in_a_later_session_is_refused_and_changes_nothing() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            prepared = await client.prepare(SetProgram(client.new_request_id(), NEW_PROGRAM))
            assert isinstance(prepared, Prepared)
            assert prepared.summary["changes"] == {
                "program": {"old": {"rate_ug_per_day": 100.0}, "new": NEW_PROGRAM}
            }
            assert fake.applied == 0  # prepared only
            result = await client.commit(prepared)
            assert result.outcome is Outcome.DONE and result.summary == prepared.summary
        fake.program = {"rate_ug_per_day": 100.0}  # the clinician changes it back by hand
        after = fake.therapy()
        # The same commit (request id and challenge), sealed in a new, valid session.
        async with await connect(port, KEYS.clinician_private) as client:
            replayed = await client.send_command(Commit(prepared.request_id, prepared.challenge))
            assert replayed.outcome is Outcome.REFUSED
            # A fresh prepare cannot reuse the committed request id either.
            again = await client.prepare(SetProgram(prepared.request_id, NEW_PROGRAM))
            assert isinstance(again, CommandResult) and again.outcome is Outcome.REFUSED
        assert fake.therapy() == after and fake.applied == 1
        reasons = [r.reason for r in fake.refusals]
        assert reasons == [RefusalReason.BAD_COMMIT, RefusalReason.REQUEST_ID_REUSED]
        assert "another session" in fake.refusals[0].detail or "outside" in fake.refusals[0].detail
        assert fake.log[-1].kind == "link_refused"

    run_over_tcp(scenario)


def test_tcp_a_bare_high_risk_command_is_refused_and_changes_nothing() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        before = fake.therapy()
        async with await connect(port, KEYS.clinician_private) as client:
            result = await client.send_command(SetProgram(client.new_request_id(), NEW_PROGRAM))
            assert result.outcome is Outcome.REFUSED
        assert fake.therapy() == before
        assert [r.reason for r in fake.refusals] == [RefusalReason.NEEDS_PREPARE]
        assert fake.log[-1].kind == "link_refused"

    run_over_tcp(scenario)


def test_tcp_a_replayed_frame_is_refused_and_changes_nothing() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            result = await client.command(StopPump(client.new_request_id()))
            assert result.outcome is Outcome.DONE
            recorded = list(proxy.seen_by_pump)
            # Within the session: the same sealed frame again.
            proxy.to_pump = lambda f: forward(f) * (2 if f.type is FrameType.SEALED else 1)
            assert isinstance(await client.interrogate(), PumpStatus)
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
        # In the session: the copy is not authentic. The replayed session is stale from its
        # first message on (answered before), and its sealed frames then find no session:
        # counted for the summary, not logged one by one.
        reasons = [r.reason for r in fake.refusals]
        assert reasons == [RefusalReason.NOT_AUTHENTIC, RefusalReason.STALE_HANDSHAKE]
        assert fake.log[-1].kind == "link_refused"

    run_over_tcp(scenario)


def test_tcp_a_flipped_bit_is_refused_and_the_command_stays_uncertain_then_resolves() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        before = fake.therapy()
        async with await connect(port, KEYS.clinician_private) as client:
            proxy.to_pump = after_first_sealed(flip_one_bit)  # the prepare passes, the commit not
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
            sealed: list[Frame] = []
            dropped: list[Frame] = []

            def drop_the_commits_answer(frame: Frame) -> list[bytes]:
                if frame.type is FrameType.SEALED:
                    sealed.append(frame)
                    if len(sealed) == 2:  # 1: prepared, 2: the commit's answer
                        dropped.append(frame)
                        return []
                return forward(frame)

            proxy.to_client = drop_the_commits_answer
            result = await client.command(SetProgram(client.new_request_id(), NEW_PROGRAM))
        assert dropped and result.outcome is Outcome.DONE
        assert fake.applied == 1 and fake.program == NEW_PROGRAM

    run_over_tcp(scenario)


def test_tcp_a_link_that_dies_mid_command_is_uncertain_then_resolved_applied() -> None:
    async def scenario(port: int, proxy: Proxy, fake: FakePump) -> None:
        async with await connect(port, KEYS.clinician_private) as client:
            proxy.to_client = after_first_sealed(lambda f: [])  # the answers after "prepared"
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
