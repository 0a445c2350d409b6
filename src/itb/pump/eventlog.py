"""The pump's own event log: a bounded ring with sequence numbers and a hash chain.

When the ring is full the oldest entry rolls off and ``lost_count`` grows, so a reader can
tell "nothing happened" from "it happened but was overwritten": nothing is silently dropped.
Each entry carries a hash of the previous entry's hash and its own content, which makes the
log tamper-evident for whoever holds the chain head (security.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from itb.therapy import from_pump_s

DEFAULT_CAPACITY = 4096
_GENESIS = "0" * 32


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    t_s: float
    kind: str
    data: Mapping[str, object]
    chain: str

    @property
    def at(self) -> datetime:
        return from_pump_s(self.t_s)

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "data": dict(self.data),
        }

    def to_state(self) -> list[object]:
        return [self.seq, self.t_s, self.kind, dict(self.data), self.chain]


def _chain(previous: str, seq: int, t_s: float, kind: str, data: Mapping[str, object]) -> str:
    body = json.dumps([previous, seq, t_s, kind, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class EventLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be at least 1")
        self.capacity = capacity
        self._entries: deque[LogEntry] = deque()
        self.next_seq = 1
        self.lost_count = 0
        self.head = _GENESIS

    def append(self, t_s: float, kind: str, data: Mapping[str, object] | None = None) -> LogEntry:
        payload = dict(data or {})
        entry = LogEntry(
            self.next_seq, t_s, kind, payload, _chain(self.head, self.next_seq, t_s, kind, payload)
        )
        self._entries.append(entry)
        self.head = entry.chain
        self.next_seq += 1
        if len(self._entries) > self.capacity:
            self._entries.popleft()
            self.lost_count += 1
        return entry

    def entries(self, since_seq: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Entries with ``seq > since_seq``, oldest first, at most ``limit`` of them."""
        out = [e for e in self._entries if e.seq > since_seq]
        return out if limit is None else out[:limit]

    @property
    def first_seq(self) -> int:
        return self._entries[0].seq if self._entries else self.next_seq

    def __len__(self) -> int:
        return len(self._entries)

    def verify_chain(self) -> bool:
        """Recompute every link that is still in the ring."""
        entries = list(self._entries)
        for previous, entry in itertools.pairwise(entries):
            if entry.chain != _chain(previous.chain, entry.seq, entry.t_s, entry.kind, entry.data):
                return False
        return True

    def to_state(self) -> dict[str, object]:
        return {
            "capacity": self.capacity,
            "next_seq": self.next_seq,
            "lost_count": self.lost_count,
            "head": self.head,
            "entries": [e.to_state() for e in self._entries],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> EventLog:
        log = cls(int(state["capacity"]))  # type: ignore[call-overload]
        log.next_seq = int(state["next_seq"])  # type: ignore[call-overload]
        log.lost_count = int(state["lost_count"])  # type: ignore[call-overload]
        log.head = str(state["head"])
        for seq, t_s, kind, data, chain in state["entries"]:  # type: ignore[attr-defined]
            log._entries.append(LogEntry(int(seq), float(t_s), str(kind), dict(data), str(chain)))
        return log
