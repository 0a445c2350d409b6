"""The clinic over telemetry: `itb pump serve` processes on 127.0.0.1, reached by the web app.

Real processes and real TCP (ephemeral ports); every pump process is killed at the end.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from itb.clinic import services
from itb.clinic.models import (
    AuditEntry,
    Catheter,
    Interrogation,
    Patient,
    Pump,
    PumpEvent,
    User,
    Visit,
)
from itb.clinic.pumps import (
    PumpCommandRefusedError,
    PumpCommandUncertainError,
    PumpLink,
    PumpUnreachableError,
    RealPumps,
)
from itb.clinic.telemetry_links import PumpDirectoryError, TelemetryPumps
from itb.link.keys import KeyOwner, load_public_key, write_keypair
from itb.link.transport import ProgrammerClient
from itb.therapy import continuous
from tests.clinic.support import Clinic, send_reviewed
from tests.pumpd.support import PumpProcess, connection, itb, itb_json, make_pump, running

SERIAL = "TEST-0001"  # the serial of tests/pumpd/support.py's scenario
PUMP_START = datetime(2027, 1, 4, 8, 0)  # its start: the clinic's clock is set to it


@pytest.fixture(scope="module")
def pump_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """One initialised pump, paired with a clinician key and a patient key (copied per test)."""
    tmp = tmp_path_factory.mktemp("telemetry-pump")
    state, (clinician, patient) = make_pump(tmp, "clinician", "patient")
    return state, clinician / "programmer.key", patient / "programmer.key"


@pytest.fixture
def pump(tmp_path: Path, pump_template: tuple[Path, Path, Path]) -> Iterator[PumpProcess]:
    state = tmp_path / "pump"
    shutil.copytree(pump_template[0], state)
    with running(state) as process:
        yield process


@pytest.fixture
def clinic_key(pump_template: tuple[Path, Path, Path]) -> Path:
    return pump_template[1]


def write_directory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pumps.toml"
    path.write_text(body, encoding="utf-8")
    return path


def pumps_for(tmp_path: Path, pump: PumpProcess, key: Path, serial: str = SERIAL) -> TelemetryPumps:
    directory = write_directory(
        tmp_path,
        f'[[pump]]\nserial = "{serial}"\naddress = "{pump.address()}"\n'
        f'pump_key = "{pump.state.name}/pump.pub"\n',  # relative to the file
    )
    return TelemetryPumps.from_files(directory, key)


def add_patient(c: Clinic, serial: str, key: Path) -> int:
    """A patient whose pump record has ``serial``, on the pump's program (600 µg/day)."""
    with c.sessions() as db:
        doctor = db.execute(select(User).where(User.username == "dr_demo")).scalar_one()
        patient = Patient(
            mrn="TEL-001",
            name="Toni Telemetry",
            origin="spinal",
            clinician_id=doctor.id,
            created_at=PUMP_START,
        )
        db.add(patient)
        db.flush()
        pump = Pump(
            patient_id=patient.id,
            model="peristaltic-20",
            serial=serial,
            implanted_at=PUMP_START,
            paired_key_hex=load_public_key(key.with_suffix(".pub"), KeyOwner.PROGRAMMER).hex(),
            active=True,
        )
        db.add(pump)
        db.flush()
        services.add_program_version(db, pump, continuous(600.0), doctor, None, PUMP_START)
        db.commit()
        return patient.id


def connect_clinic(c: Clinic, links: Any) -> None:
    c.app.state.settings.links = links
    c.clock.now = PUMP_START


def read_pump(pump: PumpProcess, key: Path) -> dict[str, Any]:
    """The pump's status as `itb programmer interrogate --json` reads it."""
    code, status = itb_json("programmer", "interrogate", *connection(pump, key.parent))
    assert code == 0, status
    return status


def stored_counts(c: Clinic) -> tuple[int, int, int]:
    with c.sessions() as db:
        return (
            db.execute(select(func.count()).select_from(Interrogation)).scalar_one(),
            db.execute(select(func.count()).select_from(Visit)).scalar_one(),
            db.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
        )


def visit_statuses(c: Clinic, patient_id: int) -> list[tuple[str, str]]:
    visits = c.client.get(f"/api/patients/{patient_id}/visits").json()
    return [(v["kind"], v["status"]) for v in visits]


