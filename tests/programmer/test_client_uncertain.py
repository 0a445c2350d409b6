"""Uncertain commands: the journal keeps them between runs; the next connection settles them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from itb.cli import app
from itb.link.client import PumpSession, UncertainJournal, run_session
from itb.telemetry.messages import StopPump
from tests.programmer.client_support import served_pump


def test_the_journal_keeps_entries_per_pump(tmp_path: Path) -> None:
    journal = UncertainJournal(tmp_path / "j.json")
    journal.add("a" * 32, "pump1", "stop")
    journal.add("b" * 32, "pump2", "resume")
    journal.add("a" * 32, "pump1", "stop")
    assert [e["request_id"] for e in journal.pending("pump1")] == ["a" * 32]
    journal.remove(["a" * 32])
    assert journal.pending("pump1") == [] and len(journal.pending("pump2")) == 1


def test_the_next_cli_connection_settles_uncertain_commands_from_the_log(tmp_path: Path) -> None:
    with served_pump(tmp_path) as pump:

        async def stop(session: PumpSession) -> str:
            return (await session.send(StopPump)).request_id

        applied = run_session(pump.address, stop)
        never_arrived = "f" * 32
        from itb.telemetry.endpoint import key_id_of

        journal = UncertainJournal(pump.key_file.with_name("programmer.uncertain.json"))
        pump_id = key_id_of(pump.address.pump_public)
        journal.add(applied, pump_id, "stop")
        journal.add(never_arrived, pump_id, "resume")
        result = CliRunner().invoke(
            app,
            ["programmer", "interrogate", "--pump", f"127.0.0.1:{pump.port}", "--key",
             str(pump.key_file), "--pump-key", str(pump.pump_key_file), "--json"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {r["request_id"]: r["resolution"] for r in out["resolved"]} == {
        applied: "applied",
        never_arrived: "not_applied",
    }
    assert out["mode"] == "stopped"
    assert journal.pending(pump_id) == []
