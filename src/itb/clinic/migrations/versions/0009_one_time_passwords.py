"""Administrators' user management: a one-time password that must be replaced at next log-in

* ``users.one_time_password_until_utc``: set when an administrator creates an account or
  resets its password; until it is replaced, the password only opens the "set your own
  password" page, and after this time not even that (ask an administrator again). Null: the
  user's own password. The dashboard reads nothing of it: no data-version trigger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("one_time_password_until_utc", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "one_time_password_until_utc")