# The clinic's workflows against a real pump process -----------------------------------------
def test_nurse_refills_and_physician_reprograms_a_pump_process(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)

    clinic.login("nurse_demo")
    answer = clinic.client.post(f"/api/patients/{patient_id}/interrogate")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"]["serial"] == SERIAL
    pump_said = read_pump(pump, clinic_key)
    ml_per_day = pump_said["daily_dose_ug"] / pump_said["concentration_ug_per_ml"]
    row = clinic.row(patient_id)
    assert row["serial"] == SERIAL
    assert row["reservoir_ml"] == pytest.approx(pump_said["reservoir_ml"], abs=0.01)
    # (20 − 2 mL) ÷ 1.2 mL/day = 15 days, from the pump's own figures
    expected_days = (pump_said["reservoir_ml"] - pump_said["low_reservoir_alarm_ml"]) / ml_per_day
    assert row["days_to_low_reservoir"] == pytest.approx(expected_days, abs=0.1)
    assert row["days_to_empty"] == pytest.approx(pump_said["reservoir_ml"] / ml_per_day, abs=0.1)

    refill = clinic.client.post(
        f"/api/patients/{patient_id}/refill",
        json={
            "withdrawn_ml": round(pump_said["reservoir_ml"], 2),
            "filled_ml": 18.0,
            # the pump's concentration: another is a physician's concentration change (H33)
            "concentration_ug_per_ml": 500.0,
        },
    )
    assert refill.status_code == 200, refill.text
    assert refill.json()["discrepancy_flagged"] is False
    after_refill = read_pump(pump, clinic_key)
    assert after_refill["reservoir_ml"] == pytest.approx(18.0, abs=0.01)
    assert after_refill["concentration_ug_per_ml"] == 500.0
    assert clinic.row(patient_id)["reservoir_ml"] == pytest.approx(18.0, abs=0.01)

    clinic.login("dr_demo")
    program = send_reviewed(
        clinic,
        patient_id,
        {"rate_ug_per_day": 540.0, "confirm": True, "reason": "less tone at night"},
    )
    assert program.status_code == 200, program.text
    assert program.json()["version"] == 2
    assert read_pump(pump, clinic_key)["daily_dose_ug"] == pytest.approx(540.0)
    assert set(visit_statuses(clinic, patient_id)) == {
        ("refill", "completed"),
        ("programming", "completed"),
    }
    # the pump's own log is stored, each entry once: one refill and one program change
    with clinic.sessions() as db:
        kinds = list(db.execute(select(PumpEvent.kind).where(PumpEvent.serial == SERIAL)).scalars())
    assert (kinds.count("refill"), kinds.count("program")) == (1, 1)
    assert clinic.client.get("/api/audit/verify").json()["intact"] is True


