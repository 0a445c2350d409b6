"""A caregiver's invitation is a one-time password like any other account's

* ``caregiver_links.invite_expires_at_utc`` goes: a new caregiver's one-time password is kept,
  like an administrator's reset, in ``users.one_time_password_until_utc`` (migration 0009), so
  an administrator can reset a caregiver's forgotten password with the same mechanism
  (services/one_time_passwords.py). A pending invitation moves to its account (the latest of
  its active links); a revoked link's never counted. No dashboard trigger reads either column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE users SET one_time_password_until_utc = ("
        " SELECT MAX(l.invite_expires_at_utc) FROM caregiver_links AS l"
        " WHERE l.user_id = users.id AND l.revoked_at_utc IS NULL"
        ") WHERE one_time_password_until_utc IS NULL"
    )
    # SQLite (3.35+) drops a plain column in place: no table copy, no index lost
    op.drop_column("caregiver_links", "invite_expires_at_utc")


def downgrade() -> None:
    op.add_column(
        "caregiver_links", sa.Column("invite_expires_at_utc", sa.DateTime(), nullable=True)
    )
    op.execute(
        "UPDATE caregiver_links SET invite_expires_at_utc = (SELECT u.one_time_password_until_utc "
        "FROM users AS u WHERE u.id = caregiver_links.user_id) WHERE revoked_at_utc IS NULL"
    )
    op.execute("UPDATE users SET one_time_password_until_utc = NULL WHERE role = 'caregiver'")
