"""A telemetry client written from the protocol specification alone.

Theory of operation
-------------------
This module implements the programmer's side of docs/telemetry.md, section "Protocol
specification (normative)", and nothing else: it imports no code from ``itb`` and uses another
Noise implementation (``dissononce``) than the pump (``noiseprotocol``). If it can interrogate a
real pump and change a setting through prepare/commit, the specification is complete enough for
another team to implement; if a frame it builds differs from the pump's by one byte, the
transcript test (``test_transcript.py``) says where.

Layers, as in the specification: frames (header, body, CRC-32), the Noise KK handshake with the
pump's ``SessionGrant`` in message 2, sealed frames with explicit nonces, canonical JSON
envelopes numbered with command counters. :class:`ClientSession` is sans-I/O (bytes in, bytes
out); :class:`TcpClient` drives it over a blocking socket for the end-to-end test.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.public import PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.extras.dh.dangerous.dh_nogen import NoGenDH
from dissononce.hash.sha256 import SHA256Hash
from dissononce.processing.handshakepatterns.interactive.KK import KKHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

# Constants of the specification ("Frames", "Handshake", "Sealed frames").
PROLOGUE = b"OpenITB telemetry v1"
MAGIC = b"IT"
VERSION = 1
HANDSHAKE_INIT = 1
HANDSHAKE_REPLY = 2
SEALED = 3
REFUSAL = 4
FRAME_TYPES = (HANDSHAKE_INIT, HANDSHAKE_REPLY, SEALED, REFUSAL)
HEADER = struct.Struct(">2sBBHH")
MAX_BODY_BYTES = 16384
NONCE_BYTES = 8
TAG_BYTES = 16
KEY_BYTES = 32
MAX_NONCE = 2**63 - 1
KEY_FILE_HEADER = "# OpenITB key: "


class ProtocolError(Exception):
    """Bytes from the pump that the specification does not allow."""


class LinkRefusedError(ProtocolError):
    """The pump answered a plaintext REFUSAL frame: it could not authenticate what we sent."""


# Frames ------------------------------------------------------------------------------------------
def encode_frame(frame_type: int, body: bytes) -> bytes:
    """magic | version | type | length | header check | body | CRC-32, all big-endian."""
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    first_six = MAGIC + bytes([VERSION, frame_type]) + struct.pack(">H", len(body))
    header = first_six + struct.pack(">H", zlib.crc32(first_six) & 0xFFFF)
    return header + body + struct.pack(">I", zlib.crc32(header + body))


def take_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """The first whole frame of ``buffer`` (removed from it), None if more bytes are needed.

    A client may be strict: any malformed frame from the pump is a ProtocolError.
    """
    if len(buffer) < HEADER.size:
        return None
    magic, version, frame_type, length, check = HEADER.unpack_from(buffer)
    if magic != MAGIC or version != VERSION or frame_type not in FRAME_TYPES:
        raise ProtocolError(f"bad frame header {bytes(buffer[:8]).hex()}")
    if zlib.crc32(bytes(buffer[:6])) & 0xFFFF != check or length > MAX_BODY_BYTES:
        raise ProtocolError("header check failed")
    end = HEADER.size + length + 4
    if len(buffer) < end:
        return None
    (crc,) = struct.unpack_from(">I", buffer, HEADER.size + length)
    if zlib.crc32(bytes(buffer[: HEADER.size + length])) != crc:
        raise ProtocolError("frame CRC-32 failed")
    body = bytes(buffer[HEADER.size : HEADER.size + length])
    del buffer[:end]
    return frame_type, body


# Canonical JSON ----------------------------------------------------------------------------------
def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII with \\u escapes, shortest round-trip floats."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def parse_canonical(data: bytes) -> Any:
    value = json.loads(data.decode("ascii"))
    if canonical_json(value) != data:
        raise ProtocolError(f"not canonical JSON: {data[:80]!r}")
    return value


# Key files ---------------------------------------------------------------------------------------
def _pem_after_header(path: Path, owner_and_kind: str) -> bytes:
    first_line, _, pem = path.read_bytes().partition(b"\n")
    expected = f"{KEY_FILE_HEADER}{owner_and_kind} (X25519)"
    if first_line.decode("ascii").strip() != expected:
        raise ProtocolError(f"{path}: expected the header line {expected!r}")
    return pem


def read_private_key(path: Path, owner: str) -> bytes:
    key = load_pem_private_key(_pem_after_header(path, f"{owner} private"), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ProtocolError(f"{path}: not an X25519 private key")
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def read_public_key(path: Path, owner: str) -> bytes:
    key = load_pem_public_key(_pem_after_header(path, f"{owner} public"))
    if not isinstance(key, X25519PublicKey):
        raise ProtocolError(f"{path}: not an X25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_of(private_key: bytes) -> bytes:
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


# Noise KK with dissononce -----------------------------------------------------------------------
class Channel:
    """Transport phase: ``nonce (8 bytes, big-endian) || ChaCha20-Poly1305(k, nonce, "", data)``."""

    def __init__(self, send: Any, receive: Any, handshake_hash: bytes) -> None:
        self._send = send
        self._receive = receive
        self._next_send_nonce = 0
        self._lowest_acceptable_nonce = 0
        self.handshake_hash = handshake_hash

    def seal(self, plaintext: bytes) -> bytes:
        nonce = self._next_send_nonce
        self._next_send_nonce += 1
        self._send.set_nonce(nonce)
        return struct.pack(">Q", nonce) + bytes(self._send.encrypt_with_ad(b"", plaintext))

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise ProtocolError("sealed body too short")
        (nonce,) = struct.unpack_from(">Q", sealed)
        if not self._lowest_acceptable_nonce <= nonce < MAX_NONCE:
            raise ProtocolError(f"nonce {nonce} replayed or out of range")
        self._receive.set_nonce(nonce)
        try:
            plaintext = bytes(self._receive.decrypt_with_ad(b"", sealed[NONCE_BYTES:]))
        except Exception as error:  # dissononce's DecryptFailedException
            raise ProtocolError("sealed frame failed authentication") from error
        self._lowest_acceptable_nonce = nonce + 1
        return plaintext


class Initiator:
    """Noise_KK_25519_ChaChaPoly_SHA256, initiator side; ``ephemeral_private`` for vectors only."""

    def __init__(
        self, static_private: bytes, pump_public: bytes, ephemeral_private: bytes | None = None
    ) -> None:
        dh: Any = X25519DH()
        if ephemeral_private is not None:
            dh = NoGenDH(dh, PrivateKey(ephemeral_private))
        self._state = HandshakeState(
            SymmetricState(CipherState(ChaChaPolyCipher()), SHA256Hash()), dh
        )
        static = X25519DH().generate_keypair(PrivateKey(static_private))
        self._state.initialize(
            KKHandshakePattern(), True, PROLOGUE, s=static, rs=PublicKey(pump_public)
        )

    def first_message(self) -> bytes:
        message = bytearray()
        self._state.write_message(b"", message)  # message 1's payload is empty
        return bytes(message)

    def read_reply(self, message: bytes) -> tuple[bytes, Channel]:
        payload = bytearray()
        try:
            split = self._state.read_message(message, payload)
        except Exception as error:
            raise ProtocolError("handshake reply failed authentication") from error
        if split is None:
            raise ProtocolError("handshake did not finish after message 2")
        to_pump, from_pump = split
        handshake_hash = bytes(self._state.symmetricstate.get_handshake_hash())
        return bytes(payload), Channel(to_pump, from_pump, handshake_hash)


# The client session, sans-I/O -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answer:
    """One response envelope: ``counter`` echoes the request's, ``type`` names the response."""

    counter: int
    type: str
    body: dict[str, Any]


