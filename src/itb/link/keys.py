"""X25519 key pairs and their files: programmer.key and .pub, pump.key and .pub.

A key file is standard PEM (PKCS#8 for a private key, SubjectPublicKeyInfo for a public one, so
``openssl pkey`` reads it) after one header line naming whose key it is::

    # OpenITB key: programmer private (X25519)

The header lets a loader refuse the wrong file (a pump key given as a programmer key, a public
key given as a private one) with a clear message instead of a failed handshake later. Private key
files are created with mode 0600 and never overwritten; a private key file that others can read
is refused, as ssh does.
"""

from __future__ import annotations

import os
import stat
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from itb.errors import InputError
from itb.telemetry import session

KEY_BYTES = session.KEY_BYTES
MAX_KEY_FILE_BYTES = 4096  # a key file is about 200 bytes; refuse to read anything large
_HEADER_PREFIX = "# OpenITB key: "


class KeyFileError(InputError):
    """A key that cannot be used: ``field`` says which (``private_key``, ``public_key``), the
    message names the file and what is wrong."""


def _file_error(path: Path, kind: str, reason: str) -> KeyFileError:
    return KeyFileError(f"{kind}_key", reason, f"{path}: {reason}")


class KeyOwner(StrEnum):
    PROGRAMMER = "programmer"
    PUMP = "pump"


def generate_private_key() -> bytes:
    """A fresh X25519 private key (32 bytes; the OS random source, inside ``cryptography``)."""
    return X25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )


def public_key_of(private_key: bytes) -> bytes:
    if len(private_key) != KEY_BYTES:
        reason = f"expected {KEY_BYTES} bytes, got {len(private_key)}"
        raise KeyFileError("private_key", reason, f"private key: {reason}")
    return session.public_key_of(private_key)


def _header(owner: KeyOwner, kind: str) -> str:
    return f"{_HEADER_PREFIX}{owner.value} {kind} (X25519)\n"


def write_private_key(path: Path, private_key: bytes, owner: KeyOwner) -> None:
    """Write ``path`` with mode 0600; refuse to overwrite an existing file."""
    public_key_of(private_key)  # validates the length
    pem = X25519PrivateKey.from_private_bytes(private_key).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    text = _header(owner, "private").encode("ascii") + pem
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _file_error(path, "private", "already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "wb") as out:
        out.write(text)
    os.chmod(path, 0o600)  # the umask may have narrowed it further, never widened; be explicit


def write_public_key(path: Path, public_key: bytes, owner: KeyOwner) -> None:
    if len(public_key) != KEY_BYTES:
        reason = f"expected {KEY_BYTES} bytes, got {len(public_key)}"
        raise KeyFileError("public_key", reason, f"public key: {reason}")
    pem = X25519PublicKey.from_public_bytes(public_key).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    Path(path).write_bytes(_header(owner, "public").encode("ascii") + pem)


def write_keypair(directory: Path, owner: KeyOwner) -> tuple[Path, Path]:
    """Generate a pair and write ``<owner>.key`` (0600) and ``<owner>.pub`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    private_key = generate_private_key()
    private_path = directory / f"{owner.value}.key"
    public_path = directory / f"{owner.value}.pub"
    write_private_key(private_path, private_key, owner)
    write_public_key(public_path, public_key_of(private_key), owner)
    return private_path, public_path


def _read(path: Path, owner: KeyOwner, kind: str) -> bytes:
    try:
        with open(path, "rb") as source:
            data = source.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as error:
        raise _file_error(path, kind, f"cannot read: {error.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise _file_error(path, kind, f"{len(data)}+ bytes; a key file is under 1 KB")
    first_line, _, rest = data.partition(b"\n")
    try:
        header = first_line.decode("ascii")
    except UnicodeDecodeError:
        header = ""
    if not header.startswith(_HEADER_PREFIX):
        raise _file_error(
            path, kind, f"not an OpenITB key file (no '{_HEADER_PREFIX.strip()}' line)"
        )
    expected = _header(owner, kind).strip()
    if header.strip() != expected:
        found = header[len(_HEADER_PREFIX) :].replace("(X25519)", "").strip()
        raise _file_error(
            path, kind, f"holds a {found} key; expected a {owner.value} {kind} key (X25519)"
        )
    return rest


def load_private_key(path: Path, owner: KeyOwner) -> bytes:
    """The 32-byte private key in ``path``; KeyFileError if it is corrupt, the wrong kind of key,
    or readable by others."""
    pem = _read(path, owner, "private")
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise _file_error(
            path,
            "private",
            f"permissions {stat.filemode(mode)} let others read a private key; "
            f"run: chmod 600 {path}",
        )
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise _file_error(
            path, "private", "corrupted private key (the PEM block does not parse)"
        ) from None
    if not isinstance(key, X25519PrivateKey):
        raise _file_error(
            path, "private", f"a {type(key).__name__}, expected an X25519 private key"
        )
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def load_public_key(path: Path, owner: KeyOwner) -> bytes:
    """The 32-byte public key in ``path``; KeyFileError if it is corrupt or the wrong kind."""
    pem = _read(path, owner, "public")
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise _file_error(
            path, "public", "corrupted public key (the PEM block does not parse)"
        ) from None
    if not isinstance(key, X25519PublicKey):
        raise _file_error(path, "public", f"a {type(key).__name__}, expected an X25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
