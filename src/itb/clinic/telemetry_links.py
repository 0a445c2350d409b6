"""The clinic's pumps over the authenticated telemetry link: ``itb pump serve`` processes.

:class:`TelemetryPumps` is a :class:`~itb.clinic.pumps.PumpLinks` built from a pump directory
(a TOML file) and the clinic's programmer key. Every call of a :class:`TelemetryPumpLink` opens
one session (Noise KK handshake) through :mod:`itb.link.client`, does its work and closes.
Calls to one pump are serialised (one radio, one session at a time).

The directory::

    [[pump]]
    serial = "ITB-0001"            # the serial on the patient's record and in the pump's ROM
    address = "127.0.0.1:7001"     # HOST:PORT of ``itb pump serve``
    pump_key = "pumps/0001/pump.pub"   # the pump's public key; relative to this file
    timeout_s = 1.0                # optional: wait for each answer, more than 0 up to 60 s
    attempts = 4                   # optional: sends of each request, 1 to 20

Outcomes, as the services expect them (``clinic/services/commands.py``):

* ``rejected`` (the firmware refused; nothing changed), ``refused`` (the link refused: role or
  pairing; nothing changed), a command the link cannot encode, or a pump answering with another
  serial: :class:`~itb.clinic.pumps.PumpCommandRefusedError` (the visit fails with the reason).
* no connection, handshake refused or unanswered, a read that failed, a command that never
  left: :class:`~itb.clinic.pumps.PumpUnreachableError` (HTTP 503).
* ``uncertain`` (sent, no answer: maybe applied): ``PumpCommandUncertainError`` (HTTP 504);
  the visit stays ``pump_command_sent`` and is settled from the pump's event log by
  ``reconcile_pending`` at the next start.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import tomllib
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from itb.clinic.pumps import (
    PumpCommandRefusedError,
    PumpCommandUncertainError,
    PumpLink,
    PumpReading,
    PumpUnreachableError,
    RealPumps,
)
from itb.errors import InputError
from itb.link.client import CommandReport, PumpAddress, PumpSession, with_session
from itb.link.keys import KeyFileError, KeyOwner, load_private_key, load_public_key
from itb.link.transport import HandshakeRefusedError, LinkError
from itb.pump.alarms import AlarmKind
from itb.pump.status import BolusKind, PumpStatus
from itb.telemetry.endpoint import Outcome
from itb.telemetry.messages import (
    JSON,
    ClearAlarm,
    Command,
    MessageError,
    Refill,
    ResumePump,
    SetClock,
    SetProgram,
    StartBolus,
    StopPump,
    TestAlarm,
)
from itb.therapy import Program

_T = TypeVar("_T")

PUMP_KEYS = frozenset({"serial", "address", "pump_key", "timeout_s", "attempts"})
REQUIRED_PUMP_KEYS = ("serial", "address", "pump_key")
SERIAL_MAX_CHARS = 64
MAX_PUMPS = 10_000
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_ATTEMPTS = 4


class PumpDirectoryError(InputError):
    """A bad pump directory or programmer key; ``field`` names it (``pump[2].address``)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (PumpDirectoryError, (self.field, self.reason))


@dataclass(frozen=True, slots=True)
class PumpEntry:
    serial: str
    address: PumpAddress


def load_pump_directory(path: Path, programmer_key: Path) -> dict[str, PumpEntry]:
    """Read and check the directory and every key; PumpDirectoryError naming the field."""
    try:
        programmer_private = load_private_key(programmer_key, KeyOwner.PROGRAMMER)
    except (KeyFileError, OSError) as exc:
        raise PumpDirectoryError("--programmer-key", str(exc)) from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PumpDirectoryError("--pumps", f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PumpDirectoryError("--pumps", f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"pump"})
    if unknown:
        raise PumpDirectoryError(unknown[0], "unknown key; the file has only [[pump]] tables")
    pumps = data.get("pump")
    if not isinstance(pumps, list) or not pumps or not all(isinstance(p, dict) for p in pumps):
        raise PumpDirectoryError("pump", "expected one or more [[pump]] tables")
    if len(pumps) > MAX_PUMPS:
        raise PumpDirectoryError("pump", f"{len(pumps)} pumps; allowed 1 to {MAX_PUMPS}")
    entries: dict[str, PumpEntry] = {}
    for i, item in enumerate(pumps):
        entry = _pump_entry(f"pump[{i}]", item, path.parent, programmer_private)
        if entry.serial in entries:
            raise PumpDirectoryError(f"pump[{i}].serial", f"{entry.serial!r} is listed twice")
        entries[entry.serial] = entry
    return entries


