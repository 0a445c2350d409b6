"""Run by test_crash.py in a child process: start a refill, then die at a chosen point.

``python -m tests.clinic.crash_refill URL STATE_DIR after_command|before_command``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from itb.clinic import services
from itb.clinic.db import make_engine, make_session_factory
from itb.clinic.models import Patient, User
from itb.clinic.pumps import SimulatedPumpLink, SimulatedPumps
from tests.clinic.clock import ManualClock

KILLED = 137


def main(url: str, state_dir: str, mode: str) -> None:
    clock = ManualClock()
    pumps = SimulatedPumps(clock, Path(state_dir))
    if mode == "before_command":
        # the radio link drops: the process dies before the pump hears the command
        SimulatedPumpLink.refill = lambda self, *a: os._exit(KILLED)  # type: ignore[method-assign]
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        patient = db.query(Patient).filter_by(mrn="DEMO-001").one()
        nurse = db.query(User).filter_by(username="nurse_demo").one()
        values = services.RefillInput(2.8, 20.0, 500.0)
        services.refill(
            db, pumps, patient, nurse, values, clock(), after_pump_command=lambda: os._exit(KILLED)
        )
    sys.exit(0)  # not reached


if __name__ == "__main__":
    main(*sys.argv[1:4])
