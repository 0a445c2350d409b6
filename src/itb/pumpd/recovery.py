"""What a pump found wrong with its memory at start, as one warning line.

``itb pump serve`` checks the settings banks and the allow-list copies before it serves, keeps a
copy of every corrupt image (:func:`itb.pumpd.files.keep_corrupt_copy`) and prints one line
naming what it found, what the pump does about it, and where the corrupt bytes are. A pump that
recovered silently would hide a flash fault, a bug or an attack from the people who run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class MemoryFindings:
    bad_banks: tuple[str, ...]  # settings bank files that failed their check
    bad_allowlist: tuple[str, ...]  # allow-list copies that failed their check
    allowlist_lost: bool  # both allow-list copies failed: no programmer is paired
    kept: tuple[Path, ...]  # where the corrupt bytes were put aside
    journal_damaged: bool = False  # a record of the event log's journal failed its check

    @property
    def clean(self) -> bool:
        return not (
            self.bad_banks or self.bad_allowlist or self.allowlist_lost or self.journal_damaged
        )

    def warning(self) -> str | None:
        """One line for the operator; None when the memory is clean."""
        if self.clean:
            return None
        parts = [self._banks_part(), self._allowlist_part()]
        if self.journal_damaged:
            parts.append(
                "the event log's journal has a damaged record: the entries from there on are "
                "lost (counted as lost in the log)"
            )
        if self.kept:
            parts.append("corrupt bytes kept in " + ", ".join(str(p) for p in self.kept))
        return "warning: " + "; ".join(p for p in parts if p)

    def _banks_part(self) -> str:
        names = ", ".join(self.bad_banks)
        if len(self.bad_banks) >= 2:
            return (
                f"both settings banks ({names}) failed their check: the pump runs its safe "
                "state (minimum rate, critical memory alarm, concentration unknown until a "
                "refill sets it)"
            )
        if self.bad_banks:
            return f"settings bank {names} failed its check: using the other (last known good)"
        return ""

    def _allowlist_part(self) -> str:
        names = ", ".join(self.bad_allowlist)
        if self.allowlist_lost:
            return (
                f"the allow-list ({names}) failed its check: no programmer is paired; pair "
                "again with `itb pump pair` (proximity step)"
            )
        if self.bad_allowlist:
            return f"allow-list copy {names} failed its check: using the other"
        return ""
