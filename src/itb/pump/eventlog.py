"""The pump's own event log: two bounded rings, one sequence, a hash chain per ring.

Theory of operation
-------------------
Every entry gets the next sequence number, whatever its kind. Entries live in one of two rings:

* the **clinical ring** (``capacity``, 4096 entries): therapy, commands, alarms, refills,
  pairing, power-on: everything a clinician needs to settle an uncertain command or reconstruct
  what the pump delivered;
* the **security ring** (``security_capacity``, 256 entries): the link's refusals
  (``SECURITY_KINDS``), which a keyless peer can cause at will.

A ring that is full drops its own oldest entry and counts it (``lost_count`` for the clinical
ring, ``security_lost_count`` for the other), so a reader can tell "nothing happened" from "it
happened but was overwritten". Security entries can therefore never push a clinical entry out
(issue 12: a flood of refused connections washed the implant, the pairing and a clinician's
command out of one shared ring). ``lost_count`` is what the wire reports: a missing clinical
entry is what makes an uncertain command unknown; a sequence number missing from the merged
view is either counted there or in ``security_lost_count``.

Each ring carries its own hash chain (each entry hashes the previous entry *of its ring* and its
own content), so either ring verifies on its own after the other dropped entries; whoever holds
the heads can tell an edited entry (security.md). The hashed bytes are a compact canonical
encoding, ``<previous chain>|`` then the entry as canonical JSON ``[seq,t_s,kind,data]`` (sorted
keys, no spaces) from one shared encoder: building a new encoder per entry (``json.dumps`` with
options) was 9% of a cohort run's profile (issue 13).

A pump process keeps the log in an append-only journal (``itb.pump.journal``):
:meth:`EventLog.entries_after` gives the entries not yet journaled, and :meth:`EventLog.restore`
puts a journaled entry back with its own sequence number and chain.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import json.encoder
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itb.therapy import from_pump_s

DEFAULT_CAPACITY = 4096
DEFAULT_SECURITY_CAPACITY = 256
# Kinds a peer without a key can cause: the link's refusals, one by one or summarised.
LINK_REFUSED = "link_refused"
LINK_REFUSALS = "link_refusals"  # a count of refused unauthenticated frames (one per burst)
SECURITY_KINDS = frozenset({LINK_REFUSED, LINK_REFUSALS})
_GENESIS = "0" * 32
# One encoder for every entry: canonical JSON (sorted keys, no spaces, no NaN). The hash chain
# calls CPython's C encoder directly when there is one: ``JSONEncoder.encode`` builds a new one
# per call, which was half the cost of an entry (the same bytes either way; tested).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_MAKE_C_ENCODER: Callable[..., Any] | None = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(  # markers, default, str encoder, indent, separators, sort, skip, NaN
        None,
        _CANONICAL.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        True,
        False,
        False,
    )
)


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON text (what the hash chain hashes)."""
    if _C_ENCODE is None:  # pragma: no cover - a Python without the C accelerator
        return _CANONICAL.encode(value)
    return "".join(_C_ENCODE(value, 0))


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

    @classmethod
    def from_state(cls, state: object) -> LogEntry:
        """Read :meth:`to_state`; ValueError when it is not an entry."""
        try:
            items: list[Any] = list(state)  # type: ignore[call-overload]
            seq, t_s, kind, data, chain = items
            return cls(int(seq), float(t_s), str(kind), dict(data), str(chain))
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a log entry: {error}") from None


