"""pumps.battery_eos_at and pumps.eos_at: the pump's own end-of-service date, stored at reading

The clinic shows the ERI and EOS dates the pump's firmware predicts (reported over telemetry at
each interrogation) instead of re-deriving them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # filled in at the next interrogation (the pump reports them) or implant record
    op.add_column("pumps", sa.Column("battery_eos_at", sa.DateTime(), nullable=True))
    op.add_column("pumps", sa.Column("eos_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("pumps", "eos_at")
    op.drop_column("pumps", "battery_eos_at")
