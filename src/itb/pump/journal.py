"""The event log's journal: append-only records with a CRC each, kept apart from the settings.

Theory of operation
-------------------
Rewriting the whole memory image, event log included, on every command made a pump with a full
log eight to ten times slower than a new one (issue 13), and kept the log in the settings banks,
so losing both banks lost the log an uncertain command is settled from (hazard H54). The log and
the link state (counter ceiling, kept answers) now live in a journal of their own; the settings
banks (:mod:`itb.pump.memory`) hold the rest of the image and the log's next sequence number.

A journal is a sequence of records, each ``length (4 bytes) | CRC-32 of the payload (4) |
payload``, the payload canonical JSON. A record is one save (one transaction):

    {"g": generation, "e": [entry, ...], "n": counts, "d": link}   appended at each save
    {"g": generation, "snapshot": log state, "l": link state}      the first record, after
                                                                    a compaction

``d`` is the link state's change since the record before (:func:`link_delta`: the keys that
changed; a list that lost items at its front and gained some at its end, as the kept answers
do, as the number dropped and the items added), or ``l`` the whole link state when it changed
otherwise; a save that did not change it carries neither. ``g`` is the settings generation the
record goes with. A save that changes the settings appends its record with the *next*
generation, then writes that bank; a save that changes only the log's security ring or the link
state appends a record with the current generation and writes no bank. So a power cut between
the two steps leaves a record whose generation no valid bank has; reading back
(:func:`replay`) stops before it: the log, the link state and the settings always go together.
A record cut short by a power cut is dropped whole (never a half record); so is everything after
a record that fails its CRC. With both banks lost there is no generation to check against and
every readable record counts: the log and the kept answers survive (H54); the next bank written
then takes a generation after the journal's last record, so that it is read back again.

The journal is compacted on a bound (:func:`should_compact`): the whole log, the link state and
the generation in one snapshot record, written atomically in place of the old journal (by the
adapter), so the journal stays under about twice the log's own size plus ``COMPACT_SLACK_BYTES``.

Pure: bytes in, bytes and values out; the adapter (``itb.pumpd.journal``) does the disk.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from itb.pump.eventlog import EventLog, LogEntry

_RECORD = struct.Struct(">II")  # payload length, CRC-32 of the payload
MAX_RECORD_BYTES = 16 * 1024 * 1024  # a snapshot of the largest log fits many times over
# Appended bytes allowed past the last snapshot before compacting: each compaction then
# rewrites the log once per at least this many bytes appended (cost proportional to change).
COMPACT_SLACK_BYTES = 1024 * 1024
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def encode_record(payload: Mapping[str, object]) -> bytes:
    body = _CANONICAL.encode(payload).encode()
    if len(body) > MAX_RECORD_BYTES:
        raise ValueError(f"journal record of {len(body)} bytes exceeds {MAX_RECORD_BYTES}")
    return _RECORD.pack(len(body), zlib.crc32(body)) + body


def transaction(
    generation: int,
    log: EventLog,
    entries: Iterable[LogEntry],
    link_state: Mapping[str, Any] | None,
    previous_link: Mapping[str, Any] | None = None,
) -> bytes:
    """One save's record: the new entries, the log's counts (``n``: lost clinical and security
    entries, next sequence number), and the link state if it changed since ``previous_link``
    (the one the record before left): as a delta when it can be, else whole."""
    payload: dict[str, object] = {
        "g": generation,
        "e": [e.to_state() for e in entries],
        "n": [log.lost_count, log.security_lost_count, log.next_seq],
    }
    if link_state is not None and link_state != previous_link:
        delta = link_delta(previous_link, link_state) if previous_link is not None else None
        if delta is not None:
            payload["d"] = delta
        else:
            payload["l"] = dict(link_state)
    return encode_record(payload)


def link_delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """``new`` as a change of ``old``: ``set`` the keys whose value changed, ``lists`` for a
    list value that is the old one with ``drop`` items gone from its front and ``added`` at its
    end, as ``[drop, added]``. None when the keys differ (then the record carries it whole)."""
    if set(old) != set(new):
        return None
    changed: dict[str, Any] = {}
    lists: dict[str, list[Any]] = {}
    for key, value in new.items():
        before = old[key]
        if value == before:
            continue
        if isinstance(value, list) and isinstance(before, list):
            drop = next(d for d in range(len(before) + 1) if value[: len(before) - d] == before[d:])
            lists[key] = [drop, value[len(before) - drop :]]
        else:
            changed[key] = value
    return {"set": changed, "lists": lists}


def apply_link_delta(old: Mapping[str, Any], delta: object) -> dict[str, Any]:
    """The link state :func:`link_delta` described; ValueError when it does not fit ``old``."""
    if not (isinstance(delta, Mapping) and isinstance(delta.get("set"), Mapping)):
        raise ValueError("a link delta has a set and lists")
    lists = delta.get("lists")
    if not isinstance(lists, Mapping):
        raise ValueError("a link delta has a set and lists")
    new = {**old, **delta["set"]}
    for key, change in lists.items():
        before = old.get(key)
        if not (isinstance(before, list) and isinstance(change, list) and len(change) == 2):
            raise ValueError(f"link delta for {key!r} does not fit")
        drop, added = change
        if not (isinstance(drop, int) and 0 <= drop <= len(before) and isinstance(added, list)):
            raise ValueError(f"link delta for {key!r} does not fit")
        new[key] = before[drop:] + added
    return new


def snapshot(generation: int, log: EventLog, link_state: Mapping[str, Any] | None) -> bytes:
    """A whole journal in one record: what a compaction writes in place of the old journal."""
    payload: dict[str, object] = {"g": generation, "snapshot": log.to_state()}
    payload["l"] = dict(link_state) if link_state is not None else None
    return encode_record(payload)


@dataclass(frozen=True, slots=True)
class Scanned:
    """The records that read back whole and checked, and what stopped the reading."""

    records: list[tuple[int, dict[str, Any]]]  # (offset just past the record, payload)
    torn: bool  # the last record was cut short (a power cut while appending): dropped
    damaged: bool  # a whole record failed its CRC or did not decode: it and the rest dropped


def scan(data: bytes) -> Scanned:
    """Read records from the start until the data ends, is cut short or fails a check."""
    records: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _RECORD.size:
            return Scanned(records, torn=True, damaged=False)
        length, crc = _RECORD.unpack_from(data, offset)
        start = offset + _RECORD.size
        if length > MAX_RECORD_BYTES:
            return Scanned(records, torn=False, damaged=True)
        if start + length > len(data):
            return Scanned(records, torn=True, damaged=False)
        body = data[start : start + length]
        payload = _decode(body) if zlib.crc32(body) == crc else None
        if payload is None:
            return Scanned(records, torn=False, damaged=True)
        offset = start + length
        records.append((offset, payload))
    return Scanned(records, torn=False, damaged=False)


@dataclass(slots=True)
class Replayed:
    """What a journal gives back at boot, read against the newest valid settings bank."""

    log: EventLog | None  # None: no snapshot read (an empty or wholly unreadable journal)
    link_state: dict[str, Any] | None
    keep_bytes: int  # the journal's bytes that count; the rest is cut before the next append
    dropped_records: int  # whole records not taken (a later generation, or past a damage)
    damaged: bool
    generation: int = 0  # the generation of the last record taken
    unread_bytes: int = 0  # bytes past ``keep_bytes``
    journal_bytes: int = 0
    snapshot_bytes: int = 0  # the size of the first (snapshot) record


def replay(data: bytes, bank_generation: int | None) -> Replayed:
    """The log and link state of the records that go with ``bank_generation`` (None: both banks
    lost, every readable record counts). Stops at the first record of a later generation: its
    settings were never written, so neither were its log entries and answers."""
    scanned = scan(data)
    log: EventLog | None = None
    link_state: dict[str, Any] | None = None
    keep = 0
    taken = 0
    snapshot_bytes = 0
    last_generation = 0
    for end, payload in scanned.records:
        generation = payload.get("g")
        if not isinstance(generation, int):
            break
        if bank_generation is not None and generation > bank_generation:
            break
        try:
            log, link_state = _apply(payload, log, link_state, first=taken == 0)
        except ValueError:
            break
        if taken == 0:
            snapshot_bytes = end
        taken += 1
        keep = end
        last_generation = generation
    dropped = len(scanned.records) - taken + (1 if scanned.damaged else 0)
    return Replayed(
        log,
        link_state,
        keep,
        dropped,
        scanned.damaged,
        generation=last_generation,
        unread_bytes=len(data) - keep,
        journal_bytes=len(data),
        snapshot_bytes=snapshot_bytes,
    )


def should_compact(journal_bytes: int, snapshot_bytes: int) -> bool:
    """Compact once the records appended since the snapshot pass its size plus the slack:
    each compaction (which rewrites the log) then pays for at least as many bytes appended."""
    return journal_bytes - snapshot_bytes > snapshot_bytes + COMPACT_SLACK_BYTES


def _apply(
    payload: Mapping[str, Any],
    log: EventLog | None,
    link_state: dict[str, Any] | None,
    *,
    first: bool,
) -> tuple[EventLog | None, dict[str, Any] | None]:
    if "snapshot" in payload:
        if not first:
            raise ValueError("a snapshot is only ever the first record")
        try:
            log = EventLog.from_state(payload["snapshot"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"unreadable snapshot: {error}") from None
    elif log is None:
        raise ValueError("a journal starts with a snapshot")
    items = payload.get("e", [])
    if not isinstance(items, list):
        raise ValueError("entries must be a list")
    counts = payload.get("n")
    if counts is not None and not (
        isinstance(counts, list) and len(counts) == 3 and all(isinstance(c, int) for c in counts)
    ):
        raise ValueError("counts must be three integers")
    for entry in [LogEntry.from_state(item) for item in items]:  # all read, then all applied
        log.restore(entry)
    if counts is not None:
        log.catch_up(*counts)
    if "l" in payload:
        link = payload["l"]
        link_state = dict(link) if isinstance(link, Mapping) else None
    elif "d" in payload:
        if link_state is None:
            raise ValueError("a link delta with no link state before it")
        link_state = apply_link_delta(link_state, payload["d"])
    return log, link_state


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