def _pump_entry(
    where: str, item: dict[str, Any], base: Path, programmer_private: bytes
) -> PumpEntry:
    _check_keys(where, item)
    serial = _serial(where, item["serial"])
    timeout_s = _timeout_s(where, item.get("timeout_s", DEFAULT_TIMEOUT_S))
    attempts = _attempts(where, item.get("attempts", DEFAULT_ATTEMPTS))
    pump_public = _pump_key(where, item["pump_key"], base)
    host, port = _address(where, item["address"])
    address = PumpAddress(host, port, programmer_private, pump_public, timeout_s, attempts)
    return PumpEntry(serial, address)


def _check_keys(where: str, item: dict[str, Any]) -> None:
    unknown = sorted(set(item) - PUMP_KEYS)
    if unknown:
        raise PumpDirectoryError(
            f"{where}.{unknown[0]}", f"unknown key; allowed {', '.join(sorted(PUMP_KEYS))}"
        )
    for key in REQUIRED_PUMP_KEYS:
        if key not in item:
            raise PumpDirectoryError(f"{where}.{key}", "missing")


def _serial(where: str, serial: object) -> str:
    if not isinstance(serial, str) or not 1 <= len(serial) <= SERIAL_MAX_CHARS:
        raise PumpDirectoryError(
            f"{where}.serial", f"expected text of 1 to {SERIAL_MAX_CHARS} characters"
        )
    return serial


def _timeout_s(where: str, timeout_s: object) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        raise PumpDirectoryError(f"{where}.timeout_s", "expected a number of seconds (0 to 60]")
    if not (math.isfinite(timeout_s) and 0.0 < timeout_s <= 60.0):
        raise PumpDirectoryError(
            f"{where}.timeout_s", f"{timeout_s:g} s; allowed more than 0 up to 60 s"
        )
    return float(timeout_s)


def _attempts(where: str, attempts: object) -> int:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise PumpDirectoryError(f"{where}.attempts", f"{attempts!r}; allowed 1 to 20")
    return attempts


def _pump_key(where: str, key_text: object, base: Path) -> bytes:
    if not isinstance(key_text, str) or not key_text:
        raise PumpDirectoryError(f"{where}.pump_key", "expected the path of the pump's pump.pub")
    key_path = Path(key_text).expanduser()
    if not key_path.is_absolute():
        key_path = base / key_path
    try:
        return load_public_key(key_path, KeyOwner.PUMP)
    except (KeyFileError, OSError) as exc:
        raise PumpDirectoryError(f"{where}.pump_key", str(exc)) from None


def _address(where: str, address_text: object) -> tuple[str, int]:
    if not isinstance(address_text, str):
        raise PumpDirectoryError(f"{where}.address", "expected text HOST:PORT")
    host, sep, port_text = address_text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise PumpDirectoryError(
            f"{where}.address", f"{address_text!r}; expected HOST:PORT, port 1 to 65535"
        )
    return host.strip("[]"), int(port_text)


