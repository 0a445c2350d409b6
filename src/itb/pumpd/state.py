"""The pump's state directory: its non-volatile memory as files, the world, keys and clock.

Layout of ``PUMPDIR``::

    identity.json          model and serial (the pump's ROM; written once by ``init``)
    bank0.bin, bank1.bin   the two settings banks of ``DualBankMemory``: the firmware's
                           settings image (everything but the log's entries)
    log.journal            the event log and the link state (counter ceiling, kept answers):
                           append-only records with a CRC each (itb.pump.journal), compacted
                           on a bound; kept apart, so losing both banks keeps them (H54)
    allowlist0.bin, allowlist1.bin
                           the allow-list (paired keys and roles): its own two CRC-checked
                           copies, apart from the settings (itb.pumpd.allowlist)
    <file>.corrupt-<n>     the bytes of a bank, allow-list copy or journal that failed its
                           check, kept before that file was overwritten (itb.pumpd.files)
    world.<gen>.json       the world (what the pump cannot see) that goes with bank generation
                           <gen>; the two newest are kept
    clock.json             the clock anchor: pump time = pump_anchor + speed × (wall − wall_anchor)
    pump.key, pump.pub     the pump's X25519 key pair
    lock                   held (flock) by the process serving the pump

Crash safety. Every file is written to a temporary name, fsynced, renamed over the old one
(``os.replace``) and the directory fsynced, so a SIGKILL (or power cut) at any moment leaves
the old file or the new one; the journal is appended to, one CRC-checked record per save, and
a torn last record is dropped. On top, a memory write goes to the bank not holding the newest
image (the dual-bank scheme); a save that changes the settings appends its journal record
tagged with the next generation g, then writes the world for g, then bank g: a boot reads the
journal only up to the generation of the bank it picks, so the log, the link state and the
settings always go together, and the bank a boot picks always has its world. A save that only
adds refusals to the log's security ring or moves the link state appends a record and writes
no bank (the cost of a save is the change, not the log: issue 13). Boot reads the newest valid
bank; one bad bank falls back to the other with the firmware's memory alarm, both bad is the
firmware's safe state
(minimum rate, critical alarm, concentration unknown). Losing the settings never loses the
pairing: the allow-list is kept apart, so a clinician can still reach a safe-stated pump. No
corrupt image is overwritten without a copy kept first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from itb.errors import InputError
from itb.link.keys import KeyOwner, load_private_key, public_key_of, write_keypair
from itb.link.keys import write_public_key as _write_public_key
from itb.pump import journal, persistence
from itb.pump.eventlog import SECURITY_KINDS
from itb.pump.firmware import Firmware
from itb.pump.hardware import PumpModel, pump_model
from itb.pump.memory import DualBankMemory, decode_bank
from itb.pump.world import World
from itb.pumpd.allowlist import ALLOWLIST_FILES, AllowListFiles, AllowListHealth, LoadedAllowList
from itb.pumpd.files import TMP_SUFFIX, CorruptKeeper, atomic_write, canonical_json
from itb.pumpd.journal import JOURNAL_FILE, JournalFile
from itb.pumpd.recovery import MemoryFindings
from itb.telemetry.endpoint import MAX_PAIRED_KEYS, PairedKey, Role
from itb.therapy import from_pump_s
from itb.units import UL_PER_ML

IDENTITY_FILE = "identity.json"
BANK_FILES = ("bank0.bin", "bank1.bin")
CLOCK_FILE = "clock.json"
LOCK_FILE = "lock"
PUMP_KEY_FILE = "pump.key"
PUMP_PUB_FILE = "pump.pub"
# Re-exported: the state directory's file helpers live in itb.pumpd.files.
__all__ = [
    "ALLOWLIST_FILES", "BANK_FILES", "JOURNAL_FILE", "StateDir", "StateError", "atomic_write",
]  # fmt: skip


class StateError(InputError):
    """A state directory that cannot be used; the message names the file and what is wrong."""

    def __init__(self, message: str, field: str = "pumpdir") -> None:
        super().__init__(field, message, message)

    def __reduce__(self) -> tuple[type[StateError], tuple[str, str]]:
        return (type(self), (str(self), self.field))


class PumpBusyError(StateError):
    """Another process is serving this pump."""


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """Pump time = ``pump_anchor_s + speed × (wall − wall_anchor_s)`` (pump seconds)."""

    wall_anchor_s: float
    pump_anchor_s: float
    speed: float

    def pump_s_at(self, wall_s: float) -> float:
        return self.pump_anchor_s + self.speed * (wall_s - self.wall_anchor_s)

    def to_dict(self) -> dict[str, float]:
        return {
            "wall_anchor_s": self.wall_anchor_s,
            "pump_anchor_s": self.pump_anchor_s,
            "speed": self.speed,
        }


@dataclass(slots=True)
class Booted:
    """What a boot found: the firmware (advanced to nothing yet), link state and allow-list."""

    firmware: Firmware
    link_state: dict[str, Any] | None
    paired_keys: list[PairedKey]
    generation: int
    bad_banks: list[int]
    allowlist: AllowListHealth = AllowListHealth.GOOD


class StateDir:
    """One pump's state directory (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self.keeper = CorruptKeeper()  # the corrupt images kept aside by this process
        self.allowlist = AllowListFiles(self.path, self.keeper)
        self.journal = JournalFile(self.path, self.keeper)
        self._journaled_seq = 0  # log entries up to this sequence number are in the journal
        self._journaled_link: dict[str, Any] | None = None
        self.bank_writes = 0  # settings images written by this process (tests, benches)

    # -------------------------------------------------------------- creation and identity
    def exists(self) -> bool:
        return (self.path / IDENTITY_FILE).exists()

    def create(
        self,
        firmware: Firmware,
    ) -> Path:
        """A new pump: identity, key pair, the first memory image and its world. Returns the
        public key path. Refuses a directory that already holds a pump."""
        if self.exists() or any(
            (self.path / name).exists() for name in (*BANK_FILES, *ALLOWLIST_FILES, JOURNAL_FILE)
        ):
            raise StateError(f"{self.path}: already holds a pump; refusing to overwrite it")
        if (self.path / PUMP_KEY_FILE).exists():
            raise StateError(f"{self.path / PUMP_KEY_FILE}: already exists; refusing to overwrite")
        self.path.mkdir(parents=True, exist_ok=True)
        _, public_path = write_keypair(self.path, KeyOwner.PUMP)
        identity = {"model": firmware.model.name, "serial": firmware.serial}
        # both banks hold the first image, both allow-list copies the empty list: a fresh pump
        # has nothing failing its check (and "never paired" is not "lost")
        self.write_image(firmware, None)
        self.write_image(firmware, None)
        self.allowlist.write([])
        # identity last: a directory without it is not a pump yet, and init may be run again
        atomic_write(self.path / IDENTITY_FILE, canonical_json(identity))
        return public_path

    def identity(self) -> tuple[PumpModel, str]:
        try:
            data = json.loads((self.path / IDENTITY_FILE).read_text(encoding="utf-8"))
            return pump_model(str(data["model"])), str(data["serial"])
        except FileNotFoundError:
            raise StateError(
                f"{self.path}: not a pump state directory (no {IDENTITY_FILE}); "
                "run `itb pump init` first"
            ) from None
        except (ValueError, KeyError, TypeError) as error:
            raise StateError(f"{self.path / IDENTITY_FILE}: unreadable: {error}") from None

    def pump_private_key(self) -> bytes:
        return load_private_key(self.path / PUMP_KEY_FILE, KeyOwner.PUMP)

    def write_pump_public_key(self) -> Path:
        path = self.path / PUMP_PUB_FILE
        _write_public_key(path, public_key_of(self.pump_private_key()), KeyOwner.PUMP)
        return path

    # -------------------------------------------------------------- lock
    def lock(self) -> None:
        """Take the pump: one process at a time. Released by the OS if the process dies."""
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PumpBusyError(
                f"{self.path}: the pump is being served by another process; stop it first"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[StateDir]:
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    # -------------------------------------------------------------- memory banks and world
    def _memory(self) -> DualBankMemory:
        banks: list[bytearray] = []
        for name in BANK_FILES:
            try:
                banks.append(bytearray((self.path / name).read_bytes()))
            except FileNotFoundError:
                banks.append(bytearray())
        return DualBankMemory(banks)

    def _world_path(self, generation: int) -> Path:
        return self.path / f"world.{generation}.json"

    def write_image(
        self,
        firmware: Firmware,
        link_state: Mapping[str, Any] | None,
        *,
        settings: bool = True,
    ) -> int:
        """Persist a save; returns the settings generation it goes with. The journal gets the
        log entries not yet in it and the link state if it changed. The settings bank is
        written when ``settings`` (the firmware's settings changed) or a clinical entry was
        logged since the last write; then the journal record carries the new generation and
        goes first, the world next, the bank last (a corrupt image in that bank is kept aside
        first). A save of refusals and link state only writes no bank."""
        log = firmware.log
        entries = log.entries_after(self._journaled_seq)
        link = dict(link_state) if link_state is not None else None
        memory = self._memory()
        newest = memory.newest()
        clinical = any(entry.kind not in SECURITY_KINDS for entry in entries)
        write_bank = settings or clinical or newest is None
        # after both banks were lost the journal's records may be of later generations than
        # any bank: the next one comes after them, or a boot would not read them back
        current = max(0 if newest is None else newest[1], self.journal.generation)
        generation = current + (1 if write_bank else 0)
        self.journal.write(generation, log, entries, link, self._journaled_link)
        self._journaled_seq = log.next_seq - 1
        self._journaled_link = link
        if write_bank:
            self._write_bank(memory, firmware, generation)
        self.journal.compact_if_due(generation, log, link)
        return generation

    def _write_bank(self, memory: DualBankMemory, firmware: Firmware, generation: int) -> None:
        index, image = memory.plan_write(persistence.settings_image(firmware), generation)
        target = self.path / BANK_FILES[index]
        overwritten = bytes(memory.banks[index])
        if overwritten and decode_bank(overwritten) is None:
            self.keeper.keep(target, overwritten)
        atomic_write(self._world_path(generation), canonical_json(firmware.world.to_state()))
        atomic_write(target, image)
        self.bank_writes += 1
        for old in self.path.glob("world.*.json"):
            try:
                old_generation = int(old.name.split(".")[1])
            except (IndexError, ValueError):
                continue
            if old_generation < generation - 1:
                old.unlink(missing_ok=True)

    def _load_world(self, generation: int | None, model: PumpModel) -> World:
        candidates = [self._world_path(generation)] if generation is not None else []
        candidates += sorted(
            self.path.glob("world.*.json"),
            key=lambda p: int(p.name.split(".")[1]) if p.name.split(".")[1].isdigit() else -1,
            reverse=True,
        )
        for path in candidates:
            try:
                return World.from_state(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return World(reservoir_ul=model.reservoir_ml * UL_PER_ML)

    def boot(self, at: datetime | None = None) -> Booted:
        """Start the firmware from the newest valid bank (``Firmware.boot`` semantics) and read
        the allow-list from its own copies.

        ``at`` is the pump time used only when both banks are bad (the safe state); by default
        the clock anchor's last known pump time.
        """
        model, serial = self.identity()
        memory = self._memory()
        newest = memory.newest()
        generation = None if newest is None else newest[1]
        world = self._load_world(generation, model)
        if at is None:
            anchor = self.clock_anchor()
            at = from_pump_s(anchor.pump_anchor_s) if anchor else datetime(2000, 1, 3)
        replayed = self.journal.load(generation, bank_failed=bool(memory.bad_banks()))
        # what the journal holds; entries the boot adds (a memory alarm) go with the next save
        self._journaled_seq = replayed.log.next_seq - 1 if replayed.log is not None else 0
        firmware = persistence.boot(Firmware, memory, model, serial, at, world, replayed.log)
        link_state: dict[str, Any] | None = replayed.link_state
        legacy_keys: list[PairedKey] = []
        if newest is not None:
            try:
                payload = json.loads(newest[2])
                if replayed.log is None:  # a directory from before the journal
                    link_state = payload.get("link")
                legacy_keys = [PairedKey.from_dict(d) for d in payload.get("paired_keys", [])]
            except (ValueError, AttributeError, TypeError):
                pass  # the firmware is in its safe state already
        self._journaled_link = link_state
        allowlist = self._load_allowlist(legacy_keys)
        if allowlist.health is AllowListHealth.LOST:
            firmware.log.append(
                firmware.t_s,
                "allowlist_lost",
                {"copies": list(allowlist.bad_copies), "detail": "no programmer is paired"},
            )
        return Booted(
            firmware,
            link_state,
            list(allowlist.keys),
            generation or 0,
            memory.bad_banks(),
            allowlist.health,
        )

    def _load_allowlist(self, legacy_keys: Sequence[PairedKey]) -> LoadedAllowList:
        """The allow-list from its copies; a directory from before the split moves the keys
        its settings image holds into the allow-list's own files (both copies)."""
        loaded = self.allowlist.load()
        if loaded.health is AllowListHealth.ABSENT and legacy_keys:
            self.allowlist.write(legacy_keys)
            return LoadedAllowList(tuple(legacy_keys), AllowListHealth.GOOD, ())
        return loaded

    def keep_corrupt_copies(self) -> MemoryFindings:
        """Check the settings banks and the allow-list copies; keep a copy of every one that
        fails its check. Call with the lock held, before serving."""
        self.identity()
        memory = self._memory()
        bad_banks = []
        for name, bank in zip(BANK_FILES, memory.banks, strict=True):
            if decode_bank(bytes(bank)) is None:
                bad_banks.append(name)
                if bank:
                    self.keeper.keep(self.path / name, bytes(bank))
        bad_allowlist = self.allowlist.keep_corrupt()
        lost = self.allowlist.load().health is AllowListHealth.LOST
        journal_damaged = self._keep_damaged_journal()
        return MemoryFindings(
            tuple(bad_banks), tuple(bad_allowlist), lost, tuple(self.keeper.kept), journal_damaged
        )

    def _keep_damaged_journal(self) -> bool:
        """A journal with a record failing its check is kept aside (a torn last record is
        what a power cut leaves: not evidence, and not reported)."""
        try:
            data = self.journal.path.read_bytes()
        except FileNotFoundError:
            return False
        if not journal.scan(data).damaged:
            return False
        self.keeper.keep(self.journal.path, data)
        return True

    def remove_stale_temporaries(self) -> None:
        for tmp in self.path.glob("*" + TMP_SUFFIX):
            tmp.unlink(missing_ok=True)

    # -------------------------------------------------------------- pairing
    def pair(self, public_key: bytes, role: Role, label: str = "") -> PairedKey:
        """Record ``public_key`` with ``role`` in the pump's allow-list (replacing its old role).
        Call with the lock held: pairing is a proximity step, done while the pump is not served.
        Works on a pump whose settings banks were lost (the safe state): the allow-list is
        written first, then the ``paired`` entry in the pump's log."""
        booted = self.boot()
        firmware = booted.firmware
        entry = PairedKey(public_key, role, label)
        keys = [k for k in booted.paired_keys if k.public_key != public_key]
        if len(keys) >= MAX_PAIRED_KEYS:
            raise StateError(
                f"programmer: the pump already has {MAX_PAIRED_KEYS} paired keys, the maximum"
            )
        keys.append(entry)
        self.allowlist.write(keys)
        firmware.record(
            firmware.now,
            "paired",
            {"key_id": entry.key_id, "role": role.value, "label": label},
        )
        self.write_image(firmware, booted.link_state)
        return entry

    # -------------------------------------------------------------- clock anchor
    def clock_anchor(self) -> ClockAnchor | None:
        try:
            data = json.loads((self.path / CLOCK_FILE).read_text(encoding="utf-8"))
            return ClockAnchor(
                float(data["wall_anchor_s"]), float(data["pump_anchor_s"]), float(data["speed"])
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise StateError(f"{self.path / CLOCK_FILE}: unreadable: {error}") from None

    def write_clock_anchor(self, anchor: ClockAnchor) -> None:
        atomic_write(self.path / CLOCK_FILE, canonical_json(anchor.to_dict()))
