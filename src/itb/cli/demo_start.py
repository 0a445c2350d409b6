"""``itb serve --demo`` starts fast: the demo clinic is migrated and seeded in a child process
while this one imports the web app (the two take about as long; a machine has two cores).

The child builds the simulated pumps and writes the demo's rows, then hands the pumps (their
firmware, pickled) and the accounts back through a pipe; the server starts after it is done, so
no request sees a half-seeded clinic. Where ``fork`` is not available it all runs in this
process, one after the other.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from itb.clinic.demo import DemoAccount
    from itb.clinic.pumps import SimulatedPumps

NOT_EMPTY = "the database already has patients: use an empty one for --demo"
# What both processes need (the models, the services and their pharmacology, the password
# hashing): imported once before the fork, not once in each on two busy cores.
SHARED_MODULES = (
    "itb.clinic.auth",
    "itb.clinic.services",
    "itb.clinic.services.family",
    "itb.clinic.services.follow_up",
    "itb.pharmacology.fit",
    "sqlite3",
)


class DemoSeedError(Exception):
    """The demo could not be seeded (a one-line reason for the user)."""


class DemoSeeding:
    """The demo clinic being seeded; :meth:`finish` waits for it and takes its pumps."""

    def __init__(self, url: str, clock: Callable[[], datetime]) -> None:
        self._url = url
        self._clock = clock
        self._conn: Connection | None = None
        self._process: Any = None
        if "fork" in multiprocessing.get_all_start_methods():
            for name in SHARED_MODULES:
                importlib.import_module(name)
            context = multiprocessing.get_context("fork")  # before the web app's imports
            self._conn, child_end = context.Pipe(duplex=False)
            self._process = context.Process(target=_child, args=(url, clock, child_end))
            self._process.start()
            child_end.close()

    def finish(self, pumps: SimulatedPumps) -> list[DemoAccount]:
        """The accounts; the seeded pumps added to ``pumps``. DemoSeedError if it failed."""
        if self._conn is None:
            answer = _seed(self._url, self._clock)
        else:
            try:
                answer = self._conn.recv()
            except EOFError:
                answer = ("error", "the seeding process ended without an answer")
            self._process.join()
        if answer[0] != "ok":
            raise DemoSeedError(answer[1])
        accounts, firmware = answer[1], answer[2]
        for fw in firmware:
            pumps.add(fw)
        return list(accounts)


def _child(url: str, clock: Callable[[], datetime], conn: Connection) -> None:
    try:
        answer = _seed(url, clock)
    except Exception as exc:  # any failure becomes the parent's one-line error
        answer = ("error", f"{type(exc).__name__}: {exc}")
    conn.send(answer)
    conn.close()


def _seed(url: str, clock: Callable[[], datetime]) -> tuple[Any, ...]:
    from itb.clinic import demo
    from itb.clinic.db import make_engine, make_session_factory, upgrade_to_head
    from itb.clinic.pumps import SimulatedPumps
    from itb.clinic.services.views import has_patients

    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
        pumps = SimulatedPumps(clock)
        with make_session_factory(engine)() as db:
            if has_patients(db):
                return ("refused", NOT_EMPTY)
            accounts = demo.seed_demo(db, pumps, clock())
    finally:
        engine.dispose()
    return ("ok", accounts, [pumps.firmware(serial) for serial in pumps.serials()])
