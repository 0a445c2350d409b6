"""Supply-chain checks run by ``make test``: SBOM completeness and the vulnerability audit.

``sbom``: the CycloneDX SBOM of the locked environment (built by ``cyclonedx-py environment``)
must name every package of ``requirements.lock`` at its pinned version; a package missing or at
another version means the environment is not the one the lock describes.

``audit``: reads ``pip-audit --format json`` of the lock. A known vulnerability fails the run.
A package the advisory source does not know (not on PyPI, or a version its database lacks) is
listed with the reason, visibly, and does not fail: the audit cannot speak for it. When the
advisory source cannot be reached at all, the audit is skipped with that reason.

Each check prints one line per finding and a closing summary; exit 1 on a failure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_LOCK_LINE = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;#]+)")


def canonical(name: str) -> str:
    """PEP 503 name normalisation: case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LOCK_LINE.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def sbom_components(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        canonical(c["name"]): str(c.get("version", ""))
        for c in data.get("components", [])
        if c.get("type") == "library"
    }


def check_sbom(sbom: Path, lock: Path) -> int:
    pins, found = read_lock(lock), sbom_components(sbom)
    problems = [
        f"sbom: {name}=={version} is locked but "
        + (f"the environment has {found[name]}" if name in found else "missing from the SBOM")
        for name, version in sorted(pins.items())
        if found.get(name) != version
    ]
    for line in problems:
        print(line)
    print(f"sbom: {len(pins) - len(problems)} of {len(pins)} locked packages present in {sbom}")
    return 1 if problems else 0


def check_audit(report: Path) -> int:
    if not report.exists() or report.stat().st_size == 0:
        print("audit: SKIPPED: the advisory source could not be reached (no pip-audit report)")
        return 0
    deps = json.loads(report.read_text(encoding="utf-8")).get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    unknown = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"audit: {dep['name']} {dep.get('version', '')}: {ids}")
    if unknown:
        print(
            f"audit: {len(unknown)} of {len(deps)} packages could not be audited: the advisory "
            f"source does not know them at the locked version (e.g. {unknown[0]['skip_reason']})"
        )
    audited = len(deps) - len(unknown)
    print(f"audit: {audited} packages audited, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "sbom":
        return check_sbom(Path(argv[1]), Path(argv[2]))
    if len(argv) == 2 and argv[0] == "audit":
        return check_audit(Path(argv[1]))
    print("usage: supply_chain.py sbom SBOM.json requirements.lock | audit REPORT.json")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
