"""Reading TOML input files and turning validation errors into one line per field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def read_toml(path: Path, error: type[ValueError], what: str) -> dict[str, Any]:
    """The file's tables, or ``error`` naming the file and what is wrong with it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise error(f"{path}: a directory, not a {what} file") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} file: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once per nesting level
        raise error(f"{path}: not valid TOML: nested too deeply") from None


def describe(err: ValidationError, root: str) -> str:
    """``section.key: problem`` for every field pydantic refused, joined by semicolons."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors()
    )
