"""Helpers for tests that run real pump processes on 127.0.0.1 (always killed in the end)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ITB = str(Path(sys.executable).with_name("itb"))
READY_WAIT_S = 30.0
SCENARIO = """
[pump]
model = "peristaltic-20"
start = 2027-01-04T08:00:00
serial = "TEST-0001"

[drug]
concentration_ug_per_ml = 500.0
volume_ml = 20.0

[program]
rate_ug_per_day = 600.0
"""


def itb(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [ITB, *args], capture_output=True, text=True, timeout=60, env=_env(), check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"itb {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


def itb_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = itb(*args, "--json")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {result.stdout!r} {result.stderr!r}"
    return result.returncode, json.loads(lines[0])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["COLUMNS"] = "200"
    return env


def make_pump(tmp: Path, *roles: str) -> tuple[Path, list[Path]]:
    """A pump state directory and one programmer key directory per role, paired."""
    scenario = tmp / "scenario.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    pump = tmp / "pump"
    itb("pump", "init", "--state", str(pump), "--scenario", str(scenario), check=True)
    keys = []
    for i, role in enumerate(roles):
        key_dir = tmp / f"programmer-{i}-{role}"
        itb("programmer", "keygen", "--out", str(key_dir), check=True)
        itb(
            "pump", "pair", "--state", str(pump), "--programmer",
            str(key_dir / "programmer.pub"), "--role", role, check=True,
        )  # fmt: skip
        keys.append(key_dir)
    return pump, keys


class PumpProcess:
    """``itb pump serve`` as a subprocess on an ephemeral port."""

    def __init__(self, state: Path, speed: float = 1.0) -> None:
        self.state = state
        self.speed = speed
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> int:
        self.proc = subprocess.Popen(
            [ITB, "pump", "serve", "--state", str(self.state), "--listen", "127.0.0.1:0",
             "--speed", str(self.speed)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.1):
                if self.proc.poll() is not None:
                    break
                continue
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("itb pump listening on"):
                self.port = int(line.rsplit(":", 1)[1])
                return self.port
        stderr = (
            self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
        )
        self.kill()
        raise AssertionError(f"the pump did not become ready: {stderr}")

    def kill(self) -> None:
        """SIGKILL (no clean shutdown) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)

    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def running(state: Path, speed: float = 1.0) -> Iterator[PumpProcess]:
    pump = PumpProcess(state, speed)
    try:
        pump.start()
        yield pump
    finally:
        pump.kill()


def connection(pump: PumpProcess, key_dir: Path) -> list[str]:
    return [
        "--pump", pump.address(), "--key", str(key_dir / "programmer.key"),
        "--pump-key", str(pump.state / "pump.pub"),
    ]  # fmt: skip