def _chain(previous: str, seq: int, t_s: float, kind: str, data: Mapping[str, object]) -> str:
    body = previous + "|" + canonical_json([seq, t_s, kind, data])
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class _Ring:
    """One bounded ring with its own hash chain and its own count of dropped entries."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be at least 1")
        self.capacity = capacity
        self.entries: deque[LogEntry] = deque()
        self.lost_count = 0
        self.head = _GENESIS

    def append(self, seq: int, t_s: float, kind: str, data: dict[str, object]) -> LogEntry:
        entry = LogEntry(seq, t_s, kind, data, _chain(self.head, seq, t_s, kind, data))
        self.entries.append(entry)
        self.head = entry.chain
        if len(self.entries) > self.capacity:
            self.entries.popleft()
            self.lost_count += 1
        return entry

    def restore(self, entry: LogEntry) -> None:
        """Put back an entry that was logged before (its sequence number and chain kept)."""
        self.entries.append(entry)
        self.head = entry.chain
        if len(self.entries) > self.capacity:
            self.entries.popleft()
            self.lost_count += 1

    def after(self, seq: int) -> list[LogEntry]:
        """This ring's entries with a sequence number above ``seq``, oldest first; walks from
        the newest end, so the cost is the number returned, not the ring's size."""
        out: list[LogEntry] = []
        for entry in reversed(self.entries):
            if entry.seq <= seq:
                break
            out.append(entry)
        out.reverse()
        return out

    def verify(self) -> bool:
        for previous, entry in itertools.pairwise(self.entries):
            if entry.chain != _chain(previous.chain, entry.seq, entry.t_s, entry.kind, entry.data):
                return False
        return True

    def to_state(self) -> dict[str, object]:
        return {
            "capacity": self.capacity,
            "lost_count": self.lost_count,
            "head": self.head,
            "entries": [e.to_state() for e in self.entries],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> _Ring:
        ring = cls(int(state["capacity"]))  # type: ignore[call-overload]
        ring.lost_count = int(state["lost_count"])  # type: ignore[call-overload]
        ring.head = str(state["head"])
        for item in state["entries"]:  # type: ignore[attr-defined]
            ring.entries.append(LogEntry.from_state(item))
        return ring


class EventLog:
    """The clinical ring and the security ring behind one sequence (see the module doc)."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, security_capacity: int = DEFAULT_SECURITY_CAPACITY
    ) -> None:
        self._clinical = _Ring(capacity)
        self._security = _Ring(security_capacity)
        self.next_seq = 1

    def append(self, t_s: float, kind: str, data: Mapping[str, object] | None = None) -> LogEntry:
        ring = self._security if kind in SECURITY_KINDS else self._clinical
        entry = ring.append(self.next_seq, t_s, kind, dict(data or {}))
        self.next_seq += 1
        return entry

    def entries(self, since_seq: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Entries of both rings with ``seq > since_seq``, oldest first, at most ``limit``."""
        merged: Iterable[LogEntry] = heapq.merge(
            self._clinical.entries, self._security.entries, key=_seq
        )
        out = [e for e in merged if e.seq > since_seq]
        return out if limit is None else out[:limit]

    def entries_after(self, seq: int) -> list[LogEntry]:
        """Entries of both rings with a sequence number above ``seq``, oldest first (what a
        journal has not yet written); the cost grows with what is returned, not the log."""
        return list(heapq.merge(self._clinical.after(seq), self._security.after(seq), key=_seq))

    def restore(self, entry: LogEntry) -> None:
        """Put back a journaled entry into its ring (a full ring drops and counts its oldest);
        the next sequence number follows it."""
        ring = self._security if entry.kind in SECURITY_KINDS else self._clinical
        ring.restore(entry)
        self.next_seq = max(self.next_seq, entry.seq + 1)

    def catch_up(self, lost_count: int, security_lost_count: int, next_seq: int) -> None:
        """Take the counts a journal record carried: entries a ring dropped before they could
        be journaled are counted as lost, not forgotten."""
        self._clinical.lost_count = max(self._clinical.lost_count, lost_count)
        self._security.lost_count = max(self._security.lost_count, security_lost_count)
        self.next_seq = max(self.next_seq, next_seq)

    def mark_lost_until(self, next_seq: int) -> None:
        """Entries up to ``next_seq - 1`` existed but could not be read back (their journal
        was damaged): count them as lost clinical entries, so that a reader can tell."""
        if next_seq > self.next_seq:
            self._clinical.lost_count += next_seq - self.next_seq
            self.next_seq = next_seq

    @property
    def capacity(self) -> int:
        """The clinical ring's capacity."""
        return self._clinical.capacity

    @property
    def security_capacity(self) -> int:
        return self._security.capacity

    @property
    def lost_count(self) -> int:
        """Clinical entries dropped (what the wire's ``lost_count`` reports)."""
        return self._clinical.lost_count

    @property
    def security_lost_count(self) -> int:
        """Security entries (link refusals) dropped from their own ring."""
        return self._security.lost_count

    @property
    def head(self) -> str:
        """The clinical chain's head."""
        return self._clinical.head

    @property
    def security_head(self) -> str:
        return self._security.head

    @property
    def last_t_s(self) -> float | None:
        """The time of the newest entry of either ring (None: both empty)."""
        lasts = [r.entries[-1].t_s for r in (self._clinical, self._security) if r.entries]
        return max(lasts, default=None)

    @property
    def first_seq(self) -> int:
        firsts = [r.entries[0].seq for r in (self._clinical, self._security) if r.entries]
        return min(firsts, default=self.next_seq)

    def __len__(self) -> int:
        return len(self._clinical.entries) + len(self._security.entries)

    def verify_chain(self) -> bool:
        """Recompute every link still in either ring."""
        return self._clinical.verify() and self._security.verify()

    def to_state(self) -> dict[str, object]:
        return {
            **self._clinical.to_state(),
            "next_seq": self.next_seq,
            "security": self._security.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> EventLog:
        """Read :meth:`to_state`; an image from before the security ring had one ring only
        (its link refusals stay where they were, chained with the clinical entries)."""
        log = cls()
        log._clinical = _Ring.from_state(state)
        log.next_seq = int(state["next_seq"])  # type: ignore[call-overload]
        security = state.get("security")
        if isinstance(security, Mapping):
            log._security = _Ring.from_state(security)
        return log


def _seq(entry: LogEntry) -> int:
    return entry.seq
