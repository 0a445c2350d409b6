"""Database connection: the URL, the engine, sessions, and the schema migration at start.

SQLite file in the user's data directory by default; ``ITB_DATABASE_URL`` (or an explicit URL)
for PostgreSQL (``postgresql+psycopg://...``). The schema is always brought to Alembic's head.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DATABASE_URL_ENV = "ITB_DATABASE_URL"


def default_database_url() -> str:
    import platformdirs

    data_dir = Path(platformdirs.user_data_dir("openitb", appauthor=False))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'clinic.sqlite3'}"


def resolve_database_url(explicit: str | None = None) -> str:
    """``--database-url``, else ``ITB_DATABASE_URL``, else the SQLite file in the data dir."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or default_database_url()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if is_sqlite(url):
        # the web server answers from a thread pool; SQLite serialises writers itself
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade_to_head(engine: Engine) -> None:
    """Create or migrate the schema (Alembic ``upgrade head``) on this engine."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
