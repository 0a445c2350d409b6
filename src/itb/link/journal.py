"""The journal of uncertain commands: request ids sent but never answered, kept between runs.

A small JSON file beside the programmer's key. Adapter code (disk), used by ``itb programmer``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast


class UncertainJournal:
    """Commands sent but not yet answered, kept in a small JSON file between runs.

    An entry (request id, the pump's key id, the command) is added just before its command
    leaves and removed when an answer arrives; one left behind (the answer was lost, or the
    program died) is settled from that pump's log at the next connection to it. Writes are
    atomic (temporary file + rename).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(data, dict) or not isinstance(data.get("pending"), list):
            return []
        return [
            {k: str(v) for k, v in cast(dict[str, object], item).items()}
            for item in cast(list[object], data["pending"])
            if isinstance(item, dict) and {"request_id", "pump", "command"} <= set(item)
        ]

    def pending(self, pump_key_id: str) -> list[dict[str, str]]:
        return [e for e in self._entries() if e["pump"] == pump_key_id]

    def _write(self, entries: list[dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"pending": entries}), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, request_id: str, pump_key_id: str, command: str) -> None:
        entries = self._entries()
        if all(e["request_id"] != request_id for e in entries):
            entry = {"request_id": request_id, "pump": pump_key_id, "command": command}
            self._write([*entries, entry])

    def remove(self, request_ids: list[str]) -> None:
        entries = self._entries()
        kept = [e for e in entries if e["request_id"] not in request_ids]
        if len(kept) != len(entries):
            self._write(kept)
