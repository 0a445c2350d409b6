"""The pump's allow-list on disk: paired keys and their roles, kept apart from the settings.

Theory of operation
-------------------
The allow-list decides who can reach the pump. When it lived in the settings banks, losing both
banks (the safe state) also lost every pairing: the clinician who has to reprogram the pump
could not reach it. It now has its own two CRC-checked copies, ``allowlist0.bin`` and
``allowlist1.bin``, in the settings' dual-bank format (:mod:`itb.pump.memory`): each write goes
to the copy not holding the newest valid list, atomically, so a power cut at any byte leaves the
old list or the new one; then to the other copy, so both hold the same list. It is written only
when a pairing changes, never per session.

Reading takes the newest copy that passes its check and decodes:

    both copies good        the newest
    one copy bad            the other (the bad one is kept aside before it is next written)
    both copies bad         LOST: no programmer is paired; the pump says so at start and in its
                            log, and pairing again (a proximity step) is the way back
    no copy on disk         ABSENT: a state directory from before the split; its keys are
                            still in the settings image (``legacy_keys``) and move here at the
                            next pairing
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from itb.pump.memory import DualBankMemory, decode_bank, encode_bank
from itb.pumpd.files import CorruptKeeper, atomic_write, canonical_json
from itb.telemetry.endpoint import PairedKey

ALLOWLIST_FILES = ("allowlist0.bin", "allowlist1.bin")
ALLOWLIST_FORMAT = 1


class AllowListHealth(enum.Enum):
    GOOD = "good"
    ONE_COPY_BAD = "one_copy_bad"
    LOST = "lost"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class LoadedAllowList:
    keys: tuple[PairedKey, ...]
    health: AllowListHealth
    bad_copies: tuple[str, ...]  # the file names that failed their check


def encode_allowlist(keys: Iterable[PairedKey]) -> bytes:
    return canonical_json({"format": ALLOWLIST_FORMAT, "paired_keys": [k.to_dict() for k in keys]})


def decode_allowlist(payload: bytes) -> tuple[PairedKey, ...]:
    """The keys of a payload that passed its CRC; ValueError when it is not an allow-list."""
    try:
        data = json.loads(payload)
        if data.get("format") != ALLOWLIST_FORMAT:
            raise ValueError(f"allow-list format {data.get('format')!r}")
        return tuple(PairedKey.from_dict(entry) for entry in data["paired_keys"])
    except (AttributeError, KeyError, TypeError) as error:
        raise ValueError(f"not an allow-list: {error}") from None


class AllowListFiles:
    """The two copies of the allow-list in a pump's state directory."""

    def __init__(self, directory: Path, keeper: CorruptKeeper) -> None:
        self.directory = directory
        self.keeper = keeper

    def paths(self) -> tuple[Path, ...]:
        return tuple(self.directory / name for name in ALLOWLIST_FILES)

    def memory(self) -> tuple[DualBankMemory, list[bool]]:
        """Both copies as a dual-bank memory, and which of them exist on disk."""
        banks: list[bytearray] = []
        present: list[bool] = []
        for path in self.paths():
            try:
                banks.append(bytearray(path.read_bytes()))
                present.append(True)
            except FileNotFoundError:
                banks.append(bytearray())
                present.append(False)
        return DualBankMemory(banks), present

    def load(self) -> LoadedAllowList:
        memory, present = self.memory()
        if not any(present):
            return LoadedAllowList((), AllowListHealth.ABSENT, ())
        decoded: list[tuple[int, tuple[PairedKey, ...]]] = []
        bad: list[str] = []
        for name, bank in zip(ALLOWLIST_FILES, memory.banks, strict=True):
            keys = _decode(bytes(bank))
            if keys is None:
                bad.append(name)
            else:
                decoded.append(keys)
        if not decoded:
            return LoadedAllowList((), AllowListHealth.LOST, tuple(bad))
        newest = max(decoded, key=lambda item: item[0])[1]
        health = AllowListHealth.ONE_COPY_BAD if bad else AllowListHealth.GOOD
        return LoadedAllowList(newest, health, tuple(bad))

    def write(self, keys: Sequence[PairedKey]) -> None:
        """Write ``keys`` to both copies, one after the other: each write goes to the copy not
        holding the newest valid list, so a cut anywhere leaves the old list or the new one,
        and afterwards both copies hold the same list (one bad copy then loses nothing)."""
        self._write_one(keys)
        self._write_one(keys)

    def _write_one(self, keys: Sequence[PairedKey]) -> None:
        """Write ``keys`` to the copy not holding the newest valid list (a corrupt image there
        is kept aside first)."""
        memory, _ = self.memory()
        copies = [_decode(bytes(bank)) for bank in memory.banks]
        good = [(c[0], i) for i, c in enumerate(copies) if c is not None]
        newest_generation, newest_index = max(good) if good else (0, 1)
        index = 1 - newest_index
        target = self.paths()[index]
        old = bytes(memory.banks[index])
        if old and copies[index] is None:
            self.keeper.keep(target, old)
        atomic_write(target, encode_bank(newest_generation + 1, encode_allowlist(keys)))

    def keep_corrupt(self) -> list[str]:
        """Keep a copy of each copy that fails its check; the names of those found."""
        memory, present = self.memory()
        found = []
        for path, bank, exists in zip(self.paths(), memory.banks, present, strict=True):
            if exists and _decode(bytes(bank)) is None:
                found.append(path.name)
                if bank:
                    self.keeper.keep(path, bytes(bank))
        return found


def _decode(bank: bytes) -> tuple[int, tuple[PairedKey, ...]] | None:
    """(generation, keys) of a copy that passes its CRC and decodes; None otherwise."""
    checked = decode_bank(bank)
    if checked is None:
        return None
    try:
        return checked[0], decode_allowlist(checked[1])
    except ValueError:
        return None