def test_one_interrogation_is_one_telemetry_session(
    clinic: Clinic,
    tmp_path: Path,
    pump: PumpProcess,
    clinic_key: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each session costs the implant's battery a handshake: an interrogation reads the clock,
    the status and the log in one (no second session to ask the pump's time)."""
    opened: list[object] = []
    handshake = ProgrammerClient.handshake

    async def counted(client: ProgrammerClient) -> object:
        session = await handshake(client)
        opened.append(session)
        return session

    monkeypatch.setattr(ProgrammerClient, "handshake", counted)
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("nurse_demo")
    for expected in (1, 2):
        answer = clinic.client.post(f"/api/patients/{patient_id}/interrogate")
        assert answer.status_code == 200, answer.text
        assert len(opened) == expected  # one handshake each, over real TCP to the pump process


def test_a_pump_with_another_serial_is_refused_before_anything_is_stored(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    # the directory (and the patient's record) say OTHER-9, but the pump there is TEST-0001
    telemetry = pumps_for(tmp_path, pump, clinic_key, serial="OTHER-9")
    connect_clinic(clinic, telemetry)
    patient_id = add_patient(clinic, "OTHER-9", clinic_key)
    clinic.login("nurse_demo")
    before = stored_counts(clinic)

    answer = clinic.client.post(f"/api/patients/{patient_id}/interrogate")
    assert answer.status_code == 409
    assert (
        "TEST-0001" in answer.json()["detail"] and "nothing was stored" in answer.json()["detail"]
    )
    refill = clinic.client.post(
        f"/api/patients/{patient_id}/refill",
        json={"withdrawn_ml": 20.0, "filled_ml": 18.0, "concentration_ug_per_ml": 500.0},
    )
    assert refill.status_code == 409
    assert stored_counts(clinic) == before
    assert read_pump(pump, clinic_key)["reservoir_ml"] > 19.9  # not refilled

    # the link itself checks the serial before any command leaves
    with pytest.raises(PumpCommandRefusedError) as refused:
        telemetry.link("OTHER-9").set_program(continuous(300.0))
    assert refused.value.field == "serial"
    assert read_pump(pump, clinic_key)["daily_dose_ug"] == pytest.approx(600.0)


def test_a_stopped_pump_process_is_unreachable_and_nothing_is_stored(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("nurse_demo")
    assert clinic.client.post(f"/api/patients/{patient_id}/interrogate").status_code == 200
    pump.kill()
    before = stored_counts(clinic)

    answer = clinic.client.post(f"/api/patients/{patient_id}/interrogate")
    assert answer.status_code == 503
    assert "pump unreachable" in answer.json()["detail"]
    refill = clinic.client.post(
        f"/api/patients/{patient_id}/refill",
        json={"withdrawn_ml": 20.0, "filled_ml": 18.0, "concentration_ug_per_ml": 500.0},
    )
    assert refill.status_code == 503
    assert stored_counts(clinic) == before


class _Wrapped(RealPumps):
    """A real telemetry link with something done around its refill."""

    def __init__(self, pumps: TelemetryPumps, refill: Any) -> None:
        self._pumps = pumps
        self._refill = refill

    def link(self, serial: str) -> PumpLink:
        real = self._pumps.link(serial)
        wrapper = self

        class Link:
            def __init__(self) -> None:
                self.serial = serial

            def interrogate(self, since_seq: int = 0) -> Any:
                return real.interrogate(since_seq)

            def set_program(self, program: Any) -> None:
                real.set_program(program)

            def refill(self, volume_ml: float, concentration_ug_per_ml: float) -> None:
                wrapper._refill(real, volume_ml, concentration_ug_per_ml)

            def prime(self, volume_ml: float) -> None:
                real.prime(volume_ml)

            def bridge(self, volume_ml: float, duration_min: float) -> None:
                real.bridge(volume_ml, duration_min)

        return Link()


def test_an_uncertain_refill_stays_pending_and_is_settled_from_the_pump_log(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    telemetry = pumps_for(tmp_path, pump, clinic_key)

    def answer_lost(real: PumpLink, volume_ml: float, concentration_ug_per_ml: float) -> None:
        real.refill(volume_ml, concentration_ug_per_ml)  # applied by the pump...
        raise PumpCommandUncertainError("the answer was lost")  # ...but no answer came

    connect_clinic(clinic, _Wrapped(telemetry, answer_lost))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("nurse_demo")
    body = {"withdrawn_ml": 20.0, "filled_ml": 17.0, "concentration_ug_per_ml": 500.0}
    answer = clinic.client.post(f"/api/patients/{patient_id}/refill", json=body)
    assert answer.status_code == 504
    assert visit_statuses(clinic, patient_id) == [("refill", "pump_command_sent")]
    # the next interrogation settles it from the pump's event log: the refill was applied
    connect_clinic(clinic, telemetry)
    answer = clinic.client.post(f"/api/patients/{patient_id}/interrogate")
    assert answer.status_code == 200, answer.text
    assert visit_statuses(clinic, patient_id) == [("refill", "completed_after_restart")]
    assert clinic.row(patient_id)["reservoir_ml"] == pytest.approx(17.0, abs=0.01)
    with clinic.sessions() as db:  # nothing is left for the clinic's next start
        assert services.reconcile_pending(db, telemetry, PUMP_START) == []


def test_a_pump_lost_before_the_command_leaves_marks_the_visit_not_applied(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    def pump_gone(real: PumpLink, volume_ml: float, concentration_ug_per_ml: float) -> None:
        pump.kill()  # after the reading, before the command
        real.refill(volume_ml, concentration_ug_per_ml)

    connect_clinic(clinic, _Wrapped(pumps_for(tmp_path, pump, clinic_key), pump_gone))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    clinic.login("nurse_demo")
    answer = clinic.client.post(
        f"/api/patients/{patient_id}/refill",
        json={"withdrawn_ml": 20.0, "filled_ml": 17.0, "concentration_ug_per_ml": 500.0},
    )
    assert answer.status_code == 503
    assert "pump unreachable" in answer.json()["detail"]
    # not left pending (which would block the next visit until a restart)
    assert visit_statuses(clinic, patient_id) == [("refill", "not_applied")]


# The link's outcomes, straight ----------------------------------------------------------------
def test_link_maps_rejection_role_refusal_and_unpaired_key(
    tmp_path: Path, pump: PumpProcess, pump_template: tuple[Path, Path, Path]
) -> None:
    _, clinician_key, patient_key = pump_template
    link = pumps_for(tmp_path, pump, clinician_key).link(SERIAL)
    reading = link.interrogate(0)
    assert reading.status.serial == SERIAL
    assert [e["kind"] for e in reading.entries][:1] == ["implant"]
    later = link.interrogate(reading.entries[-1]["seq"])
    assert all(e["seq"] > reading.entries[-1]["seq"] for e in later.entries)

    with pytest.raises(PumpCommandRefusedError) as rejected:  # the firmware: never overfill
        link.refill(25.0, 500.0)
    assert rejected.value.field == "volume_ml"

    patient_link = pumps_for(tmp_path, pump, patient_key).link(SERIAL)
    with pytest.raises(PumpCommandRefusedError) as refused:  # the link: a patient's key
        patient_link.set_program(continuous(300.0))
    assert refused.value.field == "programmer_key"

    unpaired, _ = write_keypair(tmp_path / "stranger", KeyOwner.PROGRAMMER)
    with pytest.raises(PumpUnreachableError, match="refused the session"):
        pumps_for(tmp_path, pump, unpaired).link(SERIAL).interrogate(0)
    with pytest.raises(PumpUnreachableError, match="not in the clinic's pump directory"):
        pumps_for(tmp_path, pump, clinician_key).link("NOPE-1")

    status = read_pump(pump, clinician_key)
    assert status["reservoir_ml"] > 19.9 and status["daily_dose_ug"] == pytest.approx(600.0)


# The directory file --------------------------------------------------------------------------
@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    programmer_key, _ = write_keypair(tmp_path / "clinic", KeyOwner.PROGRAMMER)
    _, pump_pub = write_keypair(tmp_path / "pumps" / "a", KeyOwner.PUMP)
    return programmer_key, pump_pub


GOOD = '[[pump]]\nserial = "A-1"\naddress = "127.0.0.1:7001"\npump_key = "pumps/a/pump.pub"\n'


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (GOOD + 'colour = "red"\n', "pump[0].colour", "unknown key"),
        (GOOD.replace("7001", "70000"), "pump[0].address", "port 1 to 65535"),
        (GOOD.replace("127.0.0.1:7001", "localhost"), "pump[0].address", "HOST:PORT"),
        (GOOD.replace("pumps/a", "pumps/missing"), "pump[0].pump_key", "cannot read"),
        (GOOD.replace('serial = "A-1"\n', ""), "pump[0].serial", "missing"),
        (GOOD + "timeout_s = 0\n", "pump[0].timeout_s", "more than 0 up to 60 s"),
        (GOOD + "attempts = 50\n", "pump[0].attempts", "1 to 20"),
        (GOOD + GOOD, "pump[1].serial", "listed twice"),
        ('title = "x"\n' + GOOD, "title", "unknown key"),
        ("", "pump", "one or more [[pump]]"),
        ("[[pump]\n", "--pumps", "not valid TOML"),
    ],
)
def test_a_bad_directory_names_the_field(
    tmp_path: Path, keys: tuple[Path, Path], body: str, field: str, says: str
) -> None:
    with pytest.raises(PumpDirectoryError) as bad:
        TelemetryPumps.from_files(write_directory(tmp_path, body), keys[0])
    assert bad.value.field == field
    assert says in str(bad.value)


def test_a_good_directory_and_a_bad_programmer_key(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    directory = write_directory(tmp_path, GOOD + "timeout_s = 0.5\nattempts = 2\n")
    assert TelemetryPumps.from_files(directory, keys[0]).serials() == ["A-1"]
    with pytest.raises(PumpDirectoryError) as bad:
        TelemetryPumps.from_files(directory, keys[1])  # the pump's public key, not ours
    assert bad.value.field == "--programmer-key"


def test_serve_exits_2_on_a_bad_directory_before_touching_the_database(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    directory = write_directory(tmp_path, GOOD.replace("7001", "0"))
    database = tmp_path / "clinic.sqlite3"
    result = itb(
        "serve", "--pumps", str(directory), "--programmer-key", str(keys[0]),
        "--database-url", f"sqlite:///{database}",
    )  # fmt: skip
    assert result.returncode == 2
    assert "pump[0].address" in result.stderr
    assert not database.exists()
    alone = itb("serve", "--pumps", str(directory), "--database-url", f"sqlite:///{database}")
    assert alone.returncode == 2 and "--programmer-key" in alone.stderr


def _record_implant(clinic: Clinic, telemetry: TelemetryPumps) -> tuple[int, Any]:
    """An implant record (physician) for the telemetry pump of tests/pumpd/support.py."""
    connect_clinic(clinic, telemetry)
    clinic.login("dr_demo")
    patient = {"name": "Implant Telemetry", "mrn": "TEL-IMP", "age_years": 40, "origin": "spinal"}
    patient_id = int(clinic.client.post("/api/patients", json=patient).json()["id"])
    implant = {"model": "peristaltic-20", "serial": SERIAL, "catheter_trimmed_cm": 40.0,
               "concentration_ug_per_ml": 500.0, "filled_ml": 20.0,
               "program": {"rate_ug_per_day": 600.0}}  # fmt: skip
    return patient_id, clinic.client.post(f"/api/patients/{patient_id}/implant", json=implant)


def _priming_entries(clinic: Clinic) -> list[str]:
    with clinic.sessions() as db:
        rows = db.execute(
            select(PumpEvent.data_json).where(
                PumpEvent.serial == SERIAL, PumpEvent.kind == "bolus_start"
            )
        ).scalars()
        return [r for r in rows if '"kind":"priming"' in r]


def test_an_implant_record_primes_a_telemetry_pump_through_prepare_and_commit(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    """Q2 over the real link: StartBolus kind priming (a high-risk command: prepare, commit)
    goes to the pump; its log has the priming; the clinic stores it."""
    patient_id, response = _record_implant(clinic, pumps_for(tmp_path, pump, clinic_key))
    assert response.status_code == 201, response.text
    # catheter (110 − 40) × 0.0026 = 0.182 mL + the pump's 0.2 mL of tubing
    [entry] = _priming_entries(clinic)
    assert '"volume_ml":0.382' in entry
    visit = clinic.client.get(f"/api/patients/{patient_id}/visits").json()[0]
    assert visit["details"]["priming_sent"] is True
    assert read_pump(pump, clinic_key)["bolus"]["kind"] == "priming"


def test_a_pump_whose_log_already_has_a_priming_is_never_primed_again(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    telemetry = pumps_for(tmp_path, pump, clinic_key)
    telemetry.link(SERIAL).prime(0.382)  # primed in the operating room by another programmer
    patient_id, response = _record_implant(clinic, telemetry)
    assert response.status_code == 201, response.text
    assert len(_priming_entries(clinic)) == 1  # the operating room's, not a second one
    visit = clinic.client.get(f"/api/patients/{patient_id}/visits").json()[0]
    assert visit["details"]["priming_sent"] is False


def test_a_physicians_concentration_change_sends_refill_bridge_and_program_over_the_link(
    clinic: Clinic, tmp_path: Path, pump: PumpProcess, clinic_key: Path
) -> None:
    """H33 over the real link: a nurse's 500 -> 1000 µg/mL is refused before the pump is read;
    a physician's, confirmed, sends the refill, StartBolus kind bridge and the program."""
    connect_clinic(clinic, pumps_for(tmp_path, pump, clinic_key))
    patient_id = add_patient(clinic, SERIAL, clinic_key)
    with clinic.sessions() as db:  # the catheter the bridge needs: 95 cm, 0.247 mL (S31)
        pump_id = db.execute(select(Pump.id).where(Pump.serial == SERIAL)).scalar_one()
        db.add(Catheter(patient_id=patient_id, pump_id=pump_id, length_cm=95.0,
                        volume_ml=0.247, implanted_at=PUMP_START))  # fmt: skip
        db.commit()
    left_ml = read_pump(pump, clinic_key)["reservoir_ml"]
    body = {"withdrawn_ml": round(left_ml, 2), "filled_ml": 18.0, "concentration_ug_per_ml": 1000.0}
    clinic.login("nurse_demo")
    refused = clinic.client.post(f"/api/patients/{patient_id}/refill", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-1] == "concentration_ug_per_ml"
    clinic.login("dr_demo")
    done = clinic.client.post(
        f"/api/patients/{patient_id}/refill", json={**body, "confirm_concentration_change": True}
    )
    assert done.status_code == 200, done.text
    assert done.json()["concentration_change_given"] == {"bridge_sent": True, "program_sent": True}
    after = read_pump(pump, clinic_key)
    assert after["concentration_ug_per_ml"] == 1000.0 and after["bolus"]["kind"] == "bridge"
    with clinic.sessions() as db:
        kinds = list(
            db.execute(
                select(PumpEvent.kind).where(PumpEvent.serial == SERIAL).order_by(PumpEvent.seq)
            ).scalars()
        )
    assert [k for k in kinds if k in ("refill", "bolus_start", "program")] == [
        "refill", "bolus_start", "program"
    ]  # fmt: skip
