"""The dashboard's data version: a counter in the database that every write to its sources bumps.

Database triggers (migration 0006) bump it on any INSERT, UPDATE or DELETE of patients, pumps,
users, interrogations, refill records and alarms, whoever writes (this app, another worker,
another server, a script). A cache keyed on it is therefore valid across processes: a reader
that sees the same version sees the same rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, column, select, table
from sqlalchemy.orm import Session

DASHBOARD = "dashboard"

_VERSIONS = table("data_versions", column("name", String), column("version", BigInteger))


def dashboard_version(db: Session) -> int:
    """The current version of the dashboard's rows (read before the rows themselves)."""
    return int(
        db.execute(select(_VERSIONS.c.version).where(_VERSIONS.c.name == DASHBOARD)).scalar_one()
    )
