"""Restart accounting: a pump killed and restarted has delivered over the time it was down."""

from __future__ import annotations

import time
from pathlib import Path

from itb.link.client import PumpAddress, PumpSession, run_session
from itb.pump.hardware import pump_model
from itb.pump.status import PumpStatus
from itb.units import SECONDS_PER_DAY
from tests.pumpd.support import PumpProcess, make_pump

SPEED = 3600.0  # an hour a second


def _status(pump: PumpProcess, key_dir: Path) -> PumpStatus:
    address = PumpAddress.from_files(
        pump.address(), key_dir / "programmer.key", pump.state / "pump.pub"
    )

    async def work(session: PumpSession) -> PumpStatus:
        return await session.interrogate()

    return run_session(address, work)


def test_the_reservoir_drops_by_what_the_program_delivers_while_the_pump_was_down(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    pump = PumpProcess(pump_dir, speed=SPEED)
    try:
        pump.start()
        before = _status(pump, clinician)
        killed_wall_s = time.time()
        pump.kill()
        time.sleep(1.5)
        restarted_wall_s = time.time()
        pump.start()
        after = _status(pump, clinician)
    finally:
        pump.kill()

    elapsed_s = (after.now - before.now).total_seconds()
    # the pump clock ran on through the down time (at least speed × the wall time it was down)
    assert elapsed_s >= SPEED * (restarted_wall_s - killed_wall_s)
    model = pump_model(after.model)
    assert before.concentration_ug_per_ml is not None
    flow_ml_per_s = before.daily_dose_ug / before.concentration_ug_per_ml / SECONDS_PER_DAY
    expected_ml = flow_ml_per_s * elapsed_s
    tolerance_ml = model.quantum_ml + flow_ml_per_s * 1e-6  # one stroke + the clock's 1 µs
    assert abs((before.reservoir_ml - after.reservoir_ml) - expected_ml) <= tolerance_ml
    assert abs((after.delivered_ml - before.delivered_ml) - expected_ml) <= tolerance_ml
    assert expected_ml > 10 * model.quantum_ml  # the check is not vacuous


def test_a_clean_stop_and_restart_keeps_the_program_and_the_log(tmp_path: Path) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    pump = PumpProcess(pump_dir, speed=SPEED)
    try:
        pump.start()
        address = PumpAddress.from_files(
            pump.address(), clinician / "programmer.key", pump_dir / "pump.pub"
        )
        from itb.therapy import continuous

        async def program(session: PumpSession) -> str:
            report = await session.program(continuous(620.0))
            return report.outcome.value

        assert run_session(address, program) == "done"
        assert pump.terminate() == 0
        pump.start()
        status = _status(pump, clinician)
    finally:
        pump.kill()
    assert status.daily_dose_ug == 620.0
