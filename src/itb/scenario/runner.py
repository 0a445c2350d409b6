"""Run one pump through a scenario: the firmware, driven by the scenario's events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itb.pump.checks import CommandRejected
from itb.pump.firmware import Firmware
from itb.scenario import Event, Scenario
from itb.telemetry.status_wire import status_to_wire
from itb.therapy import RateSegment, to_pump_s
from itb.units import parse_duration_s

DELIVERY_STOP_ALARMS = ("empty_reservoir", "eos", "motor_stall")


@dataclass
class SimulationResult:
    start: datetime
    end: datetime
    firmware: Firmware
    received_segments: list[RateSegment]
    rejected: list[dict[str, object]] = field(default_factory=list)

    @property
    def delivery_stops(self) -> list[tuple[float, str]]:
        """(pump seconds, alarm kind) of every alarm that stops delivery."""
        return [
            (e.t_s, str(e.data["alarm"]))
            for e in self.firmware.log.entries()
            if e.kind == "alarm" and e.data.get("alarm") in DELIVERY_STOP_ALARMS
        ]

    def to_dict(self) -> dict[str, object]:
        status = self.firmware.status()
        alarms = [
            {"kind": e.data["alarm"], "at": e.at.isoformat(), "priority": e.data.get("priority")}
            for e in self.firmware.log.entries()
            if e.kind == "alarm"
        ]
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "delivered_ug": status.delivered_ug,
            "delivered_ml": status.delivered_ml,
            "received_ug": status.received_ug,
            "reservoir_ml": status.reservoir_ml,
            "alarms": alarms,
            "events": [e.to_dict() for e in self.firmware.log.entries()],
            "events_lost": self.firmware.log.lost_count,
            "rejected": self.rejected,
            "status": status_to_wire(status),  # the pump's status as it sends it
        }


def apply_event(fw: Firmware, event: Event) -> None:
    """One scenario event as a command to the pump (CommandRejected when the pump refuses)."""
    at = event.at
    match event.action:
        case "refill":
            assert event.volume_ml is not None and event.concentration_ug_per_ml is not None
            fw.refill(at, event.volume_ml, event.concentration_ug_per_ml)
        case "bolus":
            fw.start_bolus(
                at,
                event.kind,
                dose_ug=event.dose_ug,
                volume_ml=event.volume_ml,
                duration_min=event.duration_min,
            )
        case "stop":
            fw.stop(at)
        case "resume":
            fw.resume(at)
        case "program":
            fw.set_program(at, event.program())
        case "fault":
            assert event.fault is not None
            fw.inject_fault(
                at, event.fault, recovery_h=event.recovery_h, leak_fraction=event.leak_fraction
            )
        case "clear_alarm":
            assert event.alarm is not None
            fw.clear_alarm(at, event.alarm)
        case "alarm_test":
            fw.test_alarm(at)
        case "patient_bolus":
            fw.patient_bolus(at)
        case "alarm_threshold":
            assert event.low_reservoir_alarm_ml is not None
            fw.set_low_reservoir_alarm(at, event.low_reservoir_alarm_ml)
        case "telemetry":
            fw.telemetry_session(at)


def simulate(scenario: Scenario, until_s: float | None = None) -> SimulationResult:
    """Run the scenario for ``until_s`` seconds from its start (default: its [simulate] until)."""
    duration_s = parse_duration_s(scenario.simulate.until) if until_s is None else until_s
    start = scenario.pump.start
    end = start + timedelta(seconds=duration_s)
    fw = scenario.build_firmware(record_received=True)
    rejected: list[dict[str, object]] = []
    for event in scenario.events:
        if event.at > end:
            break
        try:
            apply_event(fw, event)
        except CommandRejected as err:
            rejected.append(
                {
                    "at": event.at.isoformat(),
                    "action": event.action,
                    "field": err.field,
                    "reason": err.reason,
                }
            )
    fw.advance_s(to_pump_s(end))
    return SimulationResult(start, end, fw, fw.received_segments(), rejected)
