"""pumps.harm_at and pumps.harm: the soonest harm without care, the dashboard's sort key

The dashboard ranks patients by days until harm (the reservoir runs dry, the battery stops
delivering, the drug expires, or the pump is not delivering at all; clinic/urgency.py), not by
the soonest due date. ``(active, harm_at)`` is indexed so that the first page walks the index.
Existing rows are filled in from the dates already stored (the next reading refreshes them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen copies of clinic/urgency.py's rule as of this revision (a migration never imports
# code that may change after it).
_NOT_DELIVERING_MODES = ("stopped", "safe_state", "eos")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pumps", sa.Column("harm_at", sa.DateTime(), nullable=True))
    op.add_column("pumps", sa.Column("harm", sa.String(length=24), nullable=True))
    # active pumps in harm order straight from the index: no sort of every patient
    op.create_index("ix_pumps_active_harm_at", "pumps", ["active", "harm_at"], unique=False)
    _backfill()


def _backfill() -> None:
    """Each read pump's soonest harm from the dates stored at its last reading (the nominal
    empty date stands in for the fast-flow one until the next reading)."""
    pumps = sa.table(
        "pumps",
        sa.column("id", sa.Integer),
        sa.column("state_at", sa.DateTime),
        sa.column("mode", sa.String),
        sa.column("empty_at", sa.DateTime),
        sa.column("eos_at", sa.DateTime),
        sa.column("stability_at", sa.DateTime),
        sa.column("harm_at", sa.DateTime),
        sa.column("harm", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            pumps.c.id, pumps.c.state_at, pumps.c.mode, pumps.c.empty_at, pumps.c.eos_at,
            pumps.c.stability_at,
        ).where(pumps.c.state_at.is_not(None))
    ).all()  # fmt: skip
    for row in rows:
        harm: str | None
        if row.mode in _NOT_DELIVERING_MODES:
            harm_at, harm = row.state_at, "not_delivering"
        else:
            dated = [
                (when, harm)
                for when, harm in (
                    (row.empty_at, "reservoir_empty"),
                    (row.eos_at, "battery_eos"),
                    (row.stability_at, "drug_expired"),
                )
                if when is not None
            ]
            harm_at, harm = min(dated, key=lambda d: d[0]) if dated else (None, None)
        bind.execute(pumps.update().where(pumps.c.id == row.id).values(harm_at=harm_at, harm=harm))


def downgrade() -> None:
    op.drop_index("ix_pumps_active_harm_at", table_name="pumps")
    op.drop_column("pumps", "harm")
    op.drop_column("pumps", "harm_at")
