"""The pump's allow-list: which programmer keys it answers, and what each may ask.

A key is paired with a :class:`Role`. This ``Role`` is the *pump's* notion: which requests a
paired device may send over the air (a clinician programmer may ask everything; a patient's
remote may only interrogate and ask for its own bolus). It is deliberately not the clinic's user
role (``itb.clinic``: who may log in and do what in the web app): a clinic user of any role acts
through the clinic's one clinician key, and a patient's remote has no clinic account at all.
Deny by default: a request type not listed for a role is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from itb.errors import InputError
from itb.telemetry.requests import Interrogate, PatientBolusRequest, Request
from itb.telemetry.session import KEY_BYTES
from itb.telemetry.validation import JSON

MAX_PAIRED_KEYS = 16  # bounds the trial decryption of a handshake


class LinkStateError(InputError):
    """A stored link state or allow-list entry that cannot be read; ``field`` names it."""


class Role(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"


# What each role may ask; the clinician may ask everything. Deny by default.
PATIENT_REQUESTS: frozenset[type[Request]] = frozenset({Interrogate, PatientBolusRequest})


def role_allows(role: Role, request: Request) -> bool:
    if role is Role.CLINICIAN:
        return True
    if role is Role.PATIENT:
        return type(request) in PATIENT_REQUESTS
    return False


def key_id_of(public_key: bytes) -> str:
    """A short, stable name for a public key in logs (first 8 bytes of its SHA-256, in hex)."""
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True, slots=True)
class PairedKey:
    """One entry of the pump's allow-list, installed at pairing."""

    public_key: bytes
    role: Role
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != KEY_BYTES:
            raise LinkStateError("public_key", f"expected {KEY_BYTES} bytes")
        if not isinstance(self.role, Role):
            try:
                object.__setattr__(self, "role", Role(self.role))
            except ValueError:
                reason = "expected clinician or patient"
                raise LinkStateError("role", reason, f"role={self.role!r}: {reason}") from None

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def to_dict(self) -> dict[str, JSON]:
        return {"public_key": self.public_key.hex(), "role": self.role.value, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PairedKey:
        try:
            public_hex, role, label = data["public_key"], data["role"], data.get("label", "")
        except KeyError as missing:
            name = str(missing.args[0])
            raise LinkStateError(name, "missing", f"paired key: missing {missing}") from None
        if not isinstance(public_hex, str) or not isinstance(label, str):
            reason = "public_key and label must be strings"
            raise LinkStateError("public_key", reason, f"paired key: {reason}") from None
        try:
            public_key = bytes.fromhex(public_hex)
        except ValueError:
            raise LinkStateError(
                "public_key", "not hex", "paired key: public_key is not hex"
            ) from None
        return cls(public_key, role, label)  # type: ignore[arg-type]  # checked in __post_init__
