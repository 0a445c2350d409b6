"""Authenticated encryption for one link session: Noise_KK_25519_ChaChaPoly_SHA256, sans-I/O.

KK: both static keys are known in advance (installed at pairing), so the two handshake messages
authenticate both ends and the ephemeral keys give forward secrecy; every later frame is
ChaCha20-Poly1305 AEAD. The handshake itself is the ``noiseprotocol`` package's; this module only
wraps it:

* The pump may have several paired programmers, and KK needs the initiator's static key before
  reading message 1. :func:`respond` tries each paired key in turn (trial decryption: message 1's
  payload tag only verifies under the right one), so identities never travel in the clear.
* Sealed frames carry their nonce explicitly (8 bytes, strictly increasing, gaps allowed) as the
  Noise spec suggests for lossy links: a lost frame leaves the next one readable.
* A frame that fails to decrypt changes nothing: the receive nonce is put back and the highest
  accepted nonce is not moved. (noiseprotocol 0.3.1 already leaves ``n`` alone on a failed tag;
  we restore it anyway, because we set it ourselves for explicit nonces.)

Everything that can go wrong raises :class:`SessionError`, whatever the library raised inside.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from noise.connection import Keypair, NoiseConnection

from itb.telemetry.codec import MAX_BODY_BYTES

PROTOCOL_NAME = b"Noise_KK_25519_ChaChaPoly_SHA256"
PROLOGUE = b"OpenITB telemetry v1"  # bound into the handshake hash: a different protocol fails
KEY_BYTES = 32
TAG_BYTES = 16
NONCE_BYTES = 8
MAX_NONCE = 2**63 - 1  # far below Noise's reserved 2**64 - 1
MAX_PLAINTEXT_BYTES = MAX_BODY_BYTES - NONCE_BYTES - TAG_BYTES
MAX_HANDSHAKE_PAYLOAD_BYTES = MAX_BODY_BYTES - KEY_BYTES - TAG_BYTES
_NONCE = struct.Struct(">Q")


class SessionError(Exception):
    """A handshake or frame that failed authentication, or a misuse of the session."""


def public_key_of(private_key: bytes) -> bytes:
    """The X25519 public key (32 bytes) of a 32-byte private key."""
    _check_key(private_key, "private_key")
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_key(key: bytes, name: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise SessionError(f"{name}: expected {KEY_BYTES} bytes")


def _connection(
    initiator: bool,
    static_private: bytes,
    remote_public: bytes,
    prologue: bytes,
    ephemeral_private: bytes | None,
) -> NoiseConnection:
    _check_key(static_private, "static_private")
    _check_key(remote_public, "remote_public")
    conn = NoiseConnection.from_name(PROTOCOL_NAME)
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_prologue(prologue)
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
    conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_public)
    if ephemeral_private is not None:  # fixed ephemeral keys: test vectors only
        _check_key(ephemeral_private, "ephemeral_private")
        conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral_private)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noiseprotocol warns when an ephemeral key is preset
        conn.start_handshake()
    return conn


class SecureChannel:
    """The transport phase: seal and open frames with explicit, strictly increasing nonces."""

    def __init__(self, conn: NoiseConnection) -> None:
        self._conn = conn
        self._send_cipher = conn.noise_protocol.cipher_state_encrypt
        self._receive_cipher = conn.noise_protocol.cipher_state_decrypt
        self._lowest_acceptable_nonce = 0
        self.handshake_hash: bytes = bytes(conn.get_handshake_hash())

    def seal(self, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise SessionError(f"plaintext: {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES}")
        nonce = int(self._send_cipher.n)
        if nonce >= MAX_NONCE:
            raise SessionError("nonce space exhausted: start a new session")
        return _NONCE.pack(nonce) + bytes(self._conn.encrypt(plaintext))

    def open(self, sealed: bytes) -> bytes:
        """Decrypt one sealed frame; on any failure nothing changes and SessionError is raised."""
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise SessionError("sealed frame too short")
        (nonce,) = _NONCE.unpack_from(sealed)
        if nonce < self._lowest_acceptable_nonce:
            raise SessionError("nonce already used (replayed or reordered frame)")
        if nonce >= MAX_NONCE:
            raise SessionError("nonce out of range")
        saved = self._receive_cipher.n
        self._receive_cipher.set_nonce(nonce)
        try:
            plaintext = bytes(self._conn.decrypt(bytes(sealed[NONCE_BYTES:])))
        except Exception:  # the library's own error types vary; all mean "not authentic"
            self._receive_cipher.set_nonce(saved)
            raise SessionError("frame failed authentication") from None
        self._lowest_acceptable_nonce = nonce + 1
        return plaintext

    @property
    def lowest_acceptable_nonce(self) -> int:
        return self._lowest_acceptable_nonce


class InitiatorHandshake:
    """The programmer's side: write message 1, read message 2, get a :class:`SecureChannel`."""

    def __init__(
        self,
        static_private: bytes,
        responder_public: bytes,
        *,
        prologue: bytes = PROLOGUE,
        ephemeral_private: bytes | None = None,
    ) -> None:
        self._conn = _connection(
            True, static_private, responder_public, prologue, ephemeral_private
        )
        self._written = False

    def first_message(self, payload: bytes = b"") -> bytes:
        if self._written:
            raise SessionError("message 1 already written: start a new handshake to retry")
        if len(payload) > MAX_HANDSHAKE_PAYLOAD_BYTES:
            raise SessionError("handshake payload too long")
        self._written = True
        return bytes(self._conn.write_message(payload))

    def read_reply(self, message: bytes) -> tuple[bytes, SecureChannel]:
        """Payload of message 2 and the channel; SessionError if it is not the pump's."""
        if not self._written:
            raise SessionError("write message 1 first")
        try:
            payload = bytes(self._conn.read_message(message))
        except Exception:  # any library failure means the reply is not authentic
            raise SessionError("handshake reply failed authentication") from None
        if not self._conn.handshake_finished:
            raise SessionError("handshake did not finish")
        return payload, SecureChannel(self._conn)


@dataclass(slots=True)
class PendingResponse:
    """Message 1 authenticated from ``initiator_public``; write the reply to open the channel."""

    initiator_public: bytes
    payload: bytes
    _conn: NoiseConnection

    def reply(self, payload: bytes = b"") -> tuple[bytes, SecureChannel]:
        if len(payload) > MAX_HANDSHAKE_PAYLOAD_BYTES:
            raise SessionError("handshake payload too long")
        try:
            message = bytes(self._conn.write_message(payload))
        except Exception:  # e.g. a reply already written
            raise SessionError("cannot write the handshake reply") from None
        return message, SecureChannel(self._conn)


def respond(
    static_private: bytes,
    initiator_candidates: Sequence[bytes],
    message: bytes,
    *,
    prologue: bytes = PROLOGUE,
    ephemeral_private: bytes | None = None,
) -> PendingResponse:
    """Authenticate message 1 against each paired initiator key; SessionError if none fits."""
    if not KEY_BYTES + TAG_BYTES <= len(message) <= MAX_BODY_BYTES:
        raise SessionError("handshake message has the wrong length")
    for candidate in initiator_candidates:
        conn = _connection(False, static_private, candidate, prologue, ephemeral_private)
        try:
            payload = bytes(conn.read_message(message))
        except Exception:  # wrong key or forged message: try the next key
            continue
        return PendingResponse(candidate, payload, conn)
    raise SessionError("handshake from a key that is not paired, or altered in transit")
