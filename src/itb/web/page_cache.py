"""Rendered page parts kept in memory, keyed by what they were built from, as sent: HTML with
its sources cited (``itb.web.citations``), in UTF-8, so a hit costs no rendering at all.

A key carries the database's data version (``itb.clinic.data_version``) and the clock's
minute, so an entry is never stale: any write bumps the version, and the next minute is a new
key. Each worker process has its own cache; they agree because the version lives in the
database. Old keys are simply never asked for again and fall out of the bounded LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class PageCache:
    """A thread-safe LRU of rendered fragments (the thread pool answers requests)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, fragment: bytes) -> None:
        with self._lock:
            self._entries[key] = fragment
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
