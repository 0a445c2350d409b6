"""The supply-chain checks: an SBOM that misses a locked package fails; a vulnerability fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.supply_chain import check_audit, check_sbom


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def sbom(tmp_path: Path, components: dict[str, str]) -> Path:
    items = [{"type": "library", "name": n, "version": v} for n, v in components.items()]
    return write(tmp_path / "sbom.json", {"components": items})


def test_an_sbom_with_every_locked_package_passes_whatever_the_name_spelling(
    tmp_path: Path,
) -> None:
    lock = write(tmp_path / "lock", "typing_extensions==4.16.0\nPyYAML==6.0.3\n")
    assert check_sbom(sbom(tmp_path, {"typing-extensions": "4.16.0", "pyyaml": "6.0.3"}), lock) == 0


def test_a_missing_or_different_package_fails_and_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = write(tmp_path / "lock", "numpy==2.4.6\nscipy==1.17.1\n")
    assert check_sbom(sbom(tmp_path, {"numpy": "2.4.5"}), lock) == 1
    out = capsys.readouterr().out
    assert "numpy==2.4.6 is locked but the environment has 2.4.5" in out
    assert "scipy==1.17.1 is locked but missing from the SBOM" in out


def test_a_known_vulnerability_fails_and_unknown_packages_are_listed_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "3.1.6", "vulns": [{"id": "GHSA-x"}]},
            {"name": "numpy", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    assert check_audit(write(tmp_path / "audit.json", report)) == 1
    out = capsys.readouterr().out
    assert "jinja2 3.1.6: GHSA-x" in out
    assert "1 of 2 packages could not be audited" in out


def test_an_unreachable_advisory_source_is_a_visible_skip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_audit(tmp_path / "absent.json") == 0
    assert "SKIPPED" in capsys.readouterr().out
