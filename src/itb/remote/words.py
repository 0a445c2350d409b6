"""The pump's status and the remote's answers in a family's words.

Pure: the pump's own status (its clock, its bolus outlook) is passed in. Whether a bolus is
possible is the pump's answer (``PumpStatus.next_patient_bolus_at`` via
:func:`itb.programmer.patient.availability_from_status`); the days to the low-medicine alarm
are the programmer's refill plan (:func:`itb.clinic.urgency.reservoir_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from itb.clinic.family_words import AlarmWords, alarm_words, days_in_words
from itb.clinic.urgency import reservoir_plan
from itb.programmer.patient import availability_from_status
from itb.pump.status import Mode, PumpStatus
from itb.units import SECONDS_PER_MINUTE

MODE_WORDS = {
    Mode.RUNNING: "giving baclofen as programmed",
    Mode.STOPPED: "STOPPED: no baclofen is given. Call the clinic now.",
}


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    serial: str
    at: datetime  # the pump's clock
    mode_words: str
    reservoir_ml: float
    reservoir_words: str
    alarms: tuple[AlarmWords, ...]
    bolus_available: bool
    bolus_words: str
    bolus_dose_ug: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "at": self.at.isoformat(timespec="minutes"),
            "mode": self.mode_words,
            "reservoir_ml": round(self.reservoir_ml, 2),
            "reservoir": self.reservoir_words,
            "alarms": [_alarm_dict(a) for a in self.alarms],
            "bolus_available": self.bolus_available,
            "bolus": self.bolus_words,
            "bolus_dose_ug": self.bolus_dose_ug,
        }


def _alarm_dict(a: AlarmWords) -> dict[str, str]:
    return {
        "kind": a.kind.value,
        "sound": a.sound,
        "means": a.means,
        "do_now": a.do_now,
        "call": a.call,
        "emergency": a.emergency,
    }


def when_words(at: datetime, now: datetime) -> str:
    """A time on the pump's clock and how far off: "at 10:00 (in 2 h 5 min)"."""
    minutes = max(0, round((at - now).total_seconds() / SECONDS_PER_MINUTE))
    hours, rest = divmod(minutes, 60)
    span = f"{hours} h {rest} min" if hours else f"{rest} min"
    day = "" if at.date() == now.date() else f" on {at:%A %-d %B}"
    return f"at {at:%H:%M}{day} (in {span})"


def _reservoir_words(status: PumpStatus) -> str:
    plan = reservoir_plan(
        status.model,
        status.reservoir_ml,
        status.low_reservoir_alarm_ml,
        status.daily_dose_ug,
        status.concentration_ug_per_ml,
    )
    volume = f"{status.reservoir_ml:.1f} mL of medicine left"
    if plan is None:
        return volume
    return f"{volume}; the low-medicine alarm sounds {days_in_words(plan.days_to_low_reservoir)}"


def _bolus_words(status: PumpStatus) -> tuple[bool, str]:
    answer = availability_from_status(status.now, status)
    if answer.available:
        return True, f"An extra dose can be given now ({answer.reason})."
    if answer.next_available_at is not None:
        return (
            False,
            f"The next extra dose is possible {when_words(answer.next_available_at, status.now)}.",
        )
    return False, f"No extra dose now: {answer.reason}."


def status_words(status: PumpStatus) -> RemoteStatus:
    available, bolus = _bolus_words(status)
    limits = status.patient_bolus_limits
    mode = MODE_WORDS.get(
        status.mode,
        f"{status.mode.value.replace('_', ' ')}: the pump may not be giving baclofen. "
        "Call the clinic now.",
    )
    return RemoteStatus(
        serial=status.serial,
        at=status.now,
        mode_words=mode,
        reservoir_ml=status.reservoir_ml,
        reservoir_words=_reservoir_words(status),
        alarms=tuple(alarm_words(a.kind) for a in status.alarms if a.active),
        bolus_available=available,
        bolus_words=bolus,
        bolus_dose_ug=limits.dose_ug if limits else None,
    )


# The answers of a bolus request, in words -------------------------------------------------
NOT_SENT = "Nothing was sent to the pump."
GIVEN = "The pump is giving the extra dose of {dose:g} µg now."
REJECTED = "Not given: the pump said no ({reason}). Nothing was delivered."
REFUSED = "Not given: the pump did not accept this remote's request. Nothing was delivered."
UNCERTAIN = (
    "No answer came from the pump: the dose may or may not have started. Do NOT ask again; "
    "the remote checks the pump's own record at the next connection."
)
UNREACHABLE = (
    "The pump could not be reached: nothing was sent. Hold the remote close to the pump and "
    "try again."
)
NOT_PAIRED = "The pump does not know this remote: nothing was sent. Ask your clinic to pair it."
