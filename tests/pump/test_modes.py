"""The mode table is the machine: every mode change the firmware makes is a row of it."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import itb.pump
from itb.pump.checks import CommandRejected
from itb.pump.faults import FaultKind
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.modes import INITIAL, REFUSALS, TRANSITIONS, Start, Trigger, next_mode
from itb.pump.status import Mode
from itb.pump.world import World
from itb.therapy import continuous

from .helpers import START, hours, new_pump

PUMP_SOURCES = sorted(Path(itb.pump.__file__).parent.glob("*.py"))


def test_every_mode_and_trigger_is_either_a_transition_or_a_refusal_with_a_reason() -> None:
    for mode in Mode:
        for trigger in Trigger:
            allowed = trigger in TRANSITIONS[mode]
            refused = (mode, trigger) in REFUSALS
            assert allowed != refused, (mode, trigger)


def _mode_assignments(path: Path) -> list[str]:
    """Functions of ``path`` that assign an attribute named ``mode``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "mode" for t in targets):
                found.append(f"{path.name}:{func.name}")
    return found


def test_the_firmware_changes_its_mode_in_one_place_that_reads_the_table() -> None:
    assignments = [a for path in PUMP_SOURCES for a in _mode_assignments(path)]
    assert assignments == ["firmware.py:change_mode"]
    source = (Path(itb.pump.__file__).parent / "firmware.py").read_text(encoding="utf-8")
    go = source[source.index("def change_mode(") :]
    assert "next_mode(self.mode, trigger)" in go.split("def ", 2)[1]


def _in_mode(mode: Mode, *, eos_in_s: float | None = None) -> Firmware:
    """A pump in ``mode``, built through its public seams (commands, boot, the memory image)."""
    fw = new_pump()
    if mode is Mode.SAFE_STATE and eos_in_s is None:
        # a low battery reset: settings lost, the concentration still known (a pump that lost
        # both memory banks also lost its concentration and refuses programs until a refill)
        fw.inject_fault(START, FaultKind.LOW_BATTERY_RESET)
        return fw
    fw.advance(START + hours(1))
    state = fw.to_state()
    state["mode"] = mode.value
    if eos_in_s is not None:  # the battery went past ERI long ago: EOS is near
        state["eri_s"] = fw.t_s - 1.0
        state["eos_s"] = fw.t_s + eos_in_s
    return Firmware.from_image(json.dumps(state).encode(), fw.world)


TRIGGERS: dict[Trigger, Callable[[Firmware], None]] = {
    Trigger.STOP: lambda fw: fw.stop(fw.now),
    Trigger.RESUME: lambda fw: fw.resume(fw.now),
    Trigger.PROGRAM: lambda fw: fw.set_program(fw.now, continuous(500.0)),
    Trigger.EOS_REACHED: lambda fw: fw.advance(fw.now + hours(1)),
    Trigger.SETTINGS_LOST: lambda fw: fw.inject_fault(fw.now, FaultKind.LOW_BATTERY_RESET),
}


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("trigger", list(Trigger))
def test_each_trigger_takes_each_mode_where_the_table_says(mode: Mode, trigger: Trigger) -> None:
    fw = _in_mode(mode, eos_in_s=60.0 if trigger is Trigger.EOS_REACHED else None)
    assert fw.mode is mode
    expected = next_mode(mode, trigger)
    if expected is None and trigger is not Trigger.EOS_REACHED:
        before = fw.to_image()
        with pytest.raises(CommandRejected) as refused:
            TRIGGERS[trigger](fw)
        assert refused.value.reason == REFUSALS[(mode, trigger)]
        assert fw.to_image() == before
        return
    TRIGGERS[trigger](fw)
    assert fw.mode is (mode if expected is None else expected)  # EOS stays EOS


def test_a_pump_starts_in_the_tables_initial_modes() -> None:
    assert new_pump().mode is INITIAL[Start.IMPLANT]
    world = World(reservoir_ul=20_000.0)
    safe = Firmware.safe_state(pump_model("peristaltic-20"), "T-1", START, world)
    assert safe.mode is INITIAL[Start.BOTH_BANKS_LOST]
