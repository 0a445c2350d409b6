"""Every message survives the wire unchanged, and a bad one names its field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.errors import InputError
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.status import BolusKind, Mode, PumpStatus
from itb.telemetry.codec import (
    CodecError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from itb.telemetry.messages import (
    JSON,
    MAX_COUNTER,
    REQUEST_TYPES,
    RESPONSE_TYPES,
    MessageError,
    Refill,
    Request,
    RequestEnvelope,
    Response,
    ResponseEnvelope,
    SetClock,
    SetLowReservoirAlarm,
    SetProgram,
    StartBolus,
    StatusReport,
    new_request_id,
)
from itb.telemetry.status_wire import status_from_wire, status_to_wire
from itb.therapy import continuous
from tests.telemetry.strategies import REQUESTS, RESPONSES

RID = "0123456789abcdef0123456789abcdef"


def test_there_is_a_strategy_for_every_message_type() -> None:
    assert set(REQUESTS) == set(REQUEST_TYPES)
    assert set(RESPONSES) == set(RESPONSE_TYPES)


@pytest.mark.parametrize("type_name", sorted(REQUEST_TYPES))
def test_every_request_round_trips(type_name: str) -> None:
    @given(st.integers(1, MAX_COUNTER), REQUESTS[type_name])
    def round_trip(counter: int, request: Request) -> None:
        envelope = RequestEnvelope(counter, request)
        assert decode_request(encode_request(envelope)) == envelope

    round_trip()


@pytest.mark.parametrize("type_name", sorted(RESPONSE_TYPES))
def test_every_response_round_trips(type_name: str) -> None:
    @given(st.integers(0, MAX_COUNTER), RESPONSES[type_name])
    def round_trip(counter: int, response: Response) -> None:
        envelope = ResponseEnvelope(counter, response)
        assert decode_response(encode_response(envelope)) == envelope

    round_trip()


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: SetLowReservoirAlarm(RID, 0.1), "volume_ml", "0.5 to 10"),
        (lambda: StartBolus(RID, BolusKind.CLINICIAN, dose_ug=500.0), "dose_ug", "200"),
        (lambda: StartBolus(RID, BolusKind.CLINICIAN), "dose_ug", "exactly one"),
        # The pump's own enum has a patient kind; a clinician's StartBolus may not carry it.
        (
            lambda: StartBolus(RID, BolusKind.PATIENT, dose_ug=5.0),
            "kind",
            "clinician, bridge, priming",
        ),
        (
            lambda: StartBolus.from_wire(
                {
                    "request_id": RID,
                    "kind": "patient",
                    "dose_ug": 5.0,
                    "volume_ml": None,
                    "duration_min": None,
                }
            ),
            "kind",
            "clinician, bridge, priming",
        ),
        (lambda: Refill(RID, 20.0, 300.0), "concentration_ug_per_ml", "500"),
        (lambda: Refill(RID, float("nan"), 500.0), "volume_ml", "allowed range"),
        (lambda: SetProgram(RID, {"rate_ug_per_day": -5.0}), "program", "rate_ug_per_h"),
        (lambda: SetProgram("not-hex", {"rate_ug_per_day": 5.0}), "request_id", "hex"),
        (
            lambda: SetClock.from_wire({"request_id": RID, "new_time": "yesterday"}),
            "new_time",
            "ISO 8601",
        ),
    ],
)
def test_a_bad_message_names_the_field_and_the_allowed_values(
    build: Callable[[], object], field: str, words: str
) -> None:
    with pytest.raises(MessageError) as caught:
        build()
    assert isinstance(caught.value, InputError)  # the one base of every bad-input error
    assert caught.value.field == field
    assert words in str(caught.value)


def test_a_non_canonical_encoding_is_refused() -> None:
    good = encode_request(RequestEnvelope(1, SetLowReservoirAlarm(RID, 2.0)))
    assert decode_request(good).counter == 1
    for variant in (
        good.replace(b"2.0", b"2"),  # an integer where a float belongs
        good.replace(b'{"body"', b'{ "body"'),  # whitespace
        good.replace(b'"counter":1', b'"counter":1,"counter":1'),  # duplicate key
        good.replace(b"2.0", b"NaN"),
    ):
        with pytest.raises(CodecError):
            decode_request(variant)


def test_an_unknown_key_is_refused_by_name() -> None:
    good = encode_request(RequestEnvelope(1, SetLowReservoirAlarm(RID, 2.0)))
    with pytest.raises(CodecError, match="unknown keys"):
        decode_request(good.replace(b'"request_id"', b'"extra":1,"request_id"'))


def test_request_ids_come_from_the_callers_random_bytes() -> None:
    assert new_request_id(bytes(range(16))) == "000102030405060708090a0b0c0d0e0f"
    with pytest.raises(MessageError):
        new_request_id(b"short")


def _firmware_status() -> PumpStatus:
    firmware = Firmware.implant(
        pump_model("peristaltic-20"), datetime(2024, 1, 1), serial="SN-1",
        concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(100.0),
    )  # fmt: skip
    return firmware.status()


def test_the_firmwares_status_travels_as_itself() -> None:
    status = _firmware_status()
    envelope = ResponseEnvelope(1, StatusReport(status))
    decoded = decode_response(encode_response(envelope))
    assert decoded == envelope
    assert isinstance(decoded.response, StatusReport)
    back = decoded.response.status
    assert back == status and back.serial == "SN-1" and back.program == continuous(100.0)
    assert back.mode is Mode.RUNNING  # typed, not a string


def test_the_status_wire_keeps_todays_keys_and_adds_the_predictions() -> None:
    wire = status_to_wire(_firmware_status())
    assert sorted(wire) == sorted([
        "serial", "model", "now", "mode", "program", "daily_dose_ug", "concentration_ug_per_ml",
        "reservoir_ml", "low_reservoir_alarm_ml", "battery", "alarms", "delivered_ug",
        "delivered_ml", "received_ug", "bolus", "patient_bolus_limits", "last_refill_at",
        "delivered_since_refill_ml", "next_patient_bolus_at",
    ])  # fmt: skip
    battery = wire["battery"]
    assert isinstance(battery, dict)
    assert sorted(battery) == [
        "eos_at", "eri_at", "predicted_eos_at", "predicted_eri_at", "remaining_mah",
    ]  # fmt: skip
    assert wire["program"] == {"rate_ug_per_day": 100.0}


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("mode",), "paused", "mode"),
        (("battery", "predicted_eri_at"), "soon", "battery.predicted_eri_at"),
        (("next_patient_bolus_at",), 5, "next_patient_bolus_at"),
        (("program",), {"rate_ug_per_day": -1.0}, "program"),
        (("battery",), {"remaining_mah": 1.0}, "battery"),
    ],
)
def test_a_bad_status_names_its_field(path: tuple[str, ...], value: JSON, field: str) -> None:
    wire = status_to_wire(_firmware_status())
    target: dict[str, JSON] = wire
    for key in path[:-1]:
        inner = target[key]
        assert isinstance(inner, dict)
        target = inner
    target[path[-1]] = value
    with pytest.raises(MessageError) as caught:
        status_from_wire(wire)
    assert caught.value.field == field


def test_a_status_with_an_unknown_key_is_refused() -> None:
    wire = status_to_wire(_firmware_status())
    with pytest.raises(MessageError, match="unknown keys"):
        status_from_wire({**wire, "extra": 1})
