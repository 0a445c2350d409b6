"""How the clinic talks to a pump: the :class:`PumpLinks` interface and the demo's simulated pumps.

The web app and the services only see :class:`PumpLinks` and :class:`PumpLink`; the demo's
in-process simulated pumps (over ``itb.pump.firmware``), the telemetry client
(``clinic/telemetry_links.py``) and :class:`NoPumps` implement them. What differs between them
(whether a pump connection exists at all, whether a new implant needs a pump made for it) is
asked through the interface, never by checking which kind of links the clinic has.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from itb.errors import InputError
from itb.pump.alarms import AlarmKind
from itb.pump.firmware import CommandRejected, Firmware
from itb.pump.hardware import PumpModel
from itb.pump.status import BolusKind, PumpStatus
from itb.pump.world import World
from itb.therapy import Program


class PumpUnreachableError(Exception):
    """No link to a pump with that serial (out of range, not paired, not simulated)."""


class PumpCommandRefusedError(InputError):
    """The pump refused a command and changed nothing; ``field`` and ``reason`` say why."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (PumpCommandRefusedError, (self.field, self.reason))


class PumpCommandUncertainError(Exception):
    """The command left but no answer came: it may have been applied. The visit stays
    ``pump_command_sent`` and is settled from the pump's event log (``reconcile_pending``)."""


@dataclass(frozen=True, slots=True)
class PumpReading:
    """What an interrogation returns: the pump's typed status (its clock included) and its
    event-log entries after ``since_seq``."""

    status: PumpStatus
    # each {"seq": int, "at": datetime, "kind": str, "data": dict}
    entries: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewPump:
    """A pump as implanted in the operating room: filled, programmed, catheter primed."""

    model: PumpModel
    serial: str
    implanted_at: datetime
    concentration_ug_per_ml: float
    volume_ml: float
    program: Program
    low_reservoir_alarm_ml: float
    catheter_volume_ml: float
    # False at an implant: tubing and catheter hold spinal fluid until the priming bolus
    # (PumpLink.prime); True at a replacement, whose catheter stays full of drug
    catheter_primed: bool = False


class PumpLink(Protocol):
    serial: str

    def interrogate(self, since_seq: int = 0) -> PumpReading:
        """One session: the status (with the pump's clock) and the log after ``since_seq``."""
        ...

    def set_program(self, program: Program) -> None: ...

    def refill(self, volume_ml: float, concentration_ug_per_ml: float) -> None: ...

    def prime(self, volume_ml: float) -> None:
        """The priming bolus (``BolusKind.PRIMING``) of ``volume_ml``: it replaces the basal
        and fills the empty tubing and catheter; the volume leaves the reservoir."""
        ...

    def bridge(self, volume_ml: float, duration_min: float) -> None:
        """The bridge bolus (``BolusKind.BRIDGE``) after a concentration change: the old drug
        in the dead space (``volume_ml``) pushed at the old volume rate, over ``duration_min``."""
        ...


@runtime_checkable
class PumpActionLink(Protocol):
    """The everyday commands of the care team's pump page (web/pages/pump_actions.py): a
    link that lacks them is asked, never guessed (the page refuses in words)."""

    def clinician_bolus(self, dose_ug: float, duration_min: float) -> None: ...

    def stop(self) -> None: ...

    def resume(self) -> None: ...

    def clear_alarm(self, kind: AlarmKind) -> None: ...

    def test_alarm(self) -> None:
        """The pump sounds each alarm tone once and logs ``alarm_test``; nothing else changes."""
        ...


@runtime_checkable
class PumpClockLink(Protocol):
    """A link that can set the pump's clock (issue 11, H77): asked, never guessed."""

    def set_clock(self, new_time: datetime) -> None:
        """Set the pump's clock to ``new_time`` (the patient's standard time); the pump logs
        old and new, and refuses a correction beyond its bound (``itb.pump.clock``)."""
        ...


class PumpLinks(Protocol):
    """The pumps the clinic can reach, by serial, and what a new implant needs of them."""

    @property
    def connected(self) -> bool:
        """False when the clinic has no pump connection at all (entered state only)."""
        ...

    def link(self, serial: str) -> PumpLink: ...

    def serial_taken(self, serial: str) -> bool:
        """True when a pump with this serial exists that no new record may claim."""
        ...

    def implant(self, pump: NewPump) -> bool:
        """Make the new pump reachable; True when a pump was made (undo with :meth:`forget`).
        A real link makes nothing: the pump with that serial must already answer."""
        ...

    def forget(self, serial: str) -> None:
        """Undo :meth:`implant` (the implant record was not stored)."""
        ...


class RealPumps:
    """The capabilities of links to pumps that exist on their own (telemetry): none is made."""

    connected = True

    def serial_taken(self, serial: str) -> bool:
        return False

    def implant(self, pump: NewPump) -> bool:
        return False

    def forget(self, serial: str) -> None:
        return None


class NoPumps(RealPumps):
    """A clinic with no pump connection (the default until telemetry is wired)."""

    connected = False

    def link(self, serial: str) -> PumpLink:
        raise PumpUnreachableError(f"pump {serial}: no pump connection configured")


