"""The battery's end: the service life's shut-off (S3 S4) and the 2011 advisory's failure modes
(S5 S7), as the firmware reports them and as a scenario run through the CLI shows them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from itb.cli import app
from itb.pump.alarms import AlarmKind, Priority
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.hardware import MODELS, pump_model
from itb.pump.status import Mode, PatientBolusLimits
from itb.therapy import continuous, from_pump_s
from itb.units import SECONDS_PER_YEAR

from .helpers import START, alarm_times, days, hours, new_pump

SERVICE_LIFE = timedelta(seconds=7 * SECONDS_PER_YEAR)  # S3 S4: 7 years, then shut-off
NINETY_DAYS = timedelta(days=90)
runner = CliRunner()


def _pump_at(flow_ml_per_day: float) -> Firmware:
    """A 40 mL pump at 2000 µg/mL delivering ``flow_ml_per_day``."""
    return new_pump(
        continuous(flow_ml_per_day * 2000.0),
        model="peristaltic-40",
        concentration_ug_per_ml=2000.0,
        volume_ml=40.0,
    )


def _live_until_eos(fw: Firmware, refill_every_days: float = 120.0) -> None:
    """Refill every ``refill_every_days`` until the pump reaches EOS (at most 8 years)."""
    t = START
    while not _at_eos(fw) and t < START + days(8 * 365.25):
        t += days(refill_every_days)
        fw.advance(t)
        if not _at_eos(fw):
            fw.refill(t, 40.0, 2000.0)


def _at_eos(fw: Firmware) -> bool:
    return fw.mode is Mode.EOS


# ---------------------------------------------------------------------- service life (H34)
@pytest.mark.parametrize("flow_ml_per_day", [0.1, 0.25])
def test_at_low_flow_the_service_life_shuts_the_pump_off_at_seven_years(
    flow_ml_per_day: float,
) -> None:
    # battery alone: 619.4 mAh / (10 + 1.667 F) µA = 6.95 y at 0.1, 6.78 y at 0.25 mL/day,
    # both after the service life's notice at 7 y − 90 d = 6.75 y: the shut-off comes first
    fw = _pump_at(flow_ml_per_day)
    battery = fw.status().battery
    assert battery.predicted_eri_at == START + SERVICE_LIFE - NINETY_DAYS
    assert battery.predicted_eos_at == START + SERVICE_LIFE
    _live_until_eos(fw)
    alarms = alarm_times(fw)
    assert alarms["eri"] == START + SERVICE_LIFE - NINETY_DAYS  # the clinic's 90 days' notice
    assert alarms["eos"] == START + SERVICE_LIFE
    eri_entry = next(e for e in fw.log.entries() if e.data.get("alarm") == "eri")
    assert eri_entry.data["cause"] == "service_life"
    delivered = fw.status().delivered_ml
    fw.advance(fw.now + days(30))
    assert fw.status().delivered_ml == delivered  # nothing after the shut-off


def test_at_one_ml_a_day_the_battery_ends_first_and_eos_is_90_days_after_eri() -> None:
    # 619.4 mAh / 11.67 µA = 53 091 h = 6.06 y to ERI; EOS 90 days later, before 7 years
    fw = _pump_at(1.0)
    predicted = fw.status().battery
    assert predicted.predicted_eri_at is not None and predicted.predicted_eos_at is not None
    assert predicted.predicted_eos_at - predicted.predicted_eri_at == NINETY_DAYS
    assert predicted.predicted_eos_at < START + SERVICE_LIFE
    _live_until_eos(fw, refill_every_days=30.0)
    alarms = alarm_times(fw)
    years_to_eri = (alarms["eri"] - START).total_seconds() / SECONDS_PER_YEAR
    assert years_to_eri == pytest.approx(6.06, abs=0.01)
    assert alarms["eos"] - alarms["eri"] == NINETY_DAYS
    assert alarms["eri"] == predicted.predicted_eri_at  # the prediction at implant held


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("flow_ml_per_day", [0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
def test_the_closed_form_takes_whichever_comes_first(name: str, flow_ml_per_day: float) -> None:
    model = pump_model(name)
    notice_years = model.max_service_life_years - model.eos_after_eri_days / 365.25
    battery_years = model.battery_years_to_eri(flow_ml_per_day)
    assert model.years_to_eri(flow_ml_per_day) == pytest.approx(min(battery_years, notice_years))


def test_the_peristaltic_service_life_is_the_makers_seven_years() -> None:
    assert pump_model("peristaltic-20").max_service_life_years == 7.0  # S3 S4
    assert pump_model("peristaltic-40").max_service_life_years == 7.0


def test_the_implant_date_survives_the_memory_image() -> None:
    fw = _pump_at(0.1)
    fw.advance(START + days(10))
    copy = Firmware.from_image(fw.to_image(), fw.world)
    assert copy.implanted_s == fw.implanted_s
    assert copy.status().battery.predicted_eos_at == START + SERVICE_LIFE


def test_the_cli_scenario_reports_the_shut_off_as_the_predicted_eos(tmp_path: Path) -> None:
    # the user's path: `itb pump simulate --json` prints the pump's status as it sends it
    scenario = tmp_path / "low-flow.toml"
    scenario.write_text(
        """
[pump]
model = "peristaltic-40"
start = 2027-01-04T08:00:00

[drug]
concentration_ug_per_ml = 2000.0
volume_ml = 40.0

