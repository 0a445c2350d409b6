"""The Noise KK wrapper: official vectors, authentication, and failures that change nothing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.link.keys import generate_private_key, public_key_of
from itb.telemetry.session import (
    InitiatorHandshake,
    SecureChannel,
    SessionError,
    respond,
)

# Noise_KK_25519_ChaChaPoly_SHA256 from the cacophony vectors (as shipped in the snow Noise
# implementation, tests/vectors/cacophony.txt).
KK = {
    "prologue": "4a6f686e2047616c74",
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "init_remote_static": "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "resp_remote_static": "6bc3822a2aa7f4e6981d6538692b3cdf3e6df9eea6ed269eb41d93c22757b75a",
    "handshake_hash": "24c6b51ecb76277140ca018b5985bc9f03de321dae2d34dcae433dafef0131d9",
    "messages": [
        (
            "4c756477696720766f6e204d69736573",
            "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79440177015efc1fe7a37c629af7120a96274e6ab7afcc9261901d0e09ae32a5bb96",
        ),
        (
            "4d757272617920526f746862617264",
            "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843b274d3429adc47ca093ba63ef90f8da89fda108db471dccfa4894aa7b00003",
        ),
        ("462e20412e20486179656b", "966b05bc69ec01b8454d3160a214e6f24a3d884eb31ec2408af63f"),
        ("4361726c204d656e676572", "0ad887fba4f611bbb4afe44ba3556b8164332ca7d5934634d63d80"),
        (
            "4a65616e2d426170746973746520536179",
            "012b28ae646ae7830e2c5472cb023eab071c1db3d8413ec69b513b83832f974c2d",
        ),
        (
            "457567656e2042f6686d20766f6e2042617765726b",
            "bb3e6a48160d9c5971d37f975727294e0d868342db31832e54d07191ab0ca3c3703b5ed3d9",
        ),
    ],
}


def h(name: str) -> bytes:
    return bytes.fromhex(str(KK[name]))


def test_the_wrapper_reproduces_the_cacophony_kk_vector_byte_for_byte() -> None:
    messages = [(bytes.fromhex(p), bytes.fromhex(c)) for p, c in KK["messages"]]
    initiator = InitiatorHandshake(
        h("init_static"), h("init_remote_static"), prologue=h("prologue"),
        ephemeral_private=h("init_ephemeral"),
    )  # fmt: skip
    assert initiator.first_message(messages[0][0]) == messages[0][1]
    # The pump tries every paired key: put a wrong one first.
    pending = respond(
        h("resp_static"), [public_key_of(generate_private_key()), h("resp_remote_static")],
        messages[0][1], prologue=h("prologue"), ephemeral_private=h("resp_ephemeral"),
    )  # fmt: skip
    assert pending.initiator_public == h("resp_remote_static")
    assert pending.payload == messages[0][0]
    reply, responder = pending.reply(messages[1][0])
    assert reply == messages[1][1]
    payload, initiator_channel = initiator.read_reply(reply)
    assert payload == messages[1][0]
    assert initiator_channel.handshake_hash == responder.handshake_hash == h("handshake_hash")
    # Transport messages alternate, initiator first; our frames prefix the nonce explicitly.
    for i, (plaintext, ciphertext) in enumerate(messages[2:]):
        sender, receiver = (
            (initiator_channel, responder) if i % 2 == 0 else (responder, initiator_channel)
        )
        sealed = sender.seal(plaintext)
        assert sealed[8:] == ciphertext
        assert int.from_bytes(sealed[:8], "big") == i // 2
        assert receiver.open(sealed) == plaintext


def open_pair() -> tuple[SecureChannel, SecureChannel]:
    programmer, pump = generate_private_key(), generate_private_key()
    initiator = InitiatorHandshake(programmer, public_key_of(pump))
    pending = respond(pump, [public_key_of(programmer)], initiator.first_message())
    reply, pump_channel = pending.reply(b"")
    return initiator.read_reply(reply)[1], pump_channel


def test_a_key_that_is_not_paired_cannot_open_a_session() -> None:
    pump = generate_private_key()
    paired, stranger = generate_private_key(), generate_private_key()
    first = InitiatorHandshake(stranger, public_key_of(pump)).first_message()
    with pytest.raises(SessionError, match="not paired"):
        respond(pump, [public_key_of(paired)], first)


def test_a_programmer_talking_to_the_wrong_pump_refuses_its_reply() -> None:
    programmer, pump, impostor = (generate_private_key() for _ in range(3))
    initiator = InitiatorHandshake(programmer, public_key_of(pump))
    first = initiator.first_message()
    # The impostor knows the programmer's public key but not the pump's private key.
    with pytest.raises(SessionError):
        respond(impostor, [public_key_of(programmer)], first)
    forged = InitiatorHandshake(impostor, public_key_of(programmer)).first_message()
    with pytest.raises(SessionError):
        initiator.read_reply(forged)


def test_a_forged_frame_does_not_advance_the_receive_nonce() -> None:
    sender, receiver = open_pair()
    genuine = sender.seal(b"program 120 ug/day")
    forged = bytearray(genuine)
    forged[-1] ^= 0x01
    with pytest.raises(SessionError):
        receiver.open(bytes(forged))
    assert receiver.lowest_acceptable_nonce == 0
    # The genuine frame with the same nonce is still accepted: no desynchronisation.
    assert receiver.open(genuine) == b"program 120 ug/day"


def test_replayed_and_reordered_frames_are_refused_but_gaps_are_not() -> None:
    sender, receiver = open_pair()
    first, second, third = (sender.seal(bytes([i])) for i in range(3))
    assert receiver.open(second) == b"\x01"  # the first was lost: fine
    with pytest.raises(SessionError, match="already used"):
        receiver.open(first)
    with pytest.raises(SessionError, match="already used"):
        receiver.open(second)
    assert receiver.open(third) == b"\x02"


@given(st.binary(max_size=200))
def test_fuzz_session_open_raises_only_session_errors_and_changes_nothing(data: bytes) -> None:
    sender, receiver = open_pair()
    genuine = sender.seal(b"hello")
    try:
        receiver.open(data)
    except SessionError:
        assert receiver.lowest_acceptable_nonce == 0
        assert receiver.open(genuine) == b"hello"


@given(st.binary(max_size=200))
def test_fuzz_handshake_raises_only_session_errors(data: bytes) -> None:
    with contextlib.suppress(SessionError):
        respond(generate_private_key(), [public_key_of(generate_private_key())], data)
