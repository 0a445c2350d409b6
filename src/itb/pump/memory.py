"""Non-volatile memory: the settings-and-state image in two banks, safe against power loss.

Each write goes to the bank that does not hold the newest valid image, with a generation
number one higher. A bank is ``MAGIC | version | generation | length | payload | CRC-32``; a
write cut at any byte leaves that bank failing its CRC (or its length check), so a reader
finds the other bank intact: either the old or the new state, never a mix. When both banks
fail, the reader says so and the firmware goes to its safe state (security.md).

The same format keeps the pump's allow-list in its own two copies (``itb.pumpd.allowlist``), so
losing the settings never loses the pairing.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"ITBM"
VERSION = 1
_HEADER = struct.Struct(">4sHQI")  # magic, version, generation, payload length
_CRC = struct.Struct(">I")
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class MemoryCorrupted(Exception):
    """Neither bank holds a valid image."""


def encode_bank(generation: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    body = _HEADER.pack(MAGIC, VERSION, generation, len(payload)) + payload
    return body + _CRC.pack(zlib.crc32(body))


def decode_bank(bank: bytes) -> tuple[int, bytes] | None:
    """(generation, payload) of a valid bank, or None."""
    if len(bank) < _HEADER.size + _CRC.size:
        return None
    magic, version, generation, length = _HEADER.unpack_from(bank)
    if magic != MAGIC or version != VERSION or length > MAX_PAYLOAD_BYTES:
        return None
    end = _HEADER.size + length
    if len(bank) < end + _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(bank, end)
    if zlib.crc32(bank[:end]) != crc:
        return None
    return generation, bytes(bank[_HEADER.size : end])


@dataclass
class DualBankMemory:
    """Two banks of bytes. Pure: the adapter that keeps them in files lives outside the core."""

    banks: list[bytearray] = field(default_factory=lambda: [bytearray(), bytearray()])

    def newest(self) -> tuple[int, int, bytes] | None:
        """(bank index, generation, payload) of the newest valid bank."""
        best: tuple[int, int, bytes] | None = None
        for index, bank in enumerate(self.banks):
            decoded = decode_bank(bytes(bank))
            if decoded is not None and (best is None or decoded[0] > best[1]):
                best = (index, decoded[0], decoded[1])
        return best

    def read(self) -> bytes:
        newest = self.newest()
        if newest is None:
            raise MemoryCorrupted("both memory banks fail their check")
        return newest[2]

    def bad_banks(self) -> list[int]:
        return [i for i, bank in enumerate(self.banks) if decode_bank(bytes(bank)) is None]

    def plan_write(self, payload: bytes, at_least: int = 1) -> tuple[int, bytes]:
        """The bank index to write and the bytes to put there: the next generation, and at
        least ``at_least`` (after both banks were lost, the log's journal may have gone
        further than any bank left: the new image must come after its records)."""
        newest = self.newest()
        if newest is None:
            return 0, encode_bank(max(1, at_least), payload)
        index, generation, _ = newest
        return 1 - index, encode_bank(max(generation + 1, at_least), payload)

    def write(self, payload: bytes, power_fails_after_bytes: int | None = None) -> None:
        """Write ``payload``; with ``power_fails_after_bytes`` only that prefix lands (a test of
        power loss: the rest of the bank keeps its old bytes)."""
        index, image = self.plan_write(payload)
        old = self.banks[index]
        if power_fails_after_bytes is None:
            self.banks[index] = bytearray(image)
            return
        cut = max(0, min(power_fails_after_bytes, len(image)))
        merged = bytearray(image[:cut]) + old[cut:]
        self.banks[index] = merged