[program]
rate_ug_per_day = 200.0
""",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["pump", "simulate", str(scenario), "--until", "1d", "--json"])
    assert result.exit_code == 0, result.output
    battery = json.loads(result.stdout)["status"]["battery"]
    # 0.1 mL/day: the battery would last 6.95 y; the shut-off at 7 y comes first
    assert battery["predicted_eos_at"] == (START + SERVICE_LIFE).isoformat()
    assert battery["predicted_eri_at"] == (START + SERVICE_LIFE - NINETY_DAYS).isoformat()


# ---------------------------------------------------------------------- the 2011 advisory
def test_a_low_battery_reset_runs_the_minimum_rate_with_a_critical_alarm_until_reprogrammed() -> (
    None
):
    fw = new_pump()  # 600 µg/day at 500 µg/mL: 1.2 mL/day
    fw.set_patient_bolus_limits(START, PatientBolusLimits(20.0, 10.0, 60.0, 4))
    fw.inject_fault(START + hours(1), FaultKind.LOW_BATTERY_RESET)
    status = fw.status()
    assert status.mode is Mode.SAFE_STATE
    assert [(a.kind, a.priority) for a in status.alarms] == [
        (AlarmKind.LOW_BATTERY_RESET, Priority.CRITICAL)
    ]
    # the settings are gone: the program is the model's minimum flow, no patient boluses
    assert status.program == continuous(0.048 * 500.0)
    assert status.patient_bolus_limits is None
    assert status.next_patient_bolus_at is None
    before = fw.status().delivered_ml
    fw.advance(START + hours(1) + days(10))
    # 0.048 mL/day for 10 days = 0.48 mL, counted in 0.25 µL strokes
    assert fw.status().delivered_ml - before == pytest.approx(0.48, abs=0.00025)
    with pytest.raises(CommandRejected, match="cleared by reprogram"):
        fw.clear_alarm(fw.now, AlarmKind.LOW_BATTERY_RESET)
    fw.set_program(fw.now, continuous(600.0))  # the clinician reprograms
    assert fw.mode is Mode.RUNNING and fw.status().alarms == ()


def test_a_premature_eri_raises_the_non_critical_eri_alarm_and_eos_follows_in_90_days() -> None:
    fw = new_pump()
    at = START + days(400)
    fw.advance(at)
    fw.refill(at, 20.0, 500.0)
    fw.inject_fault(at, FaultKind.PREMATURE_ERI)
    status = fw.status()
    assert status.mode is Mode.RUNNING  # still delivering the program
    assert [(a.kind, a.priority) for a in status.alarms] == [(AlarmKind.ERI, Priority.NON_CRITICAL)]
    assert status.battery.eri_at == at
    assert status.battery.eos_at == status.battery.predicted_eos_at == at + NINETY_DAYS
    # the battery is at its ERI charge, not at what six years of use would leave
    assert status.battery.remaining_mah == pytest.approx(fw.model.eri_reserve_mah)
    with pytest.raises(CommandRejected, match="already past ERI"):
        fw.inject_fault(at, FaultKind.PREMATURE_ERI)


def test_a_premature_eos_stops_delivery_now_with_the_critical_eos_alarm() -> None:
    fw = new_pump()
    at = START + days(3)
    fw.inject_fault(at, FaultKind.PREMATURE_EOS)
    status = fw.status()
    assert status.mode is Mode.EOS
    assert [(a.kind, a.priority) for a in status.alarms] == [(AlarmKind.EOS, Priority.CRITICAL)]
    assert status.battery.eos_at == status.battery.predicted_eos_at == at
    assert status.battery.eri_at == at  # no notice was given
    delivered = status.delivered_ml
    fw.advance(at + days(5))
    assert fw.status().delivered_ml == delivered
    before = fw.to_image()
    with pytest.raises(CommandRejected):
        fw.inject_fault(fw.now, FaultKind.LOW_BATTERY_RESET)  # nothing left to reset
    assert fw.to_image() == before


def test_battery_faults_as_scenario_events_through_the_cli(tmp_path: Path) -> None:
    scenario = tmp_path / "advisory.toml"
    scenario.write_text(
        """
[pump]
model = "peristaltic-20"
start = 2027-01-04T08:00:00

[drug]
concentration_ug_per_ml = 500.0
volume_ml = 20.0

[program]
rate_ug_per_day = 600.0

[[events]]
at = 2027-01-05T08:00:00
action = "fault"
fault = "low_battery_reset"

[[events]]
at = 2027-01-06T08:00:00
action = "program"
rate_ug_per_day = 600.0

[[events]]
at = 2027-01-07T08:00:00
action = "fault"
fault = "premature_eos"
""",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["pump", "simulate", str(scenario), "--until", "5d", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    kinds = [(a["kind"], a["priority"]) for a in out["alarms"]]
    assert kinds == [("low_battery_reset", "critical"), ("eos", "critical")]
    assert out["status"]["mode"] == "eos"
    # 1 day at 1.2 mL/day, 1 day at 0.048 mL/day, 1 day at 1.2 mL/day, then nothing
    assert out["delivered_ml"] == pytest.approx(1.2 + 0.048 + 1.2, abs=0.00025)
    assert out["rejected"] == []


def test_the_fault_log_names_the_lost_program() -> None:
    fw = new_pump()
    fw.inject_fault(START + hours(2), FaultKind.LOW_BATTERY_RESET)
    fault = next(e for e in fw.log.entries() if e.kind == "fault")
    assert fault.data == {"fault": "low_battery_reset", "lost_program": {"rate_ug_per_day": 600.0}}
    assert from_pump_s(fault.t_s) == datetime(2027, 1, 4, 10, 0)
