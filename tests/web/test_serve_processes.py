"""``itb serve`` as a user starts it: a real process on a free loopback port.

* ``--demo``: seeded in a child process while the server imports; its printed accounts log in,
  and a generated demo password's cheap hash is brought to full cost by that first log-in.
* ``--workers 2``: a session made through one connection is honoured on every request, whichever
  worker answers (sessions live in the database); ``--workers`` with ``--demo`` is refused.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import select

from itb.clinic.db import make_engine, make_session_factory
from itb.clinic.models import User

ITB = str(Path(sys.executable).parent / "itb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(args: list[str], log: Path) -> Iterator[str]:
    port = _free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [ITB, "serve", "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # up to a minute on a busy machine; this is no timing test
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its workers
        process.wait(timeout=30)


def _accounts(log: Path) -> dict[str, str]:
    """username -> password, from the lines ``  role  username  password: secret``."""
    found = {}
    for line in log.read_text().splitlines():
        if "password:" in line:
            words = line.split()
            found[words[1]] = words[-1]
    return found


def test_the_demo_starts_and_its_printed_accounts_log_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    log = tmp_path / "serve.log"
    with _serving(["--demo", "--database-url", url], log) as base:
        accounts = _accounts(log)
        assert {"dr_demo", "nurse_demo", "viewer_demo"} <= set(accounts), log.read_text()
        engine = make_engine(url)
        with make_session_factory(engine)() as db:
            stored = db.execute(select(User).where(User.username == "nurse_demo")).scalar_one()
            assert PasswordHasher().check_needs_rehash(stored.password_hash)  # cheap at first
        client = httpx.Client(base_url=base)
        login = client.post(
            "/api/login", json={"username": "nurse_demo", "password": accounts["nurse_demo"]}
        )
        assert login.status_code == 200, login.text
        rows = client.get("/api/patients").json()
        assert {r["mrn"] for r in rows} >= {"DEMO-001", "DEMO-002", "DEMO-006"}
        assert 'data-mrn="DEMO-001"' in client.get("/").text
        with make_session_factory(engine)() as db:
            stored = db.execute(select(User).where(User.username == "nurse_demo")).scalar_one()
            assert not PasswordHasher().check_needs_rehash(stored.password_hash)
        engine.dispose()


def test_two_workers_share_sessions_through_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    added = subprocess.run(
        [ITB, "user", "add", "dr_w", "--role", "physician", "--password-stdin",
         "--database-url", url],
        input="workers-password-1\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with _serving(["--workers", "2", "--database-url", url], tmp_path / "serve.log") as base:
        login = httpx.post(
            f"{base}/api/login", json={"username": "dr_w", "password": "workers-password-1"}
        )
        assert login.status_code == 200, login.text
        cookies = dict(login.cookies)
        # fresh connections, spread over both workers by the kernel: every one is signed in
        for _ in range(20):
            assert httpx.get(f"{base}/api/me", cookies=cookies).json()["username"] == "dr_w"
            assert httpx.get(f"{base}/", cookies=cookies, follow_redirects=False).status_code == 200


def test_workers_are_refused_with_the_demo(tmp_path: Path) -> None:
    refused = subprocess.run(
        [ITB, "serve", "--demo", "--workers", "2"], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --workers: 1 with --demo or --pumps (one process owns the pumps)"
    ]
