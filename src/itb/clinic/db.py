"""Database connection: the URL, the engine, sessions, and the schema migration at start.

SQLite file in the user's data directory by default; ``ITB_DATABASE_URL`` (or an explicit URL)
for PostgreSQL (``postgresql+psycopg://...``). The schema is always brought to Alembic's head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# the URL's rule lives where no SQLAlchemy is imported (its readers include the CLI's help)
from itb.clinic.database_url import DATABASE_URL_ENV as DATABASE_URL_ENV
from itb.clinic.database_url import default_database_url as default_database_url
from itb.clinic.database_url import resolve_database_url as resolve_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
