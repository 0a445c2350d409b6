"""The safety case check: every hazard mitigated by real code and proven by a test that passed.

``safety/hazards.toml`` is the hazard log (ISO 14971 style: hazard, harm, causes, mitigation,
tests). This tool reads it and, for ``check``, the JUnit XML of the pytest run that just
happened, and fails when:

- a hazard's mitigation does not resolve to a real object (``module.attr.attr``: imported, then
  looked up attribute by attribute);
- a hazard names no test, or a test that did not run in this run, failed, or was skipped
  (a parametrised test counts as passed only when every one of its cases passed);
- the log is malformed (an unknown key, a missing field, a duplicate id).

A hazard that is known but not yet controlled is logged with ``status = "open"`` and the issue
that tracks it: the check lists it visibly and does not count it as mitigated. ``render``
writes ``docs/safety.md`` from the log; ``check`` also fails when that file is stale.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
import xml.etree.ElementTree as ET  # nosec B405: parses our own pytest output only
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HAZARD_KEYS = {"id", "title", "harm", "phase", "causes", "mitigation", "tests", "status", "issue"}
REQUIRED = ("id", "title", "harm", "phase", "causes")
HARMS = {
    "overdose",
    "underdose/withdrawal",
    "wrong drug or concentration",
    "pocket fill",
    "wrong patient or pump",
    "telemetry attack",
    "clinic attack",
    "data loss",
    "clock/time-zone error",
    "use error",
    "loss of delivery",
    "privacy",
}


class HazardLogError(ValueError):
    """The hazard log itself is malformed."""


@dataclass(frozen=True, slots=True)
class Hazard:
    id: str
    title: str
    harm: str
    phase: str
    causes: tuple[str, ...]
    mitigation: tuple[str, ...]
    tests: tuple[str, ...]
    status: str
    issue: str

    @property
    def open(self) -> bool:
        return self.status == "open"


def _strings(entry: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise HazardLogError(f"{where}.{key}: expected a list of non-empty strings")
    return tuple(value)


def _hazard(entry: dict[str, object], index: int) -> Hazard:
    where = f"hazard[{index}]"
    unknown = sorted(set(entry) - HAZARD_KEYS)
    if unknown:
        raise HazardLogError(f"{where}: unknown keys {unknown}; known: {sorted(HAZARD_KEYS)}")
    for key in REQUIRED:
        if not isinstance(entry.get(key), str | list) or not entry.get(key):
            raise HazardLogError(f"{where}.{key}: required")
    harm = str(entry["harm"])
    if harm not in HARMS:
        raise HazardLogError(f"{where}.harm={harm!r}: expected one of {sorted(HARMS)}")
    status = str(entry.get("status", "mitigated"))
    if status not in ("mitigated", "open"):
        raise HazardLogError(f"{where}.status={status!r}: expected 'mitigated' or 'open'")
    hazard = Hazard(
        id=str(entry["id"]),
        title=str(entry["title"]),
        harm=harm,
        phase=str(entry["phase"]),
        causes=_strings(entry, "causes", where),
        mitigation=_strings(entry, "mitigation", where),
        tests=_strings(entry, "tests", where),
        status=status,
        issue=str(entry.get("issue", "")),
    )
    if hazard.open and not hazard.issue:
        raise HazardLogError(f"{where} ({hazard.id}): an open hazard names the issue tracking it")
    return hazard


def load(path: Path) -> list[Hazard]:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    entries = data.get("hazard")
    if not isinstance(entries, list) or not entries:
        raise HazardLogError(f"{path}: expected [[hazard]] tables")
    hazards = [_hazard(entry, i) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for hazard in hazards:
        if hazard.id in seen:
            raise HazardLogError(f"{path}: duplicate hazard id {hazard.id}")
        seen.add(hazard.id)
    return hazards


def resolves(dotted: str) -> bool:
    """True when ``dotted`` names a real module attribute (``pkg.module.Class.method``)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def junit_outcomes(path: Path) -> dict[str, list[str]]:
    """Test node id -> the outcome of each of its cases: a hazard may name a test with its
    parameters (``test_x[sqlite]``, that case alone) or without (every case must pass)."""
    outcomes: dict[str, list[str]] = {}
    root = ET.parse(path).getroot()  # nosec B314: our own pytest output
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        node = _node_id(classname, name.split("[", 1)[0])
        nodes = [node, f"{node}[{name.split('[', 1)[1]}"] if "[" in name else [node]
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        for each in nodes:
            outcomes.setdefault(each, []).append(outcome)
    return outcomes


