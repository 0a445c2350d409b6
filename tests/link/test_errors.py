"""Every bad-input error of the link and the wire is an InputError naming its field."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from itb.errors import InputError
from itb.link.client import AcknowledgementRequiredError, AddressError, PumpAddress
from itb.link.keys import KeyFileError, KeyOwner, load_public_key, write_keypair
from itb.link.transport import Impairment
from itb.programmer.refill import check_withdrawn_volume
from itb.pump.hardware import pump_model
from itb.telemetry.codec import CodecError, FrameBuffer, FrameError, decode_request
from itb.telemetry.endpoint import LinkStateError, PairedKey
from itb.telemetry.link_state import LinkState


def test_a_bad_address_names_the_setting(tmp_path: Path) -> None:
    key, _ = write_keypair(tmp_path / "p", KeyOwner.PROGRAMMER)
    _, pump_pub = write_keypair(tmp_path / "q", KeyOwner.PUMP)
    with pytest.raises(AddressError) as caught:
        PumpAddress.from_files("nowhere", key, pump_pub)
    assert isinstance(caught.value, InputError) and caught.value.field == "pump"
    with pytest.raises(AddressError) as caught:
        PumpAddress.from_files("127.0.0.1:1", key, pump_pub, attempts=99)
    assert caught.value.field == "attempts"


def test_a_wrong_key_file_names_which_key(tmp_path: Path) -> None:
    key, key_pub = write_keypair(tmp_path, KeyOwner.PROGRAMMER)
    with pytest.raises(KeyFileError) as caught:
        load_public_key(key_pub, KeyOwner.PUMP)
    assert isinstance(caught.value, InputError) and caught.value.field == "public_key"
    assert str(caught.value).startswith(str(key_pub))  # the message still names the file
    with pytest.raises(KeyFileError) as caught:
        PumpAddress.from_files("127.0.0.1:1", key, key_pub)  # a programmer key as the pump's
    assert caught.value.field == "pump_key_file"
    assert "expected a pump public key" in str(caught.value)


def test_codec_frame_and_link_state_errors_name_their_field() -> None:
    with pytest.raises(CodecError) as caught:
        decode_request(b"{}")
    assert isinstance(caught.value, InputError) and caught.value.field.startswith("request")
    frames = FrameBuffer()
    frames.receive_data(b"XXXXXXXXXXXX")
    with pytest.raises(FrameError) as frame_error:
        frames.next_frame()
    assert isinstance(frame_error.value, InputError) and frame_error.value.field == "magic"
    with pytest.raises(LinkStateError) as state_error:
        LinkState.from_dict({"format": 1, "counter_ceiling": -1})
    assert state_error.value.field == "counter_ceiling"
    assert str(state_error.value) == "link state: counter_ceiling outside 0 to 9007199254740991"
    with pytest.raises(LinkStateError) as key_error:
        PairedKey(b"short", "clinician")  # type: ignore[arg-type]  # a role read from a file
    assert key_error.value.field == "public_key"
    with pytest.raises(InputError) as impairment:
        Impairment(loss=2.0)
    assert impairment.value.field == "loss"


def test_an_acknowledgement_error_names_the_withdrawn_volume_and_pickles() -> None:
    check = check_withdrawn_volume(pump_model("peristaltic-20"), 10.0, 2.0, 0.0)
    error = AcknowledgementRequiredError(check)
    assert isinstance(error, InputError) and error.field == "withdrawn_ml"
    assert str(error).startswith("withdrawn_ml: discrepancy needs an acknowledgement: ")
    again = pickle.loads(pickle.dumps(error))
    assert again.field == "withdrawn_ml" and again.check == check and str(again) == str(error)
