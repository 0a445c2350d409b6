"""Rendered page parts kept in memory, keyed by what they were built from.

A key carries the database's data version (``itb.clinic.data_version``) and the clock's
minute, so an entry is never stale: any write bumps the version, and the next minute is a new
key. Each worker process has its own cache; they agree because the version lives in the
database. Old keys are simply never asked for again and fall out of the bounded LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from markupsafe import Markup


class PageCache:
    """A thread-safe LRU of rendered fragments (the thread pool answers requests)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Markup | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, fragment: Markup) -> None:
        with self._lock:
            self._entries[key] = fragment
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
