"""Migration 0010: a caregiver's pending invitation becomes their account's one-time password
(the one mechanism an administrator's reset uses too), and comes back on a downgrade."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from itb.clinic.db import MIGRATIONS_DIR, make_engine
from tests.clinic.support import pg_admin, pg_url, postgres_reachable
from tests.conftest import require

PENDING_UNTIL = datetime(2026, 12, 10, 9, 30)


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _until(engine: Engine, username: str) -> object:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT one_time_password_until_utc FROM users WHERE username = :u"),
            {"u": username},
        ).scalar_one()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database, on SQLite and on PostgreSQL."""
    name = f"itb_migration_{secrets.token_hex(6)}"
    if request.param == "postgres":
        require(postgres_reachable(), "PostgreSQL not reachable at 127.0.0.1:5432")
        pg_admin(f'CREATE DATABASE "{name}"')
    engine = make_engine(
        pg_url(name) if request.param == "postgres" else f"sqlite:///{tmp_path / 'clinic.db'}"
    )
    yield engine
    engine.dispose()
    if request.param == "postgres":
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_pending_invitation_moves_to_the_account_and_back(engine: Engine) -> None:
    _migrate(engine, "0009")
    with engine.begin() as connection:
        for i, username in enumerate(("invited", "settled", "revoked"), start=1):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, role, display_name, active,"
                    " created_at_utc) VALUES (:i, :u, 'x', 'caregiver', :u, TRUE, :at)"
                ),
                {"i": i, "u": username, "at": PENDING_UNTIL},
            )
        connection.execute(
            text(
                "INSERT INTO patients (id, mrn, name, origin, created_at)"
                " VALUES (1, 'M-1', 'Casey Test', 'spinal', :at)"
            ),
            {"at": PENDING_UNTIL},
        )
        for user_id, until, revoked in ((1, PENDING_UNTIL, None), (2, None, None),
                                        (3, PENDING_UNTIL, PENDING_UNTIL)):  # fmt: skip
            connection.execute(
                text(
                    "INSERT INTO caregiver_links (user_id, patient_id, first_name, relation,"
                    " phone, created_at_utc, revoked_at_utc, invite_expires_at_utc)"
                    " VALUES (:user_id, 1, 'Casey', 'parent', '+44 1', :at, :revoked, :until)"
                ),
                {"user_id": user_id, "at": PENDING_UNTIL, "revoked": revoked, "until": until},
            )
    _migrate(engine, "0010")
    assert str(_until(engine, "invited")).startswith("2026-12-10 09:30")
    assert _until(engine, "settled") is None and _until(engine, "revoked") is None
    columns = {column["name"] for column in inspect(engine).get_columns("caregiver_links")}
    assert "invite_expires_at_utc" not in columns and "revoked_at_utc" in columns

    _migrate(engine, "0009", down=True)
    assert _until(engine, "invited") is None
    with engine.connect() as connection:
        links = connection.execute(
            text("SELECT user_id, invite_expires_at_utc FROM caregiver_links ORDER BY user_id")
        ).all()
    assert [(u, str(at)[:16] if at else None) for u, at in links] == [
        (1, "2026-12-10 09:30"), (2, None), (3, None),
    ]  # fmt: skip