class ClientSession:
    """Handshake, then requests numbered from the pump's grant; bytes in, bytes out."""

    def __init__(
        self, static_private: bytes, pump_public: bytes, *, ephemeral_private: bytes | None = None
    ) -> None:
        self._initiator = Initiator(static_private, pump_public, ephemeral_private)
        self._channel: Channel | None = None
        self.next_counter = 0
        self._sent: dict[int, bytes] = {}

    @property
    def channel(self) -> Channel:
        if self._channel is None:
            raise ProtocolError("no session yet: read the handshake reply first")
        return self._channel

    def hello(self) -> bytes:
        """The HANDSHAKE_INIT frame (Noise KK message 1)."""
        return encode_frame(HANDSHAKE_INIT, self._initiator.first_message())

    def on_reply(self, frame_type: int, body: bytes) -> int:
        """Read the HANDSHAKE_REPLY; return the grant's ``next_counter``."""
        if frame_type == REFUSAL:
            raise LinkRefusedError("the pump refused the handshake")
        if frame_type != HANDSHAKE_REPLY:
            raise ProtocolError(f"expected HANDSHAKE_REPLY, got frame type {frame_type}")
        payload, self._channel = self._initiator.read_reply(body)
        grant = parse_canonical(payload)
        if not isinstance(grant, dict) or set(grant) != {"next_counter"}:
            raise ProtocolError(f"bad session grant {payload!r}")
        self.next_counter = int(grant["next_counter"])
        return self.next_counter

    def request(self, request_type: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """Seal one request envelope under the next counter; return the counter and the frame."""
        counter = self.next_counter
        self.next_counter += 1
        plaintext = canonical_json({"body": body, "counter": counter, "type": request_type})
        self._sent[counter] = plaintext
        return counter, encode_frame(SEALED, self.channel.seal(plaintext))

    def resend(self, counter: int) -> bytes:
        """The same envelope again under a fresh nonce (a command whose answer was lost)."""
        return encode_frame(SEALED, self.channel.seal(self._sent[counter]))

    def answer(self, frame_type: int, body: bytes) -> Answer:
        if frame_type == REFUSAL:
            raise LinkRefusedError("the pump could not authenticate our frame")
        if frame_type != SEALED:
            raise ProtocolError(f"expected a SEALED frame, got frame type {frame_type}")
        envelope = parse_canonical(self.channel.open(body))
        if not isinstance(envelope, dict) or set(envelope) != {"body", "counter", "type"}:
            raise ProtocolError(f"bad response envelope {envelope!r}")
        return Answer(int(envelope["counter"]), str(envelope["type"]), envelope["body"])


# Over TCP -----------------------------------------------------------------------------------------
class TcpClient:
    """A blocking client for the end-to-end test: one request in flight at a time."""

    def __init__(
        self, host: str, port: int, static_private: bytes, pump_public: bytes, timeout_s: float
    ) -> None:
        self._socket = socket.create_connection((host, port), timeout=timeout_s)
        self._buffer = bytearray()
        self.session = ClientSession(static_private, pump_public)
        self._socket.sendall(self.session.hello())
        self.granted_counter = self.session.on_reply(*self._next_frame())

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> TcpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _next_frame(self) -> tuple[int, bytes]:
        while True:
            frame = take_frame(self._buffer)
            if frame is not None:
                return frame
            data = self._socket.recv(65536)
            if not data:
                raise ProtocolError("the pump closed the link")
            self._buffer += data

    def send_raw(self, frame: bytes) -> None:
        self._socket.sendall(frame)

    def receive_answer(self) -> Answer:
        return self.session.answer(*self._next_frame())

    def call(self, request_type: str, body: dict[str, Any]) -> Answer:
        counter, frame = self.session.request(request_type, body)
        self.send_raw(frame)
        answer = self.receive_answer()
        if answer.counter != counter:
            raise ProtocolError(f"answer for counter {answer.counter}, expected {counter}")
        return answer

    def interrogate(self) -> dict[str, Any]:
        answer = self.call("interrogate", {})
        if answer.type != "status":
            raise ProtocolError(f"interrogate answered {answer.type}")
        return answer.body

    def prepare_and_commit(
        self, command_type: str, command_body: dict[str, Any]
    ) -> tuple[Answer, Answer]:
        """Two steps: prepare (review the summary), then commit with the challenge."""
        request_id = os.urandom(16).hex()
        body = {**command_body, "request_id": request_id}
        prepared = self.call("prepare", {"command": {"body": body, "type": command_type}})
        if prepared.type != "prepared":
            return prepared, prepared
        challenge = prepared.body["challenge"]
        committed = self.call("commit", {"challenge": challenge, "request_id": request_id})
        return prepared, committed
