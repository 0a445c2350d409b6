"""`make bench`: run every bench/bench_*.py main(); each prints ratios measured in the same run."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main() -> None:
    only = sys.argv[1:]
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        if only and info.name.removeprefix("bench_") not in only:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"\n=== {info.name} ===", flush=True)
        started = time.perf_counter()
        module.main()
        print(f"({info.name} took {time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
