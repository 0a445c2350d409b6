"""A client written from the specification alone talks to a real pump process.

The pump is ``itb pump serve`` in a subprocess, set up with the CLI as a clinic would
(``itb pump init``, ``itb programmer keygen``, ``itb pump pair``). The client is
``independent_client.py``: no ``itb`` import, and ``dissononce`` instead of ``noiseprotocol``.
This file imports nothing from ``itb`` either; it only runs the ``itb`` executable.
"""

from __future__ import annotations

import ast
import os
import selectors
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop import independent_client
from tests.interop.independent_client import (
    LinkRefusedError,
    TcpClient,
    read_private_key,
    read_public_key,
)

ITB = str(Path(sys.executable).with_name("itb"))
READY_WAIT_S = 120.0  # generous: a loaded CI machine may take long to import and start the pump
ANSWER_TIMEOUT_S = 30.0
READY_PREFIX = "itb pump listening on"
SCENARIO = """
[pump]
model = "peristaltic-20"
start = 2027-01-04T08:00:00
serial = "INTEROP-0001"

[drug]
concentration_ug_per_ml = 500.0
volume_ml = 20.0

[program]
rate_ug_per_day = 600.0
"""


def _itb(*args: str) -> None:
    result = subprocess.run(
        [ITB, *args], capture_output=True, text=True, timeout=READY_WAIT_S, check=False
    )
    assert result.returncode == 0, f"itb {' '.join(args)}: {result.stderr}"


@contextmanager
def _serving(state: Path) -> Iterator[int]:
    """``itb pump serve`` on a free port of 127.0.0.1; yields the port; always killed."""
    proc = subprocess.Popen(
        [ITB, "pump", "serve", "--state", str(state), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _wait_ready(proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_ready(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(READY_PREFIX):
            return int(line.rsplit(":", 1)[1])
    stderr = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(f"the pump did not become ready within {READY_WAIT_S} s: {stderr}")


@dataclass(frozen=True, slots=True)
class ServedPump:
    state: Path
    port: int
    clinician: Path  # a paired programmer's key directory


@pytest.fixture(scope="module")
def served_pump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPump]:
    """One pump for the module (each ``itb`` start costs seconds): set up as a clinic would."""
    tmp_path = tmp_path_factory.mktemp("interop")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    pump, clinician = tmp_path / "pump", tmp_path / "clinician"
    _itb("pump", "init", "--state", str(pump), "--scenario", str(scenario))
    _itb("programmer", "keygen", "--out", str(clinician))
    _itb(
        "pump", "pair", "--state", str(pump),
        "--programmer", str(clinician / "programmer.pub"), "--role", "clinician",
    )  # fmt: skip
    with _serving(pump) as port:
        yield ServedPump(pump, port, clinician)


def _client(pump: ServedPump, programmer_private: bytes | None = None) -> TcpClient:
    clinician_private = read_private_key(pump.clinician / "programmer.key", "programmer")
    return TcpClient(
        "127.0.0.1",
        pump.port,
        programmer_private or clinician_private,
        read_public_key(pump.state / "pump.pub", "pump"),
        ANSWER_TIMEOUT_S,
    )


def test_an_independent_client_interrogates_and_changes_settings_through_prepare_and_commit(
    served_pump: ServedPump,
) -> None:
    with _client(served_pump) as client:
        first_counter = client.granted_counter
        before = client.interrogate()
        assert before["serial"] == "INTEROP-0001"
        assert before["low_reservoir_alarm_ml"] == 2.0  # the default threshold
        assert before["daily_dose_ug"] == 600.0

        prepared, committed = client.prepare_and_commit(
            "set_low_reservoir_alarm", {"volume_ml": 3.0}
        )
        assert prepared.type == "prepared", prepared
        assert prepared.body["expires_in_s"] == 60.0
        changes = prepared.body["summary"]["changes"]
        assert changes == {"low_reservoir_alarm_ml": {"old": 2.0, "new": 3.0}}
        assert committed.type == "accepted", committed
        assert committed.body == {"request_id": prepared.body["request_id"]}

        program = dict(before["program"])
        program["rate_ug_per_day"] = 650.0
        prepared, committed = client.prepare_and_commit("set_program", {"program": program})
        assert prepared.type == "prepared", prepared
        assert committed.type == "accepted", committed

        after = client.interrogate()
        assert after["low_reservoir_alarm_ml"] == 3.0
        assert after["daily_dose_ug"] == 650.0

    # A new session: the counter goes on above every counter used before, and the change held.
    with _client(served_pump) as client:
        assert client.granted_counter > first_counter + 5  # 6 requests in the first session
        again = client.interrogate()
        assert again["low_reservoir_alarm_ml"] == 3.0
        assert again["program"]["rate_ug_per_day"] == 650.0


def test_the_pump_refuses_a_bare_high_risk_command_and_a_tampered_frame(
    served_pump: ServedPump,
) -> None:
    with _client(served_pump) as client:
        before = client.interrogate()
        bare = client.call(
            "set_low_reservoir_alarm", {"request_id": os.urandom(16).hex(), "volume_ml": 4.0}
        )
        assert (bare.type, bare.body) == ("refused", {})  # needs_prepare; no detail on the wire

        _counter, frame = client.session.request("interrogate", {})
        tampered = bytearray(frame)
        tampered[20] ^= 0x01  # inside the ciphertext; the CRC-32 is made right again below
        tampered[-4:] = zlib.crc32(bytes(tampered[:-4])).to_bytes(4, "big")
        client.send_raw(bytes(tampered))
        with pytest.raises(LinkRefusedError):
            client.receive_answer()  # a plaintext REFUSAL frame: the AEAD caught it

        after = client.interrogate()
        assert after["low_reservoir_alarm_ml"] == before["low_reservoir_alarm_ml"]
        assert after["program"] == before["program"]


def test_an_unpaired_key_is_refused_at_the_handshake(served_pump: ServedPump) -> None:
    with pytest.raises(LinkRefusedError):
        _client(served_pump, os.urandom(32))  # a key the pump never paired


def test_the_client_imports_nothing_from_itb_nor_the_pumps_noise_library() -> None:
    source = Path(independent_client.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    roots = {name.split(".")[0] for name in imported}
    assert "itb" not in roots and "noise" not in roots, roots
    assert "dissononce" in roots
