"""FirmwareHandler behind the real endpoint (no network): mapping, logging, save-before-answer."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.pump.alarms import AlarmKind
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.handler import FirmwareHandler
from itb.pumpd.state import StateDir
from itb.telemetry.endpoint import (
    PairedKey,
    ProgrammerConnection,
    PumpConnection,
    PumpEndpoint,
    ResponseReceived,
    Role,
)
from itb.telemetry.messages import (
    Accepted,
    ClearAlarm,
    Command,
    Commit,
    EventLogPage,
    Interrogate,
    Prepare,
    Prepared,
    ReadEventLog,
    Refill,
    Rejected,
    Request,
    Response,
    SetClock,
    StatusReport,
    StopPump,
)
from itb.therapy import continuous

START = datetime(2027, 1, 4, 8, 0)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _setup(tmp_path: Path) -> tuple[StateDir, Clock, PumpEndpoint, ProgrammerConnection]:
    state = StateDir(tmp_path / "pump")
    fw = Firmware.implant(
        pump_model("peristaltic-20"), START, serial="T-1", concentration_ug_per_ml=500.0,
        volume_ml=20.0, program=continuous(600.0),
    )  # fmt: skip
    state.create(fw)
    programmer = generate_private_key()
    paired = [PairedKey(public_key_of(programmer), Role.CLINICIAN)]
    booted = state.boot()
    clock = Clock()
    handler = FirmwareHandler(booted.firmware, state, clock, paired, None)
    endpoint = PumpEndpoint(state.pump_private_key(), paired, handler, random_bytes=os.urandom)
    conn = ProgrammerConnection(programmer, public_key_of(state.pump_private_key()))
    return state, clock, endpoint, conn


def _ask(endpoint: PumpEndpoint, conn: ProgrammerConnection, request: Request) -> Response:
    pump = endpoint.connection()
    conn.receive_data(pump.receive_data(conn.start_handshake(), 0.0))
    _, frame = conn.send(request)
    (event,) = conn.receive_data(pump.receive_data(frame, 0.0))
    assert isinstance(event, ResponseReceived)
    return event.response


def _exchange(pump: PumpConnection, conn: ProgrammerConnection, request: Request) -> Response:
    _, frame = conn.send(request)
    (event,) = conn.receive_data(pump.receive_data(frame, 0.0))
    assert isinstance(event, ResponseReceived)
    return event.response


def _do(endpoint: PumpEndpoint, conn: ProgrammerConnection, command: Command) -> Response:
    """A two-step command in one session: prepare, then commit with the pump's challenge."""
    pump = endpoint.connection()
    conn.receive_data(pump.receive_data(conn.start_handshake(), 0.0))
    prepared = _exchange(pump, conn, Prepare(command))
    if not isinstance(prepared, Prepared):
        return prepared
    return _exchange(pump, conn, Commit(prepared.request_id, prepared.challenge))


RID = "0123456789abcdef0123456789abcdef"


def test_an_applied_command_is_on_disk_with_its_request_id_before_the_answer(
    tmp_path: Path,
) -> None:
    state, clock, endpoint, conn = _setup(tmp_path)
    clock.now = START + timedelta(days=2)
    answer = _do(endpoint, conn, Refill(RID, 19.0, 1000.0))
    assert answer == Accepted(RID)
    # what a restart right now would find: the refill, its request id, the kept answer
    booted = state.boot()
    assert booted.firmware.concentration_ug_per_ml == 1000.0
    assert booted.firmware.now == START + timedelta(days=2)
    commands = [e.data for e in booted.firmware.log.entries() if e.kind == "command"]
    assert commands == [
        {"request_id": RID, "request": "refill", "key_id": commands[0]["key_id"],
         "role": "clinician", "outcome": "applied"},
    ]  # fmt: skip
    assert booted.link_state is not None
    assert [k["request_id"] for k in booted.link_state["kept_answers"]] == [RID]


def test_a_rejected_command_changes_nothing_and_is_logged_as_rejected(tmp_path: Path) -> None:
    state, _clock, endpoint, conn = _setup(tmp_path)
    before = state.boot().firmware.status()
    answer = _ask(endpoint, conn, ClearAlarm(RID, AlarmKind.MOTOR_STALL))
    assert isinstance(answer, Rejected) and answer.field == "kind"
    after = state.boot().firmware
    assert after.status() == before
    (entry,) = [e for e in after.log.entries() if e.kind == "command"]
    assert entry.data["outcome"] == "rejected" and entry.data["request_id"] == RID


