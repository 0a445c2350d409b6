"""The alarm test over telemetry, on the real firmware handler: clinician only, applied once
per request id, on disk with its tones before the answer; and over TCP with the programmer CLI."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
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
    Refused,
    Request,
    RequestEnvelope,
    Response,
    TestAlarm,
)
from itb.therapy import continuous
from tests.pumpd.support import connection, itb_json, make_pump, running

START = datetime(2027, 1, 4, 8, 0)
RID = "00112233445566778899aabbccddeeff"
TONES = [
    {"priority": "critical", "pattern": "two-tone", "duration_s": 3.0},
    {"priority": "non_critical", "pattern": "single tone", "duration_s": 1.0},
]  # domain.md "Alarm sounds" (S7 S21 S22)


class _Pump:
    """A pump on disk behind the real endpoint, with a clinician's and a patient's key."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = StateDir(tmp_path / "pump")
        fw = Firmware.implant(
            pump_model("peristaltic-20"), START, serial="T-1", concentration_ug_per_ml=500.0,
            volume_ml=20.0, program=continuous(600.0),
        )  # fmt: skip
        self.state.create(fw)
        self.keys = {role: generate_private_key() for role in Role}
        paired = [PairedKey(public_key_of(k), role) for role, k in self.keys.items()]
        self.now = START + timedelta(days=1)
        handler = FirmwareHandler(self.state.boot().firmware, self.state, self._clock, paired, None)
        key = self.state.pump_private_key()
        self.endpoint = PumpEndpoint(key, paired, handler, random_bytes=os.urandom)

    def _clock(self) -> datetime:
        return self.now

    def session(self, role: Role) -> tuple[PumpConnection, ProgrammerConnection]:
        conn = ProgrammerConnection(self.keys[role], public_key_of(self.state.pump_private_key()))
        pump = self.endpoint.connection()
        conn.receive_data(pump.receive_data(conn.start_handshake(), 0.0))
        return pump, conn


def _answer(pump: PumpConnection, conn: ProgrammerConnection, frame: bytes) -> Response:
    (event,) = conn.receive_data(pump.receive_data(frame, 0.0))
    assert isinstance(event, ResponseReceived)
    return event.response


def _ask(pump: PumpConnection, conn: ProgrammerConnection, request: Request) -> Response:
    return _answer(pump, conn, conn.send(request)[1])


def _tests_on_disk(state: StateDir) -> list[dict[str, object]]:
    return [dict(e.data) for e in state.boot().firmware.log.entries() if e.kind == "alarm_test"]


def test_a_clinician_alarm_test_is_on_disk_with_its_tones_and_applied_once(
    tmp_path: Path,
) -> None:
    pump = _Pump(tmp_path)
    before = pump.state.boot().firmware.status()
    link, conn = pump.session(Role.CLINICIAN)
    counter, frame = conn.send(TestAlarm(RID))
    assert _answer(link, conn, frame) == Accepted(RID)
    assert _answer(link, conn, conn.resend(counter)) == Accepted(RID)  # a retransmission
    again, again_conn = pump.session(Role.CLINICIAN)  # the same id in a new session
    assert _ask(again, again_conn, TestAlarm(RID)) == Accepted(RID)
    assert _tests_on_disk(pump.state) == [{"tones": TONES}]  # sounded once
    after = pump.state.boot().firmware.status()
    assert (after.mode, after.program, after.alarms) == (before.mode, before.program, ())


def test_the_patients_remote_may_not_sound_the_alarm_test(tmp_path: Path) -> None:
    pump = _Pump(tmp_path)
    link, conn = pump.session(Role.PATIENT)
    assert _ask(link, conn, TestAlarm(RID)) == Refused()
    assert _tests_on_disk(pump.state) == []


def test_the_alarm_test_crosses_the_wire_as_itself() -> None:
    wire = RequestEnvelope(9, TestAlarm(RID)).to_wire()
    assert wire == {"counter": 9, "type": "test_alarm", "body": {"request_id": RID}}
    assert RequestEnvelope.from_wire(wire) == RequestEnvelope(9, TestAlarm(RID))


def test_the_programmer_cli_tests_the_alarm_of_a_served_pump_and_a_patient_key_cannot(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician, patient) = make_pump(tmp_path, "clinician", "patient")
    with running(pump_dir) as pump:
        code, out = itb_json("programmer", "test-alarm", *connection(pump, patient))
        assert (code, out["status"]) == (1, "refused")
        code, out = itb_json("programmer", "test-alarm", *connection(pump, clinician))
        assert (code, out["status"], out["tones"]) == (0, "done", TONES)
        code, status = itb_json("programmer", "interrogate", *connection(pump, clinician))
        assert (status["mode"], status["alarms"]) == ("running", [])
    log = StateDir(pump_dir).boot().firmware.log.entries()
    assert [e.data for e in log if e.kind == "alarm_test"] == [{"tones": TONES}]
    refused = [e.data for e in log if e.kind == "link_refused"]
    assert [(r["request_type"], r["role"]) for r in refused] == [("test_alarm", "patient")]
