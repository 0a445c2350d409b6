"""Which database the clinic uses: ``--database-url``, else ``ITB_DATABASE_URL``, else a SQLite
file in the user's data directory. Apart from ``db.py`` (SQLAlchemy) so that the command line's
help names the variable without importing SQLAlchemy (issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "ITB_DATABASE_URL"


def default_database_url() -> str:
    import platformdirs

    data_dir = Path(platformdirs.user_data_dir("openitb", appauthor=False))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'clinic.sqlite3'}"


def resolve_database_url(explicit: str | None = None) -> str:
    """``--database-url``, else ``ITB_DATABASE_URL``, else the SQLite file in the data dir."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or default_database_url()
