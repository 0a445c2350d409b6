"""The patient remote's settings, through the real paths: a scenario given to ``itb pump init``,
the set-patient-bolus-limits command over telemetry, and later program and concentration
changes. The pump refuses settings it could never honour, naming the field and what would work
(the pump: peristaltic-20, at most 24 mL/day, 600 µg/day of 500 µg/mL)."""

from __future__ import annotations

from pathlib import Path

from itb.link.client import CommandReport, PumpSession, run_session
from itb.pump.status import PatientBolusLimits, PumpStatus
from itb.telemetry.endpoint import Outcome
from itb.telemetry.messages import SetPatientBolusLimits
from tests.programmer.client_support import served_pump
from tests.pumpd.support import SCENARIO, connection, itb, itb_json, running


def _scenario(tmp_path: Path, dose_ug: float, duration_min: float, lockout_min: float) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(
        SCENARIO + f"\n[patient_bolus]\ndose_ug = {dose_ug}\nduration_min = {duration_min}\n"
        f"lockout_min = {lockout_min}\nmax_per_day = 4\n",
        encoding="utf-8",
    )
    return path


def test_a_patient_bolus_too_fast_for_the_motor_is_refused_when_the_pump_is_set_up(
    tmp_path: Path,
) -> None:
    # 25 µg at 500 µg/mL is 50 µL. The motor pushes 24 mL/day = 0.2778 µL/s, the basal takes
    # 1.2 mL/day = 0.0139 µL/s: 50 / 0.2639 = 189.5 s = 3.16 min, said as 3.2 (rounded up).
    result = itb("pump", "init", "--state", str(tmp_path / "pump"),
                 "--scenario", str(_scenario(tmp_path, 25.0, 1.0, 60.0)))  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert "duration_min" in result.stderr and "at least 3.2 min" in result.stderr
    assert not (tmp_path / "pump" / "pump.pub").exists()  # no pump was made
    ok = itb("pump", "init", "--state", str(tmp_path / "pump"),
             "--scenario", str(_scenario(tmp_path, 25.0, 3.2, 60.0)))  # fmt: skip
    assert ok.returncode == 0, ok.stderr


async def _set(session: PumpSession, limits: PatientBolusLimits) -> CommandReport:
    def make(rid: str) -> SetPatientBolusLimits:
        return SetPatientBolusLimits(
            rid, limits.dose_ug, limits.duration_min, limits.lockout_min, limits.max_per_day
        )

    return await session.send(make)


def test_meaningless_patient_remote_settings_are_refused_over_telemetry(tmp_path: Path) -> None:
    refused = {
        # too fast on top of the basal (see above): the shortest possible duration is named
        "duration_min": PatientBolusLimits(25.0, 1.0, 60.0, 4),
        # a 60 min bolus with a 30 min lockout: the real lockout would be the bolus itself
        "lockout_min": PatientBolusLimits(25.0, 60.0, 30.0, 4),
        # a 360 min lockout lets at most 1440 / 360 = 4 into any 24 h, never 6
        "max_per_day": PatientBolusLimits(25.0, 5.0, 360.0, 6),
    }

    async def work(session: PumpSession) -> tuple[dict[str, CommandReport], PumpStatus]:
        reports = {}
        for name, limits in refused.items():
            reports[name] = await _set(session, limits)
        reports["accepted"] = await _set(session, PatientBolusLimits(25.0, 5.0, 360.0, 4))
        return reports, await session.interrogate()

    with served_pump(tmp_path) as pump:
        reports, status = run_session(pump.address, work)
    for name in refused:
        assert (reports[name].outcome, reports[name].field) == (Outcome.REJECTED, name)
    reasons = {name: reports[name].reason or "" for name in refused}
    assert "at least 3.2 min" in reasons["duration_min"]
    assert "allowed 60 to 1440 min" in reasons["lockout_min"]
    assert "at most 4 fit in 24 h" in reasons["max_per_day"]
    assert reports["accepted"].outcome is Outcome.DONE
    assert status.patient_bolus_limits == PatientBolusLimits(25.0, 5.0, 360.0, 4)


def test_a_program_change_that_would_leave_the_patient_bolus_impossible_is_refused(
    tmp_path: Path,
) -> None:
    # 25 µg over 3.2 min fits on 600 µg/day (3.16 min needed); on 780 µg/day the basal takes
    # 1.56 mL/day = 0.0181 µL/s and 50 µL needs 50 / 0.2597 = 192.5 s = 3.21 min: it would not.
    scenario = _scenario(tmp_path, 25.0, 3.2, 60.0)
    pump_dir = tmp_path / "pump"
    itb("pump", "init", "--state", str(pump_dir), "--scenario", str(scenario), check=True)
    itb("programmer", "keygen", "--out", str(tmp_path / "keys"), check=True)
    itb("pump", "pair", "--state", str(pump_dir), "--programmer",
        str(tmp_path / "keys" / "programmer.pub"), "--role", "clinician", check=True)  # fmt: skip
    limits = ["--origin", "spinal", "--phase", "titration"]
    with running(pump_dir) as pump:
        conn = connection(pump, tmp_path / "keys")
        code, out = itb_json("programmer", "program", *conn, *limits, "--rate-ug-per-day", "780")
        assert (code, out["status"], out["field"]) == (1, "rejected", "program"), out
        assert "patient's 25 µg bolus" in out["reason"] and "at least 3.3 min" in out["reason"]
        code, status = itb_json("programmer", "interrogate", *conn)
        assert round(float(status["daily_dose_ug"]), 6) == 600.0  # nothing changed


def test_a_refill_at_a_weaker_concentration_leaving_the_patient_bolus_impossible_is_refused(
    tmp_path: Path,
) -> None:
    # At 50 µg/mL the 25 µg bolus is 0.5 mL: over 5 min that is 144 mL/day, beyond 24.
    async def work(session: PumpSession) -> tuple[CommandReport, CommandReport, PumpStatus]:
        setting = await _set(session, PatientBolusLimits(25.0, 5.0, 60.0, 4))
        left_ml = (await session.interrogate()).reservoir_ml
        refill = await session.refill(
            withdrawn_ml=left_ml, volume_ml=20.0, concentration_ug_per_ml=50.0,
            acknowledge_discrepancy=True,
        )  # fmt: skip
        return setting, refill, await session.interrogate()

    with served_pump(tmp_path) as pump:
        setting, refill, status = run_session(pump.address, work)
    assert setting.outcome is Outcome.DONE
    assert (refill.outcome, refill.field) == (Outcome.REJECTED, "concentration_ug_per_ml")
    assert "patient's 25 µg bolus" in (refill.reason or "")
    assert status.concentration_ug_per_ml == 500.0  # the reservoir keeps what it had
