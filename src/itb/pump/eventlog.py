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

The chain is computed when the log is read, not when an entry is appended: an appended entry
waits, unsealed, at the end of its ring, and every reader (``entries``, ``entries_after``,
``head``, ``to_state``, ``verify_chain``) seals the waiting entries first, in order, with the
same bytes an eager chain would hash. A pump process reads (journals) its log after every
command; the cohort simulator never needs the chain of its pumps' thousands of entries, and
hashing them was a fifth of its event cost (issue 13). So that nothing the encoder would refuse
(NaN, an object JSON cannot hold) waits in a ring and breaks a later read, an entry whose data
is not plainly JSON is sealed at once, and refused there as before.

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
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

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


class LogEntry(NamedTuple):
    """One entry: immutable, a named tuple rather than a frozen dataclass because the pump
    makes one per event and a frozen dataclass costs several times as much to build."""

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


def _plain_json(value: object) -> bool:
    """True when ``value`` is made only of str keys, str, int, finite float, bool, None, lists
    and dicts: what the canonical encoder writes without a question (else seal at once)."""
    kind = type(value)
    items: Iterable[object]
    if kind is dict:
        mapping: dict[object, object] = value  # type: ignore[assignment]
        for key in mapping:
            if type(key) is not str:
                return False
        items = mapping.values()
    elif kind is list:
        items = value  # type: ignore[assignment]
    else:
        items = (value,)
    # one loop with the leaf tests inline: a call per item was most of an append's cost
    for item in items:
        item_kind = type(item)
        if item_kind in _PLAIN_LEAVES:
            continue
        if item_kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return False
        elif not ((item_kind is dict or item_kind is list) and _plain_json(item)):
            return False
    return True


_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})
_UNSEALED = ""  # the chain of an entry waiting to be sealed (a real chain is 32 hex digits)


class _Ring:
    """One bounded ring with its own hash chain and its own count of dropped entries."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be at least 1")
        self.capacity = capacity
        self._entries: deque[LogEntry] = deque()
        self.lost_count = 0
        self._head = _GENESIS  # the chain of the newest sealed entry (or of one dropped)
        self._unsealed = 0  # entries at the newest end whose chain waits (module doc)

    @property
    def entries(self) -> deque[LogEntry]:
        """The ring's entries, oldest first, every one sealed."""
        self.seal()
        return self._entries

    @property
    def head(self) -> str:
        self.seal()
        return self._head

    def seal(self) -> None:
        """Chain the waiting entries, oldest first (the bytes an eager chain hashes)."""
        if not self._unsealed:
            return
        entries, head = self._entries, self._head
        waiting = [entries.pop() for _ in range(self._unsealed)]
        for e in reversed(waiting):
            head = _chain(head, e.seq, e.t_s, e.kind, e.data)
            entries.append(LogEntry(e.seq, e.t_s, e.kind, e.data, head))
        self._head, self._unsealed = head, 0

    def append(self, seq: int, t_s: float, kind: str, data: dict[str, object]) -> None:
        if _plain_json(data):
            self._entries.append(LogEntry(seq, t_s, kind, data, _UNSEALED))
            self._unsealed += 1
        else:  # sealed now: the encoder refuses it here, before it joins the ring
            self.seal()
            chain = _chain(self._head, seq, t_s, kind, data)
            self._entries.append(LogEntry(seq, t_s, kind, data, chain))
            self._head = chain
        if len(self._entries) > self.capacity:
            self._drop_beyond_capacity()

    def restore(self, entry: LogEntry) -> None:
        """Put back an entry that was logged before (its sequence number and chain kept)."""
        self.seal()
        self._entries.append(entry)
        self._head = entry.chain
        self._drop_beyond_capacity()

    def _drop_beyond_capacity(self) -> None:
        if len(self._entries) > self.capacity:
            if self._unsealed >= len(self._entries):  # the dropped one's chain links the next
                self.seal()
            self._entries.popleft()
            self.lost_count += 1

    def contents(self) -> Iterator[tuple[int, float, str, Mapping[str, object]]]:
        """(seq, t_s, kind, data) of each entry, oldest first, without sealing any."""
        return ((e.seq, e.t_s, e.kind, e.data) for e in self._entries)

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
        ring._head = str(state["head"])
        for item in state["entries"]:  # type: ignore[attr-defined]
            ring._entries.append(LogEntry.from_state(item))
        return ring


class EventLog:
    """The clinical ring and the security ring behind one sequence (see the module doc)."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, security_capacity: int = DEFAULT_SECURITY_CAPACITY
    ) -> None:
        self._clinical = _Ring(capacity)
        self._security = _Ring(security_capacity)
        self.next_seq = 1

    def append(self, t_s: float, kind: str, data: Mapping[str, object] | None = None) -> None:
        """Log an entry with the next sequence number (its chain is sealed when read)."""
        ring = self._security if kind in SECURITY_KINDS else self._clinical
        ring.append(self.next_seq, t_s, kind, dict(data or {}))
        self.next_seq += 1

    def data_of(self, kind: str) -> list[Mapping[str, object]]:
        """The data of each entry of ``kind`` still in the log, oldest first: a count or a
        summary that needs no chain (the cohort simulator's alarms) seals nothing."""
        ring = self._security if kind in SECURITY_KINDS else self._clinical
        return [data for _, _, k, data in ring.contents() if k == kind]

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
        lasts = [r._entries[-1].t_s for r in (self._clinical, self._security) if r._entries]
        return max(lasts, default=None)

    @property
    def first_seq(self) -> int:
        firsts = [r._entries[0].seq for r in (self._clinical, self._security) if r._entries]
        return min(firsts, default=self.next_seq)

    def __len__(self) -> int:
        return len(self._clinical._entries) + len(self._security._entries)

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
