"""Every message survives the wire unchanged, and a bad one names its field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.telemetry.codec import (
    CodecError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from itb.telemetry.messages import (
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
        (lambda: StartBolus(RID, "clinician", dose_ug=500.0), "dose_ug", "200"),
        (lambda: StartBolus(RID, "clinician"), "dose_ug", "exactly one"),
        (lambda: StartBolus(RID, "patient", dose_ug=5.0), "kind", "clinician, bridge, priming"),
        (lambda: Refill(RID, 20.0, 300.0), "concentration_ug_per_ml", "500"),
        (lambda: Refill(RID, float("nan"), 500.0), "volume_ml", "allowed range"),
        (lambda: SetProgram(RID, {"rate_ug_per_day": -5.0}), "program", "rate_ug_per_h"),
        (lambda: SetProgram("not-hex", {"rate_ug_per_day": 5.0}), "request_id", "hex"),
        (lambda: SetClock(RID, "yesterday"), "new_time", "ISO 8601"),
    ],
)
def test_a_bad_message_names_the_field_and_the_allowed_values(build, field, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MessageError) as caught:
        build()
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


def test_the_firmwares_status_becomes_a_status_report() -> None:
    from datetime import datetime

    from itb.pump.firmware import Firmware
    from itb.pump.hardware import pump_model
    from itb.therapy import continuous

    firmware = Firmware.implant(
        pump_model("peristaltic-20"), datetime(2024, 1, 1), serial="SN-1",
        concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(100.0),
    )  # fmt: skip
    report = StatusReport.from_status_dict(firmware.status().to_dict())
    assert report.serial == "SN-1" and report.program == continuous(100.0).to_dict()
    envelope = ResponseEnvelope(1, report)
    assert decode_response(encode_response(envelope)) == envelope
