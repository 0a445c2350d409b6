"""Framing and payload encoding, sans-I/O: bytes in, frames out, nothing else.

Frame layout (big-endian), 12 bytes of overhead::

    magic "IT" | version 1 | type 1 | body length 2 | header check 2 | body | CRC-32 4

The header check (low 16 bits of CRC-32 over the first 6 bytes) lets a receiver refuse a corrupt
length at once, before waiting for or allocating a body; the trailing CRC-32 covers header and
body. CRCs catch accidents only: integrity against an attacker is the AEAD's job (session.py).

:class:`FrameBuffer` commits only whole valid frames (as wsproto's buffer does): a bad header or a
failed CRC drops the bytes up to the next possible magic and raises :class:`FrameError`; the
caller counts it and keeps reading, and the good frames behind it still come out.

Payloads are canonical JSON (sorted keys, no spaces, ASCII, finite numbers): see
docs/telemetry.md for why. Decoding is strict and requires the canonical form, so a message has
exactly one encoding. Every error raised here is a :class:`CodecError`.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol, TypeVar

from itb.errors import InputError
from itb.telemetry.messages import (
    JSON,
    MessageError,
    RequestEnvelope,
    ResponseEnvelope,
    SessionGrant,
)

MAGIC = b"IT"
VERSION = 1
HEADER_BYTES = 8
TRAILER_BYTES = 4
MAX_BODY_BYTES = 16 * 1024  # a week of 24-step schedules fits with room; checked before allocation
MAX_FRAME_BYTES = HEADER_BYTES + MAX_BODY_BYTES + TRAILER_BYTES
_HEADER = struct.Struct(">2sBBHH")
_CRC = struct.Struct(">I")


class CodecError(InputError):
    """Malformed bytes. ``field`` names the part, ``reason`` says what was wrong."""


class FrameError(CodecError):
    """A frame that failed its header or CRC check; the buffer has already skipped past it."""


class FrameType(IntEnum):
    HANDSHAKE_INIT = 1  # programmer -> pump: Noise KK message 1
    HANDSHAKE_REPLY = 2  # pump -> programmer: Noise KK message 2
    SEALED = 3  # either way: 8-byte nonce + AEAD ciphertext
    REFUSAL = 4  # pump -> programmer, plaintext, empty: no session to encrypt with


@dataclass(frozen=True, slots=True)
class Frame:
    type: FrameType
    body: bytes


def _header_check(first_six: bytes) -> int:
    return zlib.crc32(first_six) & 0xFFFF


def encode_frame(frame_type: FrameType, body: bytes) -> bytes:
    if len(body) > MAX_BODY_BYTES:
        raise CodecError("body", f"{len(body)} bytes; at most {MAX_BODY_BYTES}")
    first_six = _HEADER.pack(MAGIC, VERSION, int(frame_type), len(body), 0)[:6]
    header = first_six + struct.pack(">H", _header_check(first_six))
    return header + body + _CRC.pack(zlib.crc32(header + body))


class FrameBuffer:
    """Receive buffer: feed bytes with :meth:`receive_data`, take frames with :meth:`next_frame`."""

    def __init__(self, max_buffered_bytes: int = 4 * MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max_buffered_bytes = max_buffered_bytes

    def receive_data(self, data: bytes) -> None:
        if len(self._buffer) + len(data) > self._max_buffered_bytes:
            # A peer flooding us faster than we read: drop the oldest bytes, keep the newest.
            self._buffer.clear()
            data = data[-self._max_buffered_bytes :]
        self._buffer += data

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def next_frame(self) -> Frame | None:
        """The next whole valid frame, None if more bytes are needed, or FrameError."""
        buffer = self._buffer
        if len(buffer) < HEADER_BYTES:
            if buffer and not MAGIC.startswith(bytes(buffer[:2])):
                self._skip("magic", "not a frame start")
            return None
        magic, version, type_code, length, check = _HEADER.unpack_from(buffer)
        if magic != MAGIC:
            self._skip("magic", f"expected {MAGIC!r}")
        if _header_check(bytes(buffer[:6])) != check:
            self._skip("header", "header check failed")
        if version != VERSION:
            self._skip("version", f"{version}; this build speaks version {VERSION}")
        if type_code not in FrameType._value2member_map_:
            self._skip("type", f"{type_code} is not a known frame type")
        if length > MAX_BODY_BYTES:
            self._skip("length", f"{length} bytes; at most {MAX_BODY_BYTES}")
        end = HEADER_BYTES + length + TRAILER_BYTES
        if len(buffer) < end:
            return None
        (crc,) = _CRC.unpack_from(buffer, HEADER_BYTES + length)
        if zlib.crc32(bytes(buffer[: HEADER_BYTES + length])) != crc:
            self._skip("crc", "frame CRC failed")
        body = bytes(buffer[HEADER_BYTES : HEADER_BYTES + length])
        del buffer[:end]
        return Frame(FrameType(type_code), body)

    def _skip(self, field: str, reason: str) -> None:
        """Drop at least one byte, up to the next place a frame could start; then raise."""
        next_start = self._buffer.find(MAGIC, 1)
        if next_start < 0:
            # Keep a trailing "I": it may be the first half of the next magic.
            keep_last = self._buffer[-1:] == MAGIC[:1] and len(self._buffer) > 1
            del self._buffer[: len(self._buffer) - 1 if keep_last else len(self._buffer)]
        else:
            del self._buffer[:next_start]
        raise FrameError(field, reason)


# Payloads ----------------------------------------------------------------------------------------
def encode_json(value: JSON) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _reject_constant(name: str) -> object:
    raise CodecError("payload", f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, JSON]]) -> dict[str, JSON]:
    result: dict[str, JSON] = {}
    for key, value in pairs:
        if key in result:
            raise CodecError("payload", f"key {key!r} appears twice")
        result[key] = value
    return result


def decode_json(data: bytes) -> JSON:
    """Strict canonical JSON; anything else is a CodecError."""
    if len(data) > MAX_BODY_BYTES:
        raise CodecError("payload", f"{len(data)} bytes; at most {MAX_BODY_BYTES}")
    try:
        text = data.decode("ascii")
        value: JSON = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant
        )
    except CodecError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: deeply nested brackets; ValueError: syntax, or too many int digits.
        raise CodecError("payload", "not canonical JSON") from None
    try:
        canonical = encode_json(value)
    except (ValueError, RecursionError):
        raise CodecError("payload", "not canonical JSON") from None
    if canonical != data:
        raise CodecError("payload", "not in canonical form (sorted keys, no spaces, ASCII)")
    return value


class _WireMessage(Protocol):
    def to_wire(self) -> dict[str, JSON]: ...


_M = TypeVar("_M", bound=_WireMessage)


def _decode_message(data: bytes, build: Callable[[object], _M], what: str) -> _M:
    value = decode_json(data)
    try:
        message = build(value)
    except MessageError as error:
        raise CodecError(f"{what}.{error.field}", error.reason) from None
    except (TypeError, ValueError, RecursionError, OverflowError) as error:
        # A malformed body can still trip a constructor in ways MessageError does not name.
        raise CodecError(what, f"malformed: {type(error).__name__}") from None
    if encode_json(message.to_wire()) != data:
        raise CodecError(what, "not in canonical form")
    return message


def encode_request(envelope: RequestEnvelope) -> bytes:
    return encode_json(envelope.to_wire())


def decode_request(data: bytes) -> RequestEnvelope:
    return _decode_message(data, RequestEnvelope.from_wire, "request")


def encode_response(envelope: ResponseEnvelope) -> bytes:
    return encode_json(envelope.to_wire())


def decode_response(data: bytes) -> ResponseEnvelope:
    return _decode_message(data, ResponseEnvelope.from_wire, "response")


def encode_grant(grant: SessionGrant) -> bytes:
    return encode_json(grant.to_wire())


def decode_grant(data: bytes) -> SessionGrant:
    return _decode_message(data, SessionGrant.from_wire, "session_grant")