def _run_sync(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from synchronous code (on its own thread if this one
    already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class TelemetryPumps(RealPumps):
    """The pumps listed in a directory file, reached with the clinic's programmer key.

    Real pumps exist on their own: an implant record makes none, it reads the listed pump."""

    def __init__(self, pumps: dict[str, PumpEntry]) -> None:
        self._pumps = pumps
        self._locks = {serial: threading.Lock() for serial in pumps}

    @classmethod
    def from_files(cls, directory: Path, programmer_key: Path) -> TelemetryPumps:
        return cls(load_pump_directory(directory, programmer_key))

    def serials(self) -> list[str]:
        return sorted(self._pumps)

    def link(self, serial: str) -> PumpLink:
        entry = self._pumps.get(serial)
        if entry is None:
            raise PumpUnreachableError(f"pump {serial}: not in the clinic's pump directory")
        return TelemetryPumpLink(serial, entry.address, self._locks[serial])


class TelemetryPumpLink:
    """One pump over telemetry: each call is one session (connect, handshake, work, close)."""

    def __init__(self, serial: str, address: PumpAddress, lock: threading.Lock) -> None:
        self.serial = serial
        self.address = address
        self._lock = lock

    @property
    def where(self) -> str:
        return f"pump {self.serial} at {self.address.host}:{self.address.port}"

    def _session(self, work: Callable[[PumpSession], Awaitable[_T]]) -> _T:
        with self._lock:
            try:
                return _run_sync(lambda: with_session(self.address, work))
            except HandshakeRefusedError as exc:
                raise PumpUnreachableError(
                    f"{self.where}: pump unreachable: the pump refused the session (is the "
                    f"clinic's key paired with it, and is pump_key its key?): {exc}"
                ) from None
            except LinkError as exc:
                raise PumpUnreachableError(
                    f"{self.where}: pump unreachable, nothing sent: {exc}"
                ) from None

    def interrogate(self, since_seq: int = 0) -> PumpReading:
        """The status and every event-log entry after ``since_seq`` (read page by page)."""

        async def work(session: PumpSession) -> PumpReading:
            status = await session.interrogate()
            entries, _lost = await session.event_log(since_seq)
            return PumpReading(status, [e.to_wire() for e in entries])

        return self._session(work)

    def set_program(self, program: Program) -> None:
        wire: dict[str, JSON] = json.loads(json.dumps(program.to_dict()))
        self._command(lambda rid: SetProgram(rid, wire))

    def refill(self, volume_ml: float, concentration_ug_per_ml: float) -> None:
        self._command(lambda rid: Refill(rid, volume_ml, concentration_ug_per_ml))

    def prime(self, volume_ml: float) -> None:
        """StartBolus kind priming: a high-risk command, so it goes as prepare then commit."""
        self._command(lambda rid: StartBolus(rid, BolusKind.PRIMING, None, volume_ml, None))

    def bridge(self, volume_ml: float, duration_min: float) -> None:
        """StartBolus kind bridge (prepare, then commit)."""
        self._command(lambda rid: StartBolus(rid, BolusKind.BRIDGE, None, volume_ml, duration_min))

    # the care team's pump page (PumpActionLink)
    def clinician_bolus(self, dose_ug: float, duration_min: float) -> None:
        """StartBolus kind clinician (prepare, then commit)."""
        self._command(lambda rid: StartBolus(rid, BolusKind.CLINICIAN, dose_ug, None, duration_min))

    def stop(self) -> None:
        self._command(StopPump)

    def resume(self) -> None:
        self._command(ResumePump)

    def clear_alarm(self, kind: AlarmKind) -> None:
        self._command(lambda rid: ClearAlarm(rid, kind))

    def test_alarm(self) -> None:
        self._command(TestAlarm)

    def set_clock(self, new_time: datetime) -> None:  # PumpClockLink
        self._command(lambda rid: SetClock(rid, new_time))

    def _command(self, make: Callable[[str], Command]) -> None:
        """Check the pump's serial, then send one command (the services' checks already ran)."""

        async def work(session: PumpSession) -> CommandReport:
            self._check_serial(await session.interrogate())
            try:
                return await session.send(make)
            except MessageError as exc:  # built before sending: nothing left
                raise PumpCommandRefusedError(exc.field, f"not sent: {exc}") from None

        raise_for_outcome(self.where, self._session(work))

    def _check_serial(self, status: PumpStatus) -> None:
        if status.serial != self.serial:
            raise PumpCommandRefusedError(
                "serial",
                f"the pump at {self.address.host}:{self.address.port} answered with serial "
                f"{status.serial!r}, not {self.serial!r}: nothing sent",
            )


def raise_for_outcome(where: str, report: CommandReport) -> None:
    """Map a command's outcome to the clinic's errors (``done`` returns)."""
    if report.outcome is Outcome.DONE:
        return
    if report.outcome is Outcome.REJECTED:
        raise PumpCommandRefusedError(report.field or report.command, report.reason or "rejected")
    if report.outcome is Outcome.REFUSED:
        raise PumpCommandRefusedError(
            "programmer_key",
            f"{where} refused the {report.command} (is the clinic's key paired with the "
            "clinician role?); nothing changed",
        )
    raise PumpCommandUncertainError(
        f"{where}: the {report.command} was sent but no answer came (request "
        f"{report.request_id}): it may have been applied; the visit stays pump_command_sent "
        "and is settled from the pump's event log at the clinic's next start"
    )