def _node_id(classname: str, name: str) -> str:
    # pytest's classname is the dotted module path, plus a class name for methods.
    parts = classname.split(".")
    for split in range(len(parts), 0, -1):
        candidate = Path(*parts[:split]).with_suffix(".py")
        if candidate.exists():
            return "::".join([candidate.as_posix(), *parts[split:], name])
    return f"{classname}::{name}"


def problems(hazards: Iterable[Hazard], outcomes: dict[str, list[str]]) -> list[str]:
    found: list[str] = []
    for hazard in hazards:
        if hazard.open:
            continue
        if not hazard.mitigation:
            found.append(f"{hazard.id}: no mitigation named")
        found += [
            f"{hazard.id}: mitigation {m} does not resolve to real code"
            for m in hazard.mitigation
            if not resolves(m)
        ]
        if not hazard.tests:
            found.append(f"{hazard.id}: no test named")
        for test in hazard.tests:
            results = outcomes.get(test)
            if not results:
                found.append(f"{hazard.id}: test {test} did not run in this run")
            elif "failed" in results:
                found.append(f"{hazard.id}: test {test} failed")
            elif "skipped" in results:
                found.append(f"{hazard.id}: test {test} was skipped")
    return found


def render(hazards: list[Hazard]) -> str:
    lines = [
        "# Safety case: the hazard log",
        "",
        "Generated from `safety/hazards.toml` by `python -m tools.safety_case render`; do not edit"
        " by hand. `make test` fails when a mitigated hazard's mitigation does not resolve to"
        " real code, or when one of its tests did not pass in that run (skipped counts as not"
        " passed). Open hazards are known and tracked by an issue; they are not yet controlled.",
        "",
        f"{sum(not h.open for h in hazards)} hazards mitigated, {sum(h.open for h in hazards)}"
        " open.",
        "",
    ]
    for hazard in hazards:
        state = f"open (issue {hazard.issue})" if hazard.open else "mitigated"
        lines += [
            f"## {hazard.id}: {hazard.title}",
            "",
            f"- **Harm:** {hazard.harm}. **Phase:** {hazard.phase}. **Status:** {state}.",
            "- **Causes:** " + "; ".join(hazard.causes) + ".",
        ]
        if hazard.mitigation:
            lines.append("- **Mitigation:** " + ", ".join(f"`{m}`" for m in hazard.mitigation))
        if hazard.tests:
            lines.append("- **Tests:**")
            lines += [f"  - `{t}`" for t in hazard.tests]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    log, doc = Path("safety/hazards.toml"), Path("docs/safety.md")
    try:
        hazards = load(log)
    except (HazardLogError, tomllib.TOMLDecodeError, OSError) as err:
        print(f"safety case: {err}")
        return 1
    if argv == ["render"]:
        doc.write_text(render(hazards), encoding="utf-8")
        print(f"safety case: wrote {doc} ({len(hazards)} hazards)")
        return 0
    if len(argv) == 2 and argv[0] == "check":
        try:
            outcomes = junit_outcomes(Path(argv[1]))
        except (ET.ParseError, OSError) as err:
            print(f"safety case: {argv[1]}: not a readable JUnit XML file ({err})")
            return 1
        found = problems(hazards, outcomes)
        if not doc.exists() or doc.read_text(encoding="utf-8") != render(hazards):
            found.append(f"{doc} is stale: run `python -m tools.safety_case render`")
        for hazard in (h for h in hazards if h.open):
            print(f"safety case: OPEN {hazard.id} ({hazard.issue}): {hazard.title}")
        for line in found:
            print(f"safety case: FAIL {line}")
        mitigated = sum(not h.open for h in hazards)
        print(f"safety case: {mitigated} hazards mitigated and tested, {len(found)} problems")
        return 1 if found else 0
    print("usage: python -m tools.safety_case render | check JUNIT.xml")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
