"""Pump persistence proportional to the change (issue 13 item 3): prepare+commit pairs a second
with a 95%-full event log against an empty one, measured in the same run.

Two real pumps (``itb.pumpd``: FirmwareHandler, StateDir, the journal) in temporary
directories, each driven through the real endpoint in memory (no network: what is measured is
the pump's work and its disk), every commit fsynced before its answer as ``itb pump serve``
does. One pump's clinical log ring is filled to 95% first. Rounds alternate between the two
pumps so that both see the same disk and load; the figure is the median round. Goal: the full
log's rate at least 0.9 of the empty one's (before the journal, every save rewrote the whole
image, log included: 88 to 115 pairs/s empty, 11 to 12 nearly full).

Also the event log's hash chain per entry (9% of a cohort run's profile, issue 13): the chain
as it was (``json.dumps`` with options per entry, which builds an encoder each call) against
the shared canonical encoder it uses now, on the same entries in the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.pump.eventlog import DEFAULT_CAPACITY, EventLog, canonical_json
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.handler import FirmwareHandler
from itb.pumpd.journal import JOURNAL_FILE
from itb.pumpd.state import StateDir
from itb.telemetry.endpoint import (
    PairedKey,
    ProgrammerConnection,
    PumpConnection,
    PumpEndpoint,
    ResponseReceived,
    Role,
)
from itb.telemetry.messages import Accepted, Commit, Prepare, Prepared, Request, Response
from itb.telemetry.messages import SetLowReservoirAlarm as Threshold
from itb.therapy import continuous

FULL_FRACTION = 0.95
ROUNDS = 15
PAIRS_PER_ROUND = 40
GOAL_RATIO = 0.9
CHAIN_ENTRIES = 20_000
START = datetime(2027, 1, 4, 8, 0)


class _Pump:
    """One pump and one programmer session on it, in memory."""

    def __init__(self, directory: Path, log_entries: int) -> None:
        self.state = StateDir(directory)
        fw = Firmware.implant(
            pump_model("peristaltic-20"), START, serial="BENCH", concentration_ug_per_ml=500.0,
            volume_ml=20.0, program=continuous(600.0),
        )  # fmt: skip
        for i in range(max(0, log_entries - len(fw.log))):  # what a long service leaves
            data = {"request_id": f"{i:032x}", "request": "set_low_reservoir_alarm"}
            fw.log.append(fw.t_s, "command", {**data, "role": "clinician", "outcome": "applied"})
        self.state.create(fw)
        programmer = generate_private_key()
        paired = [PairedKey(public_key_of(programmer), Role.CLINICIAN)]
        booted = self.state.boot()
        handler = FirmwareHandler(booted.firmware, self.state, lambda: START, paired, None)
        self.handler = handler
        endpoint = PumpEndpoint(
            self.state.pump_private_key(), paired, handler, random_bytes=os.urandom
        )
        self.conn = ProgrammerConnection(programmer, public_key_of(self.state.pump_private_key()))
        self.link: PumpConnection = endpoint.connection()
        self.conn.receive_data(self.link.receive_data(self.conn.start_handshake(), 0.0))
        self.sent = 0

    def _ask(self, request: Request) -> Response:
        _, frame = self.conn.send(request)
        (event,) = self.conn.receive_data(self.link.receive_data(frame, 0.0))
        assert isinstance(event, ResponseReceived)
        return event.response

    def pair_of_commands(self) -> None:
        self.sent += 1
        volume_ml = 1.0 + (self.sent % 4) * 0.5
        prepared = self._ask(Prepare(Threshold(f"{self.sent:032x}", volume_ml)))
        assert isinstance(prepared, Prepared), prepared
        answer = self._ask(Commit(prepared.request_id, prepared.challenge))
        assert isinstance(answer, Accepted), answer

    def round(self, pairs: int) -> float:
        """Pairs a second over ``pairs`` prepare+commit pairs."""
        started = time.perf_counter()
        for _ in range(pairs):
            self.pair_of_commands()
        return pairs / (time.perf_counter() - started)


def _chain_before(previous: str, seq: int, t_s: float, kind: str, data: object) -> str:
    """The chain as it was before issue 13: the baseline."""
    body = json.dumps([previous, seq, t_s, kind, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _chain_now(previous: str, seq: int, t_s: float, kind: str, data: object) -> str:
    body = previous + "|" + canonical_json([seq, t_s, kind, data])
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _chain_us(chain: Callable[[str, int, float, str, object], str]) -> float:
    """Microseconds per entry over a day's worth of typical entries, best of three."""
    data = {"alarm": "low_reservoir", "priority": "non_critical", "reservoir_ml": 2.0}
    best = float("inf")
    for _ in range(3):
        head = "0" * 32
        started = time.perf_counter()
        for seq in range(CHAIN_ENTRIES):
            head = chain(head, seq, 1000.0 + seq, "alarm", data)
        best = min(best, time.perf_counter() - started)
    return best / CHAIN_ENTRIES * 1e6


def main() -> None:
    _print_chain()
    full_entries = int(FULL_FRACTION * DEFAULT_CAPACITY)
    with tempfile.TemporaryDirectory() as tmp:
        empty = _Pump(Path(tmp) / "empty", 0)
        full = _Pump(Path(tmp) / "full", full_entries)
        empty.round(5)  # warm both (imports, first compaction of the journal)
        full.round(5)
        rates: dict[str, list[float]] = {"empty": [], "full": []}
        for _ in range(ROUNDS):
            rates["empty"].append(empty.round(PAIRS_PER_ROUND))
            rates["full"].append(full.round(PAIRS_PER_ROUND))
        journal_kib = (full.state.path / JOURNAL_FILE).stat().st_size / 1024
        entries = len(full.handler.firmware.log)
    empty_rate = statistics.median(rates["empty"])
    full_rate = statistics.median(rates["full"])
    ratio = full_rate / empty_rate
    print(
        f"prepare+commit pairs/s, real handler and state directory, each commit fsynced: "
        f"empty log {empty_rate:.0f}/s, {FULL_FRACTION:.0%}-full log "
        f"({entries} entries, journal {journal_kib:.0f} KiB) {full_rate:.0f}/s "
        f"(median of {ROUNDS} alternating rounds of {PAIRS_PER_ROUND} pairs)"
    )
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"full/empty ratio {ratio:.2f} (goal >= {GOAL_RATIO}: {verdict})")


def _print_chain() -> None:
    log = EventLog()
    log.append(0.0, "alarm", {})  # the chain is sealed when read (eventlog.py)
    assert log.head == _chain_now("0" * 32, 1, 0.0, "alarm", {})
    before_us, now_us = _chain_us(_chain_before), _chain_us(_chain_now)
    print(
        f"event log hash chain per entry ({CHAIN_ENTRIES} entries, best of 3): "
        f"json.dumps per entry (before) {before_us:.2f} us, shared canonical encoder "
        f"{now_us:.2f} us: {before_us / now_us:.2f}x"
    )


if __name__ == "__main__":
    main()
