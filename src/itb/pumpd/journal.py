"""The event log's journal on disk (``log.journal``): append, cut a torn tail, compact.

The format and what counts at boot are the pure core's (:mod:`itb.pump.journal`); this module
only moves bytes. Appends are fsynced before the caller goes on (a record the settings bank or
an answer relies on is on disk first). What a boot found past the records that count (a torn
last record, a record of a generation whose bank was never written, a damaged record) is cut
off just before the next append, by the process that holds the pump's lock. A damaged record,
or records dropped because the newest settings bank failed its check, are evidence: the
journal's bytes are kept aside first (``<name>.corrupt-<n>``). A record dropped because the
process died before its bank write began (both banks good) is what a kill leaves: cut, not kept.
A compaction writes the snapshot atomically in place of the journal (old or new, never a mix).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from itb.pump import journal
from itb.pump.eventlog import EventLog, LogEntry
from itb.pumpd.files import CorruptKeeper, append_durable, atomic_write, truncate_durable

JOURNAL_FILE = "log.journal"


class JournalFile:
    """One pump's journal file and what this process knows about it."""

    def __init__(self, directory: Path, keeper: CorruptKeeper) -> None:
        self.path = directory / JOURNAL_FILE
        self.keeper = keeper
        self.size = 0
        self.snapshot_bytes = 0
        self.needs_snapshot = True  # no journal read yet: the next write starts one
        self.generation = 0  # of the journal's last record
        self._cut_to: int | None = None  # bytes to keep before the next append
        self._keep_copy = False

    def load(self, bank_generation: int | None, *, bank_failed: bool = False) -> journal.Replayed:
        """Read the journal against the newest valid bank's generation (None: both lost);
        ``bank_failed``: a settings bank failed its check."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        replayed = journal.replay(data, bank_generation)
        self.size = replayed.keep_bytes
        self.snapshot_bytes = replayed.snapshot_bytes
        self.needs_snapshot = replayed.log is None
        self.generation = replayed.generation
        self._cut_to = replayed.keep_bytes if replayed.unread_bytes else None
        self._keep_copy = replayed.damaged or (replayed.dropped_records > 0 and bank_failed)
        return replayed

    def write(
        self,
        generation: int,
        log: EventLog,
        entries: Sequence[LogEntry],
        link_state: Mapping[str, Any] | None,
        previous_link: Mapping[str, Any] | None,
    ) -> None:
        """Journal one save: its new ``entries`` and the link state if it changed since
        ``previous_link`` (the journal's). A journal not read back (none yet, or unreadable)
        starts with a snapshot of the whole log."""
        self._cut_tail()
        if self.needs_snapshot:
            self.compact(generation, log, link_state)
            return
        record = journal.transaction(generation, log, entries, link_state, previous_link)
        self.size = append_durable(self.path, record)
        self.generation = generation

    def compact_if_due(
        self, generation: int, log: EventLog, link_state: Mapping[str, Any] | None
    ) -> bool:
        if not journal.should_compact(self.size, self.snapshot_bytes):
            return False
        self.compact(generation, log, link_state)
        return True

    def compact(self, generation: int, log: EventLog, link_state: Mapping[str, Any] | None) -> None:
        """Replace the journal with one snapshot record (atomically)."""
        record = journal.snapshot(generation, log, link_state)
        atomic_write(self.path, record)
        self.size = self.snapshot_bytes = len(record)
        self.generation = generation
        self.needs_snapshot = False
        self._cut_to = None

    def _cut_tail(self) -> None:
        if self._cut_to is None:
            return
        if self._keep_copy and self.path.exists():
            self.keeper.keep(self.path, self.path.read_bytes())
        if self.path.exists():
            truncate_durable(self.path, self._cut_to)
        self._cut_to = None
        self._keep_copy = False
