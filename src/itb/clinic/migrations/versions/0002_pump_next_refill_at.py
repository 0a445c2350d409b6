"""pumps.next_refill_at: the programmer's next refill date, stored at each interrogation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 21:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # filled in at the next interrogation or refill (plan_refill needs the pump's state)
    op.add_column("pumps", sa.Column("next_refill_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("pumps", "next_refill_at")
