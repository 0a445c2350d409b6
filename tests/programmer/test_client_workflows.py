"""The programmer facade against a real (in-process) pump: checks run before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from itb.link.client import (
    AcknowledgementRequiredError,
    ConfirmationRequiredError,
    PumpSession,
    run_session,
)
from itb.pump.status import BolusKind, PumpStatus
from itb.telemetry.endpoint import Outcome, Role
from itb.telemetry.messages import LogRecord
from itb.therapy import continuous
from tests.programmer.client_support import START, served_pump


def _commands(entries: list[LogRecord]) -> list[str]:
    return [str(e.data["request"]) for e in entries if e.kind == "command"]


def test_a_flagged_discrepancy_sends_nothing_until_acknowledged(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> tuple[list[LogRecord], PumpStatus, Outcome]:
        with pytest.raises(AcknowledgementRequiredError) as caught:
            await session.refill(withdrawn_ml=10.0, volume_ml=20.0, concentration_ug_per_ml=500.0)
        assert caught.value.check.flagged
        entries, _ = await session.event_log()
        report = await session.refill(
            withdrawn_ml=10.0, volume_ml=20.0, concentration_ug_per_ml=500.0,
            acknowledge_discrepancy=True,
        )  # fmt: skip
        return entries, await session.interrogate(), report.outcome

    with served_pump(tmp_path) as pump:
        entries_before, status, outcome = run_session(pump.address, work)
    assert _commands(entries_before) == []
    assert outcome is Outcome.DONE
    # The served pump runs on the wall clock: under load a stroke may fall between the refill
    # and the interrogation, so the fill is what is left plus what went out since.
    assert status.reservoir_ml + status.delivered_since_refill_ml == pytest.approx(20.0, abs=1e-9)


def test_a_dose_warning_needs_a_reason_and_is_sent_with_one(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> tuple[float, float]:
        with pytest.raises(ConfirmationRequiredError):
            await session.program(continuous(1100.0))
        unchanged = (await session.interrogate()).daily_dose_ug
        report = await session.program(continuous(1100.0), confirmation_reason="reviewed")
        assert report.details["confirmation_reason"] == "reviewed"
        return unchanged, (await session.interrogate()).daily_dose_ug

    with served_pump(tmp_path) as pump:
        assert run_session(pump.address, work) == pytest.approx((600.0, 1100.0))


def test_a_bridge_after_a_concentration_change_pushes_the_dead_space(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> tuple[dict[str, object], PumpStatus]:
        await session.refill(
            withdrawn_ml=19.99, volume_ml=20.0, concentration_ug_per_ml=1000.0,
            acknowledge_discrepancy=True,
        )  # fmt: skip
        report = await session.bridge_bolus()
        assert report.outcome is Outcome.DONE
        return report.details, await session.interrogate()

    with served_pump(tmp_path) as pump:
        details, status = run_session(pump.address, work)
    assert status.bolus is not None and status.bolus.kind is BolusKind.BRIDGE
    assert details["volume_ml"] == pytest.approx(0.2 + 0.286)  # tubing + untrimmed catheter


def test_no_bridge_without_a_concentration_change(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> None:
        with pytest.raises(ValueError, match="no bridge needed"):
            await session.bridge_bolus()

    with served_pump(tmp_path) as pump:
        run_session(pump.address, work)


def test_priming_needs_a_confirmation_that_the_catheter_is_empty(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> list[LogRecord]:
        with pytest.raises(ConfirmationRequiredError, match="empty catheter"):
            await session.priming_bolus()
        return (await session.event_log())[0]

    with served_pump(tmp_path) as pump:
        assert _commands(run_session(pump.address, work)) == []


def test_a_patient_is_refused_a_program_change(tmp_path: Path) -> None:
    async def work(session: PumpSession) -> Outcome:
        return (await session.program(continuous(620.0))).outcome

    with served_pump(tmp_path, Role.PATIENT) as pump:
        assert run_session(pump.address, work) is Outcome.REFUSED


def test_a_program_goes_as_prepare_and_commit_and_reports_the_pumps_summary(
    tmp_path: Path,
) -> None:
    async def work(session: PumpSession) -> tuple[dict[str, object], list[LogRecord]]:
        report = await session.program(continuous(650.0))
        assert report.outcome is Outcome.DONE
        return report.to_dict(), (await session.event_log())[0]

    with served_pump(tmp_path) as pump:
        out, entries = run_session(pump.address, work)
    summary = out["pump_summary"]
    assert isinstance(summary, dict) and summary["request"] == "set_program"
    assert summary["changes"]["daily_dose_ug"] == {"old": 600.0, "new": 650.0}
    assert _commands(entries) == ["set_program"]  # applied once, by the commit
    assert [e for e in entries if e.kind == "link_refused"] == []


def test_one_interrogation_is_one_session_and_reads_the_pumps_clock(tmp_path: Path) -> None:
    """The clinic needs the pump's clock and status: one handshake, one charge to the battery."""

    async def work(session: PumpSession) -> PumpStatus:
        return await session.interrogate()

    with served_pump(tmp_path) as pump:
        assert pump.pump.endpoint.handshakes == 0
        status = run_session(pump.address, work)
        assert pump.pump.endpoint.handshakes == 1
    assert status.serial == "T-1"
    assert status.now >= START  # the pump's clock, from the same interrogation
