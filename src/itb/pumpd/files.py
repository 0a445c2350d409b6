"""Files the pump process keeps: atomic writes, canonical JSON, and copies of corrupt images.

Every file is written to a temporary name, fsynced, renamed over the old one (``os.replace``)
and the directory fsynced, so a SIGKILL (or power cut) at any moment leaves the old file or the
new one, never a mix. The event log's journal is the one file appended to instead
(:func:`append_durable`): its records carry their own CRC, so a cut append leaves a torn last
record that the reader drops and :func:`truncate_durable` cuts off before the next append.

A memory image that fails its check is evidence (of a flash fault, a bug, an attack): before
anything overwrites it, :func:`keep_corrupt_copy` puts its bytes aside as
``<name>.corrupt-<n>``. Keeping is idempotent by content, so the same corrupt bytes found twice
(at start, then at the first write) are kept once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"
CORRUPT_INFIX = ".corrupt-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old content or the new, never a mix."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def append_durable(path: Path, data: bytes) -> int:
    """Append ``data`` to ``path`` (created if missing) and fsync it before returning; the new
    size. A power cut leaves a prefix of ``data`` at the end, which the reader drops."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size == len(data):  # a new file: its name must survive a power cut too
        fsync_dir(path.parent)
    return size


def truncate_durable(path: Path, length: int) -> None:
    """Cut ``path`` to its first ``length`` bytes (what a reader found valid), fsynced."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def corrupt_copies(path: Path) -> list[Path]:
    """The copies kept of ``path``'s corrupt images, oldest first."""
    copies = []
    for candidate in path.parent.glob(path.name + CORRUPT_INFIX + "*"):
        number = candidate.name.rsplit(CORRUPT_INFIX, 1)[1]
        if number.isdigit():
            copies.append((int(number), candidate))
    return [copy for _, copy in sorted(copies)]


def keep_corrupt_copy(path: Path, data: bytes) -> Path:
    """Put ``data`` (the corrupt bytes found in ``path``) aside before ``path`` is overwritten.
    Returns the copy: an existing one with the same bytes, else ``<name>.corrupt-<n+1>``."""
    existing = corrupt_copies(path)
    for copy in existing:
        try:
            if copy.read_bytes() == data:
                return copy
        except OSError:
            continue
    number = int(existing[-1].name.rsplit(CORRUPT_INFIX, 1)[1]) + 1 if existing else 1
    copy = path.with_name(f"{path.name}{CORRUPT_INFIX}{number}")
    atomic_write(copy, data)
    return copy


class CorruptKeeper:
    """Keeps a copy of every corrupt image before it is overwritten, and remembers the copies
    (the start-up warning names them)."""

    def __init__(self) -> None:
        self.kept: list[Path] = []

    def keep(self, path: Path, data: bytes) -> Path:
        copy = keep_corrupt_copy(path, data)
        if copy not in self.kept:
            self.kept.append(copy)
        return copy