class DemoClock:
    """Simulated time = start + real time elapsed × speed (the demo's pumps and the clinic)."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        import time

        self._monotonic = time.monotonic
        self._t0 = time.monotonic()
        self.start = start
        self.speed = speed

    def __call__(self) -> datetime:
        from datetime import timedelta

        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)


class SimulatedPumps:
    """In-process simulated pumps over ``itb.pump.firmware``, keyed by serial.

    With ``state_dir``, each pump's memory image is written after every command, so that a
    pump outlives a crash of the clinic's process (as a real implanted pump would).
    """

    def __init__(self, clock: Callable[[], datetime], state_dir: Path | None = None) -> None:
        self.clock = clock
        self.state_dir = state_dir
        self._pumps: dict[str, Firmware] = {}
        self._lock = threading.Lock()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            for path in sorted(state_dir.glob("*.json")):
                fw = _load(path)
                self._pumps[fw.serial] = fw

    def add(self, fw: Firmware) -> None:
        with self._lock:
            self._pumps[fw.serial] = fw
            self._save(fw)

    def discard(self, serial: str) -> None:
        """Forget a pump just added (an implant record that was not stored)."""
        with self._lock:
            self._pumps.pop(serial, None)
            if self.state_dir is not None:
                (self.state_dir / f"{serial}.json").unlink(missing_ok=True)

    def firmware(self, serial: str) -> Firmware:
        try:
            return self._pumps[serial]
        except KeyError:
            raise PumpUnreachableError(f"pump {serial}: not in range") from None

    def serials(self) -> list[str]:
        return sorted(self._pumps)

    def link(self, serial: str) -> PumpLink:
        return SimulatedPumpLink(self, self.firmware(serial))

    # ---- PumpLinks capabilities: a simulated pump is made at its implant ---------------------
    connected = True

    def serial_taken(self, serial: str) -> bool:
        return serial in self._pumps

    def implant(self, pump: NewPump) -> bool:
        """A new firmware, filled and programmed; at an implant its tubing and catheter are
        empty until the clinic sends the priming bolus (PumpLink.prime)."""
        try:
            fw = Firmware.implant(
                pump.model,
                pump.implanted_at,
                serial=pump.serial,
                concentration_ug_per_ml=pump.concentration_ug_per_ml,
                volume_ml=pump.volume_ml,
                program=pump.program,
                low_reservoir_alarm_ml=pump.low_reservoir_alarm_ml,
                catheter_volume_ml=min(pump.catheter_volume_ml, 1.0),
                catheter_primed=pump.catheter_primed,
            )
        except CommandRejected as exc:
            raise PumpCommandRefusedError(exc.field, exc.reason) from None
        self.add(fw)
        return True

    def forget(self, serial: str) -> None:
        self.discard(serial)

    def _save(self, fw: Firmware) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / f"{fw.serial}.json"
        state = {"pump": fw.to_state(), "world": fw.world.to_state()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)  # atomic: the pump's memory is never half written


def _load(path: Path) -> Firmware:
    state = json.loads(path.read_text())
    world = World.from_state(state["world"])
    return Firmware.from_image(json.dumps(state["pump"]).encode(), world)


class SimulatedPumpLink:
    def __init__(self, pumps: SimulatedPumps, fw: Firmware) -> None:
        self._pumps = pumps
        self._fw = fw
        self.serial = fw.serial

    def _now(self) -> datetime:
        return max(self._pumps.clock(), self._fw.now)

    def _run(self, command: Callable[[datetime], None]) -> None:
        with self._pumps._lock:
            try:
                command(self._now())
            except CommandRejected as exc:
                raise PumpCommandRefusedError(exc.field, exc.reason) from None
            self._pumps._save(self._fw)

    def interrogate(self, since_seq: int = 0) -> PumpReading:
        with self._pumps._lock:
            self._fw.advance(self._now())
            self._pumps._save(self._fw)
            status = self._fw.status()
            entries = [
                # on the pump's clock, as its status (a corrected clock: itb.pump.clock)
                {"seq": e.seq, "at": self._fw.on_clock(e.t_s), "kind": e.kind, "data": dict(e.data)}
                for e in self._fw.log.entries(since_seq=since_seq)
            ]
        return PumpReading(status, entries)

    def set_program(self, program: Program) -> None:
        self._run(lambda at: self._fw.set_program(at, program))

    def refill(self, volume_ml: float, concentration_ug_per_ml: float) -> None:
        self._run(lambda at: self._fw.refill(at, volume_ml, concentration_ug_per_ml))

    def prime(self, volume_ml: float) -> None:
        """The firmware's own priming bolus (it replaces the basal until the volume is in)."""
        self._run(lambda at: self._fw.start_bolus(at, BolusKind.PRIMING, volume_ml=volume_ml))

    def bridge(self, volume_ml: float, duration_min: float) -> None:
        self._run(
            lambda at: self._fw.start_bolus(
                at, BolusKind.BRIDGE, volume_ml=volume_ml, duration_min=duration_min
            )
        )

    # the care team's pump page (PumpActionLink): the firmware's own commands
    def clinician_bolus(self, dose_ug: float, duration_min: float) -> None:
        self._run(
            lambda at: self._fw.start_bolus(
                at, BolusKind.CLINICIAN, dose_ug=dose_ug, duration_min=duration_min
            )
        )

    def stop(self) -> None:
        self._run(self._fw.stop)

    def resume(self) -> None:
        self._run(self._fw.resume)

    def clear_alarm(self, kind: AlarmKind) -> None:
        self._run(lambda at: self._fw.clear_alarm(at, kind))

    def test_alarm(self) -> None:
        self._run(self._fw.test_alarm)

    def set_clock(self, new_time: datetime) -> None:  # PumpClockLink
        self._run(lambda at: self._fw.set_clock(at, new_time))
