"""The dashboard's index in the ranking's exact order, and its data version

* ``ix_pumps_active_harm_at`` becomes ``(active, harm_at, id)``: the ranking's ORDER BY
  ``harm_at, id`` read straight from the index on PostgreSQL too (SQLite appends the rowid
  itself). The lone ``ix_pumps_active`` goes: it is the composite's prefix, and a planner
  without statistics picked it and sorted every pump.
* ``data_versions``: one counter, ``dashboard``, bumped by a trigger on every write to a table
  the dashboard's rows are built from (patients, pumps, users, interrogations, refill records,
  alarms). The web app caches rendered pages under it (itb.web.pages.dashboard), valid across
  workers and servers because the counter lives in the database, whoever writes.
* ``ANALYZE``: the planner's statistics, so that it keeps walking the index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copy (a migration never imports code that may change after it): the tables whose
# writes can change a dashboard row.
_SOURCES = ("patients", "pumps", "users", "interrogations", "refill_records", "alarms")
_COUNTER = "dashboard"


def upgrade() -> None:
    op.drop_index("ix_pumps_active", table_name="pumps")
    op.drop_index("ix_pumps_active_harm_at", table_name="pumps")
    op.create_index("ix_pumps_active_harm_at", "pumps", ["active", "harm_at", "id"])
    versions = op.create_table(
        "data_versions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(versions, [{"name": _COUNTER, "version": 0}])
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()
    op.execute("ANALYZE")


_BUMP = f"UPDATE data_versions SET version = version + 1 WHERE name = '{_COUNTER}'"


def _postgres_triggers() -> None:
    op.execute(
        "CREATE FUNCTION dashboard_version_bump() RETURNS trigger AS $$ BEGIN "
        f"{_BUMP}; RETURN NULL; END; $$ LANGUAGE plpgsql"
    )
    for table in _SOURCES:
        # once per statement: a bulk insert of 10,000 rows bumps it once
        op.execute(
            f"CREATE TRIGGER {table}_dashboard_version AFTER INSERT OR UPDATE OR DELETE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION dashboard_version_bump()"
        )


def _sqlite_triggers() -> None:
    # SQLite has row triggers only: one small UPDATE per row written
    for table in _SOURCES:
        for verb in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_dashboard_version_{verb.lower()} AFTER {verb} "
                f"ON {table} BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_dashboard_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS dashboard_version_bump()")
    else:
        for table in _SOURCES:
            for verb in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_dashboard_version_{verb}")
    op.drop_table("data_versions")
    op.drop_index("ix_pumps_active_harm_at", table_name="pumps")
    op.create_index("ix_pumps_active_harm_at", "pumps", ["active", "harm_at"])
    op.create_index("ix_pumps_active", "pumps", ["active"])
