"""A crash between the pump command and the database write leaves both consistent after restart."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from itb.clinic import services
from itb.clinic.db import make_engine, make_session_factory
from itb.clinic.models import Pump, RefillRecord, Visit, VisitStatus
from itb.clinic.pumps import SimulatedPumps
from tests.clinic.clock import ManualClock
from tests.clinic.crash_refill import KILLED
from tests.clinic.support import Template, template_for

ROOT = Path(__file__).resolve().parents[2]


def _crash(template: Template, tmp_path: Path, mode: str) -> tuple[str, Path]:
    url, _, _ = template.copy(tmp_path)
    state_dir = tmp_path / "pumps"
    pumps = SimulatedPumps(ManualClock(), state_dir)  # pumps that outlive the clinic's process
    for fw in template.firmware.values():
        pumps.add(copy.deepcopy(fw))
    child = subprocess.run(
        [sys.executable, "-m", "tests.clinic.crash_refill", url, str(state_dir), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == KILLED, child.stderr
    return url, state_dir


def _refill_visit(db: Session) -> Visit:
    return db.execute(
        select(Visit).where(Visit.kind == "refill").order_by(Visit.id.desc()).limit(1)
    ).scalar_one()


def _record(db: Session, visit_id: int) -> RefillRecord | None:
    return db.execute(
        select(RefillRecord).where(RefillRecord.visit_id == visit_id)
    ).scalar_one_or_none()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_crash_after_the_pump_command_is_completed_from_the_pump_log_at_restart(
    kind: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> None:
    template = template_for(kind, templates, tmp_path_factory.getbasetemp())
    url, state_dir = _crash(template, tmp_path, "after_command")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as db:
        # what the crash left: the visit says the command went out, nothing else was written
        visit = _refill_visit(db)
        assert visit.status == VisitStatus.PUMP_COMMAND_SENT
        assert (
            db.execute(select(RefillRecord).where(RefillRecord.visit_id == visit.id)).first()
            is None
        )
    restarted = SimulatedPumps(ManualClock(), state_dir)
    assert restarted.firmware("SIM-001").reservoir_ml == 20.0  # the pump did refill
    with sessions() as db:
        settled = services.reconcile_pending(db, restarted, ManualClock()())
        assert [v.status for v in settled] == [VisitStatus.COMPLETED_AFTER_RESTART]
    with sessions() as db:
        visit = _refill_visit(db)
        record = db.execute(
            select(RefillRecord).where(RefillRecord.visit_id == visit.id)
        ).scalar_one()
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-001")).scalar_one()
        assert visit.status == VisitStatus.COMPLETED_AFTER_RESTART
        assert (record.filled_ml, record.withdrawn_ml) == (20.0, 2.8)
        assert pump.reservoir_ml == 20.0  # the database agrees with the pump
        assert services.reconcile_pending(db, restarted, ManualClock()()) == []
    engine.dispose()


def test_crash_before_the_pump_heard_the_command_marks_the_visit_not_applied(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> None:
    template = template_for("sqlite", templates, tmp_path_factory.getbasetemp())
    url, state_dir = _crash(template, tmp_path, "before_command")
    restarted = SimulatedPumps(ManualClock(), state_dir)
    assert restarted.firmware("SIM-001").reservoir_ml < 3.0  # never refilled
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        services.reconcile_pending(db, restarted, ManualClock()())
        visit = _refill_visit(db)
        pump = db.execute(select(Pump).where(Pump.serial == "SIM-001")).scalar_one()
        assert visit.status == VisitStatus.NOT_APPLIED
        assert pump.reservoir_ml is not None and pump.reservoir_ml < 3.0
        assert (
            db.execute(select(RefillRecord).where(RefillRecord.visit_id == visit.id)).first()
            is None
        )
    engine.dispose()
