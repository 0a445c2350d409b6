"""``itb remote`` against a real ``itb pump serve`` process: a patient bolus within the
physician's limits is given; one beyond them (the lockout) is refused in words and nothing is
sent; the local page gives the same bolus and refuses requests that do not come from it."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from itb.cli.remote import app
from itb.remote.session import Remote
from itb.remote.web import create_remote_app
from tests.pumpd.support import SCENARIO, PumpProcess, itb, running

PATIENT_BOLUS = """
[patient_bolus]
dose_ug = 25.0
duration_min = 10.0
lockout_min = 120.0
max_per_day = 3
"""
PORT = 8765


def _pump(tmp: Path) -> tuple[Path, Path]:
    """A pump whose physician allowed a 25 µg patient bolus (2 h lockout, 3 a day), and a
    remote's key paired with it in the patient role."""
    scenario = tmp / "scenario.toml"
    scenario.write_text(SCENARIO + PATIENT_BOLUS, encoding="utf-8")
    state, keys = tmp / "pump", tmp / "remote"
    itb("pump", "init", "--state", str(state), "--scenario", str(scenario), check=True)
    itb("programmer", "keygen", "--out", str(keys), check=True)
    itb("pump", "pair", "--state", str(state), "--programmer", str(keys / "programmer.pub"),
        "--role", "patient", check=True)  # fmt: skip
    return state, keys


@pytest.fixture
def pump(tmp_path: Path) -> Iterator[tuple[PumpProcess, Path]]:
    state, keys = _pump(tmp_path)
    with running(state) as process:
        yield process, keys


def _args(pump: PumpProcess, keys: Path) -> list[str]:
    return ["--pump", pump.address(), "--key", str(keys / "programmer.key"),
            "--pump-key", str(pump.state / "pump.pub"), "--json"]  # fmt: skip


def _remote(command: str, pump: PumpProcess, keys: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, [command, *_args(pump, keys)])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_a_bolus_within_the_limits_is_given_and_one_in_the_lockout_refused(
    pump: tuple[PumpProcess, Path],
) -> None:
    process, keys = pump
    code, status = _remote("status", process, keys)
    assert code == 0
    assert status["status"]["bolus_available"] is True
    assert "low-medicine alarm sounds about" in status["status"]["reservoir"]

    code, given = _remote("bolus", process, keys)
    assert code == 0, given
    assert given["outcome"] == "done"
    assert "extra dose of 25 µg" in given["words"]

    code, refused = _remote("bolus", process, keys)
    assert code == 1
    assert refused["outcome"] == "not_sent"
    assert "next extra dose is possible at" in refused["words"]
    assert "Nothing was sent" in refused["words"]
    # the pump's own answer: still the one bolus, its lockout two hours from the first
    code, after = _remote("status", process, keys)
    assert after["status"]["bolus_available"] is False


def test_a_remote_the_pump_does_not_know_is_told_in_words(
    tmp_path: Path, pump: tuple[PumpProcess, Path]
) -> None:
    process, _ = pump
    stranger = tmp_path / "stranger"
    itb("programmer", "keygen", "--out", str(stranger), check=True)
    code, answer = _remote("bolus", process, stranger)
    assert code == 4
    assert answer["outcome"] in ("not_paired", "unreachable")
    assert "nothing was sent" in answer["words"]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["status", "--pump", "nowhere", "--key", str(tmp_path / "k"), "--pump-key",
              str(tmp_path / "p")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Nothing was sent" in result.output and "Traceback" not in result.output


def _client(process: PumpProcess, keys: Path) -> TestClient:
    remote = Remote.from_files(
        process.address(), keys / "programmer.key", process.state / "pump.pub"
    )
    return TestClient(create_remote_app(remote, PORT), base_url=f"http://127.0.0.1:{PORT}")


def _token(page: str) -> str:
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def test_the_local_page_gives_a_bolus_and_refuses_what_does_not_come_from_it(
    pump: tuple[PumpProcess, Path],
) -> None:
    process, keys = pump
    client = _client(process, keys)
    home = client.get("/")
    assert home.status_code == 200
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    token = _token(home.text)

    # another web page in the family's browser: no token, a foreign origin, a rebound host
    origin = {"origin": f"http://127.0.0.1:{PORT}"}
    assert client.post("/bolus", data={"csrf_token": "x"}, headers=origin).status_code == 403
    foreign = {"origin": "http://evil.example"}
    assert client.post("/bolus", data={"csrf_token": token}, headers=foreign).status_code == 403
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert _token(client.get("/").text) == token
    assert "An extra dose can be given now" in client.get("/").text  # nothing was given

    answer = client.post("/bolus", data={"csrf_token": token}, headers=origin)
    assert answer.status_code == 200  # after the redirect: a reload shows, never re-asks
    assert 'data-outcome="done"' in answer.text
    again = client.post("/bolus", data={"csrf_token": token}, headers=origin)
    assert 'data-outcome="not_sent"' in again.text
    assert "next extra dose is possible" in again.text


def test_an_unreachable_pump_is_said_in_words_on_the_page_and_the_terminal(
    tmp_path: Path,
) -> None:
    state, keys = _pump(tmp_path)  # initialised and paired, but not served
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    remote = Remote.from_files(
        f"127.0.0.1:{port}", keys / "programmer.key", state / "pump.pub", 0.5
    )
    page = TestClient(create_remote_app(remote, PORT), base_url=f"http://127.0.0.1:{PORT}").get("/")
    assert page.status_code == 200
    assert 'data-outcome="unreachable"' in page.text and "nothing was sent" in page.text
    args = ["status", "--pump", f"127.0.0.1:{port}", "--key", str(keys / "programmer.key"),
            "--pump-key", str(state / "pump.pub"), "--timeout-s", "0.5"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4
    assert "could not be reached" in result.output and "Traceback" not in result.output