def test_a_clock_set_is_on_disk_with_old_and_new_before_the_answer_and_times_read_on_it(
    tmp_path: Path,
) -> None:
    state, clock, endpoint, conn = _setup(tmp_path)
    clock.now = START + timedelta(days=2)
    new_time = START + timedelta(days=2, minutes=7)  # the pump was 7 min behind
    assert _do(endpoint, conn, SetClock(RID, new_time)) == Accepted(RID)
    booted = state.boot().firmware  # what a power cut right now would find
    assert booted.status().now == new_time and booted.now == START + timedelta(days=2)
    (entry,) = [e for e in booted.log.entries() if e.kind == "clock"]
    assert (entry.data["old"], entry.data["new"]) == (
        (START + timedelta(days=2)).isoformat(),
        new_time.isoformat(),
    )
    status = _ask(endpoint, conn, Interrogate())
    assert isinstance(status, StatusReport) and status.status.now == new_time
    page = _ask(endpoint, conn, ReadEventLog(0, 64))
    assert isinstance(page, EventLogPage)
    assert [r.at for r in page.entries if r.kind == "clock"] == [new_time]


def test_a_clock_setting_years_away_is_refused_and_the_log_reads_in_pages(
    tmp_path: Path,
) -> None:
    _state, clock, endpoint, conn = _setup(tmp_path)
    answer = _do(endpoint, conn, SetClock(RID, datetime(2030, 1, 1)))
    assert isinstance(answer, Rejected) and answer.field == "new_time"
    assert "at most 120 min" in answer.reason
    for i in range(3):
        clock.now += timedelta(hours=1)
        _do(endpoint, conn, StopPump(f"{i:032x}"))
    page = _ask(endpoint, conn, ReadEventLog(0, 2))
    assert isinstance(page, EventLogPage) and page.more and [e.seq for e in page.entries] == [1, 2]
    status = _ask(endpoint, conn, ReadEventLog(page.next_seq, 64))
    assert isinstance(status, EventLogPage) and not status.more


def test_interrogate_advances_the_pump_to_the_clock(tmp_path: Path) -> None:
    _state, clock, endpoint, conn = _setup(tmp_path)
    clock.now = START + timedelta(days=1)
    status = _ask(endpoint, conn, Interrogate())
    assert isinstance(status, StatusReport)
    assert status.status.now == clock.now
    assert status.status.delivered_ug == 600.0


def test_prepare_is_a_dry_run_the_memory_image_is_unchanged(tmp_path: Path) -> None:
    state, clock, endpoint, conn = _setup(tmp_path)
    clock.now = START + timedelta(hours=5)
    assert isinstance(_ask(endpoint, conn, Interrogate()), StatusReport)  # advance, charge
    handler = endpoint.handler
    assert isinstance(handler, FirmwareHandler)
    image, banks = handler.firmware.to_image(), state.boot().firmware.to_image()
    saves = handler.saves
    pump = endpoint.connection()
    conn.receive_data(pump.receive_data(conn.start_handshake(), 0.0))
    prepared = _exchange(pump, conn, Prepare(Refill(RID, 19.0, 1000.0)))
    assert isinstance(prepared, Prepared)
    changes = prepared.summary["changes"]
    assert isinstance(changes, dict)
    assert changes["concentration_ug_per_ml"] == {"old": 500.0, "new": 1000.0}
    assert changes["reservoir_ml"] == {"old": 20.0 - 600.0 * 5 / 24 / 500.0, "new": 19.0}
    # Nothing real moved: the firmware in memory, the banks on disk, no save, no log entry.
    assert handler.firmware.to_image() == image
    assert state.boot().firmware.to_image() == banks and handler.saves == saves
    # A firmware refusal at prepare is a Rejected, and still changes nothing.
    assert isinstance(_exchange(pump, conn, Prepare(Refill("f" * 32, 25.0, 500.0))), Rejected)
    assert handler.firmware.to_image() == image and handler.saves == saves
    # The commit applies it.
    assert _exchange(pump, conn, Commit(RID, prepared.challenge)) == Accepted(RID)
    assert state.boot().firmware.concentration_ug_per_ml == 1000.0
