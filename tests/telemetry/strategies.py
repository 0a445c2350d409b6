"""Hypothesis strategies for every telemetry message."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from itb.drugs import BACLOFEN
from itb.pump.alarms import AlarmKind, Priority
from itb.pump.status import (
    AlarmStatus,
    BatteryStatus,
    BolusKind,
    BolusStatus,
    Mode,
    PatientBolusLimits,
    PumpStatus,
)
from itb.telemetry.messages import (
    CHALLENGE_BYTES,
    CLINICIAN_BOLUS_KINDS,
    HIGH_RISK_COMMANDS,
    MAX_COUNTER,
    MAX_LOG_PAGE,
    MAX_VOLUME_ML,
    Accepted,
    ClearAlarm,
    Commit,
    EventLogPage,
    Interrogate,
    LogRecord,
    PatientBolusRequest,
    Prepare,
    Prepared,
    ReadEventLog,
    Refill,
    Refused,
    Rejected,
    Request,
    RequestEnvelope,
    Response,
    ResponseEnvelope,
    ResumePump,
    SetClock,
    SetLowReservoirAlarm,
    SetPatientBolusLimits,
    SetProgram,
    StartBolus,
    StatusReport,
    StopPump,
    TestAlarm,
)
from itb.therapy import continuous, format_clock, program_from_dict

request_ids = st.binary(min_size=16, max_size=16).map(bytes.hex)
challenges = st.binary(min_size=CHALLENGE_BYTES, max_size=CHALLENGE_BYTES).map(bytes.hex)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31))
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)


def floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


json_leaves = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | floats(-1e9, 1e9) | text
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(text, json_values, max_size=4)


@st.composite
def programs(draw: st.DrawFn) -> dict[str, object]:
    if draw(st.booleans()):
        return continuous(draw(floats(0.0, 2000.0))).to_dict()
    starts = sorted(draw(st.sets(st.integers(1, 24 * 60 - 1), max_size=5)) | {0})
    return {
        "steps": [
            {"start": format_clock(s), "rate_ug_per_h": draw(floats(0.0, 80.0))} for s in starts
        ]
    }


@st.composite
def boluses(draw: st.DrawFn) -> StartBolus:
    by_dose = draw(st.booleans())
    return StartBolus(
        draw(request_ids),
        draw(st.sampled_from(CLINICIAN_BOLUS_KINDS)),
        dose_ug=draw(floats(0.001, 200.0)) if by_dose else None,
        volume_ml=None if by_dose else draw(floats(0.001, MAX_VOLUME_ML)),
        duration_min=draw(st.none() | floats(1.0, 1440.0)),
    )


REQUESTS: dict[str, st.SearchStrategy[Request]] = {
    "interrogate": st.just(Interrogate()),
    "read_event_log": st.builds(
        ReadEventLog, st.integers(0, MAX_COUNTER), st.integers(1, MAX_LOG_PAGE)
    ),
    "set_program": st.builds(SetProgram, request_ids, programs()),
    "set_low_reservoir_alarm": st.builds(SetLowReservoirAlarm, request_ids, floats(0.5, 10.0)),
    "start_bolus": boluses(),
    "stop": st.builds(StopPump, request_ids),
    "resume": st.builds(ResumePump, request_ids),
    "refill": st.builds(
        Refill,
        request_ids,
        floats(0.001, MAX_VOLUME_ML),
        st.sampled_from(BACLOFEN.concentrations_ug_per_ml),
    ),
    "clear_alarm": st.builds(ClearAlarm, request_ids, st.sampled_from(AlarmKind)),
    "test_alarm": st.builds(TestAlarm, request_ids),
    "set_clock": st.builds(SetClock, request_ids, times),
    "set_patient_bolus_limits": st.builds(
        SetPatientBolusLimits,
        request_ids,
        floats(0.0, 100.0),
        floats(1.0, 1440.0),
        floats(15.0, 1440.0),
        st.integers(0, 12),
    ),
    "patient_bolus": st.builds(PatientBolusRequest, request_ids),
}
high_risk_commands = st.one_of(
    *(REQUESTS[t.type_name] for t in sorted(HIGH_RISK_COMMANDS, key=lambda t: t.type_name))
)
REQUESTS["prepare"] = st.builds(Prepare, high_risk_commands)
REQUESTS["commit"] = st.builds(Commit, request_ids, challenges)
requests = st.one_of(*REQUESTS.values())

amounts = floats(0.0, 1e6)
optional_times = st.none() | times
statuses = st.builds(
    PumpStatus,
    serial=text,
    model=text,
    now=times,
    mode=st.sampled_from(Mode),
    program=st.none() | programs().map(program_from_dict),
    daily_dose_ug=amounts,
    concentration_ug_per_ml=st.none() | amounts,
    reservoir_ml=amounts,
    low_reservoir_alarm_ml=amounts,
    battery=st.builds(
        BatteryStatus, amounts, optional_times, optional_times, optional_times, optional_times
    ),
    alarms=st.lists(
        st.builds(
            AlarmStatus, st.sampled_from(AlarmKind), st.sampled_from(Priority), times, st.booleans()
        ),
        max_size=3,
    ).map(tuple),
    delivered_ug=amounts,
    delivered_ml=amounts,
    received_ug=amounts,
    bolus=st.none() | st.builds(BolusStatus, st.sampled_from(BolusKind), amounts, amounts),
    patient_bolus_limits=st.none()
    | st.builds(PatientBolusLimits, amounts, amounts, amounts, st.integers(0, 24)),
    last_refill_at=optional_times,
    delivered_since_refill_ml=amounts,
    next_patient_bolus_at=optional_times,
)
log_records = st.builds(LogRecord, st.integers(0, MAX_COUNTER), times, text, json_objects)
RESPONSES: dict[str, st.SearchStrategy[Response]] = {
    "status": statuses.map(StatusReport),
    "event_log_page": st.builds(
        EventLogPage,
        st.lists(log_records, max_size=4).map(tuple),
        st.integers(0, MAX_COUNTER),
        st.booleans(),
        st.integers(0, MAX_COUNTER),
    ),
    "accepted": st.builds(Accepted, request_ids),
    "rejected": st.builds(Rejected, request_ids, text, text),
    "prepared": st.builds(Prepared, request_ids, challenges, floats(0.001, 3600.0), json_objects),
    "refused": st.just(Refused()),
}
responses = st.one_of(*RESPONSES.values())
request_envelopes = st.builds(RequestEnvelope, st.integers(1, MAX_COUNTER), requests)
response_envelopes = st.builds(ResponseEnvelope, st.integers(0, MAX_COUNTER), responses)
