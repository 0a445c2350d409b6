"""login_budgets: the log-in attempts reserved per username and per client, atomically

The log-in limit counted earlier failures and then checked the password, so concurrent guesses
all saw the same count: 40 at once had 19 to 24 passwords checked instead of 5. Each attempt now
reserves one unit of its username's and its client's budget with a single conditional UPDATE
(itb.clinic.auth) before the password is checked, on SQLite and PostgreSQL alike.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_budgets",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("window_start_utc", sa.DateTime(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_budgets")
