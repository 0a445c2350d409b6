"""Framing: whole valid frames come out, anything else is a CodecError and skipped."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itb.telemetry.codec import (
    HEADER_BYTES,
    MAGIC,
    MAX_BODY_BYTES,
    CodecError,
    Frame,
    FrameBuffer,
    FrameError,
    FrameType,
    decode_grant,
    decode_json,
    decode_request,
    decode_response,
    encode_frame,
)
from itb.telemetry.messages import RequestEnvelope, SetLowReservoirAlarm

frame_types = st.sampled_from(FrameType)
bodies = st.binary(max_size=300)


def drain(buffer: FrameBuffer) -> tuple[list[Frame], int]:
    """Every frame the buffer yields, and how many errors it raised on the way."""
    frames: list[Frame] = []
    errors = 0
    while True:
        try:
            frame = buffer.next_frame()
        except FrameError:
            errors += 1
            continue
        if frame is None:
            return frames, errors
        frames.append(frame)


@given(st.lists(st.tuples(frame_types, bodies), max_size=5), st.integers(1, 50))
def test_frames_come_out_whole_whatever_the_chunking(
    sent: list[tuple[FrameType, bytes]], chunk_bytes: int
) -> None:
    stream = b"".join(encode_frame(t, b) for t, b in sent)
    buffer = FrameBuffer()
    received: list[Frame] = []
    for i in range(0, len(stream), chunk_bytes):
        buffer.receive_data(stream[i : i + chunk_bytes])
        frames, errors = drain(buffer)
        assert errors == 0
        received += frames
    assert received == [Frame(t, b) for t, b in sent]
    assert buffer.buffered_bytes == 0


@given(frame_types, bodies, frame_types, bodies, st.data())
def test_a_flipped_bit_loses_only_its_own_frame(
    type1: FrameType, body1: bytes, type2: FrameType, body2: bytes, data: st.DataObject
) -> None:
    first = bytearray(encode_frame(type1, body1))
    bit = data.draw(st.integers(0, len(first) * 8 - 1))
    first[bit // 8] ^= 1 << (bit % 8)
    buffer = FrameBuffer()
    buffer.receive_data(bytes(first) + encode_frame(type2, body2) + encode_frame(type2, body2))
    frames, errors = drain(buffer)
    assert errors >= 1
    # The corrupted frame never comes out; the frames behind it do.
    assert Frame(type2, body2) in frames
    assert all(f == Frame(type2, body2) for f in frames)


def test_an_oversized_length_is_refused_before_the_body_arrives() -> None:
    first_six = struct.pack(">2sBBH", MAGIC, 1, int(FrameType.SEALED), MAX_BODY_BYTES + 1)
    import zlib

    header = first_six + struct.pack(">H", zlib.crc32(first_six) & 0xFFFF)
    buffer = FrameBuffer()
    buffer.receive_data(header)
    with pytest.raises(FrameError, match="length"):
        buffer.next_frame()
    assert buffer.buffered_bytes < HEADER_BYTES


def test_encoding_refuses_a_body_over_the_maximum() -> None:
    with pytest.raises(CodecError, match="at most"):
        encode_frame(FrameType.SEALED, bytes(MAX_BODY_BYTES + 1))


@given(st.binary(max_size=2000))
def test_fuzz_frame_buffer_raises_only_codec_errors(data: bytes) -> None:
    buffer = FrameBuffer()
    buffer.receive_data(data)
    drain(buffer)  # any other exception fails the test
    assert buffer.buffered_bytes <= len(data)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


def _mutations() -> st.SearchStrategy[bytes]:
    good = RequestEnvelope(7, SetLowReservoirAlarm("ab" * 16, 2.5))
    from itb.telemetry.codec import encode_request

    base = encode_request(good)
    return st.one_of(
        st.binary(max_size=500),
        st.text(max_size=200).map(lambda s: s.encode("utf-8")),
        json_like.map(lambda v: repr(v).encode()),
        st.tuples(st.integers(0, len(base) - 1), st.binary(min_size=1, max_size=4)).map(
            lambda m: base[: m[0]] + m[1] + base[m[0] + len(m[1]) :]
        ),
        st.just(b"[" * 5000 + b"]" * 5000),
        st.just(b"1" * 5000),
    )


@given(_mutations())
def test_fuzz_payload_decoders_raise_only_codec_errors(data: bytes) -> None:
    for decode in (decode_json, decode_request, decode_response, decode_grant):
        with contextlib.suppress(CodecError):
            decode(data)
