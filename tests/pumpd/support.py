"""Helpers for tests that run real pump processes on 127.0.0.1 (always killed in the end)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from itb.pumpd.server import READY_PREFIX

ITB = str(Path(sys.executable).with_name("itb"))
# How long a pump process may take to print its ready line on an idle machine, and a CLI
# command to finish. Both scale with the load (see ``load_factor``); ITB_TEST_WAIT_S overrides.
READY_WAIT_S = 60.0
COMMAND_WAIT_S = 60.0
MAX_WAIT_S = 900.0


def load_factor() -> float:
    """How much slower than an idle machine this one is now: the run-queue length per core,
    or the number of test workers per core, whichever is larger (at least 1)."""
    cores = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1.0, os.getloadavg()[0] / cores, workers / cores)


def wait_s(base_s: float) -> float:
    override = os.environ.get("ITB_TEST_WAIT_S")
    if override:
        return float(override)
    return min(base_s * load_factor(), MAX_WAIT_S)


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
        [ITB, *args],
        capture_output=True,
        text=True,
        timeout=wait_s(COMMAND_WAIT_S),
        env=_env(),
        check=False,
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


def _forward_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Every line the process prints, then None when it closes its stdout (it exited). Reading
    all of it also keeps the pipe from filling up and blocking the pump."""
    for line in stream:
        lines.put(line)
    lines.put(None)


class PumpProcess:
    """``itb pump serve`` as a subprocess on an ephemeral port.

    Ready means the process printed its ready line (``READY_PREFIX`` and the bound address):
    a blocking wait on that line, with a deadline that grows with the machine's load, not a
    poll or a sleep. stderr goes to a file, read only to explain a failure.
    """

    def __init__(self, state: Path, speed: float = 1.0, stderr_path: Path | None = None) -> None:
        self.state = state
        self.speed = speed
        self.stderr_path = stderr_path  # where stderr goes (kept), else a temporary file
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.lines: queue.Queue[str | None] = queue.Queue()  # stdout after the ready line

    def start(self) -> int:
        with (
            self.stderr_path.open("w+", encoding="utf-8")
            if self.stderr_path is not None
            else tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        ) as stderr:
            self.proc = subprocess.Popen(
                [ITB, "pump", "serve", "--state", str(self.state), "--listen", "127.0.0.1:0",
                 "--speed", str(self.speed)],
                stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env(),
            )  # fmt: skip
            problem = self._wait_until_ready()
            if problem is None:
                return self.port
            self.kill()
            stderr.seek(0)
            raise AssertionError(f"the pump did not become ready ({problem}): {stderr.read()}")

    def _wait_until_ready(self) -> str | None:
        """Block on the process's stdout lines until the ready line; None when ready, else
        what went wrong."""
        assert self.proc is not None and self.proc.stdout is not None
        lines = self.lines = queue.Queue()
        reader = threading.Thread(target=_forward_lines, args=(self.proc.stdout, lines))
        reader.daemon = True
        reader.start()
        wait = wait_s(READY_WAIT_S)
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                return "the process exited before it was ready"
            if line.startswith(READY_PREFIX):
                self.port = int(line.rsplit(":", 1)[1])
                return None
        return f"no ready line within {wait:.0f} s"

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
