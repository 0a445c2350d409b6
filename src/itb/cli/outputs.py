"""Output paths checked before the work starts: an unwritable ``--out`` found only after a
whole cohort simulation wastes the run (issue 12). One line naming the option, exit 2."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from itb.errors import InputError


def check_writable_dir(path: Path, option: str) -> None:
    """``path`` is (or can be made) a directory we may write files into; InputError if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".itb-write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise InputError(option, f"{path}: not a writable directory ({reason})") from None


def check_writable_file(path: Path, option: str) -> None:
    """``path`` can be written (its directory exists and is writable; it is not a directory)."""
    if path.is_dir():
        raise InputError(option, f"{path}: a directory; allowed a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(option, f"{path}: its directory does not exist or is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(option, f"{path}: not writable")
