"""Every calibration target of the population model at once (docs/pharmacology.md tables them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from itb.pharmacology.targets import TARGETS, Target, measure_all

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pharmacology.md"


@pytest.fixture(scope="module")
def measured() -> list[tuple[Target, float]]:
    return measure_all()


def test_every_target_is_met_at_once(measured: list[tuple[Target, float]]) -> None:
    missed = [
        f"{t.name} = {v:.3g}, target {t.low:g} to {t.high:g} ({t.source})"
        for t, v in measured
        if not t.met_by(v)
    ]
    assert not missed, "\n".join(missed)


def test_the_docs_table_lists_every_target() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert [t.name for t in TARGETS if t.name not in text] == []
