"""Follow-up visits, patient search keys, and the physician's review of a flagged refill

* ``follow_ups``: one per follow-up visit: the MAS score on the program in force (its version
  and daily dose, so that a patient's fit can take it as a steady-state score), the side
  effects ticked, the next appointment (to the minute, clinic time).
* ``patients.search_name`` / ``search_surname``: the name and its last word, case-folded in
  Python (the same fold for every database), each indexed; ``lower(mrn)`` and
  ``lower(pumps.serial)`` indexed. A search is a prefix range on one of them. On PostgreSQL
  they use the "C" collation, so that a prefix range is a byte range, as on SQLite.
* ``refill_records.reviewed_at`` / ``reviewed_by_id``: a flagged refill stays marked on the
  dashboard until a physician reviews it (refill_records already bumps the dashboard's data
  version, migration 0006).

The dashboard shows nothing of ``follow_ups``: no data-version trigger for it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _fold(name: str) -> tuple[str, str]:
    # frozen copy of itb.clinic.models.search_keys (a migration never imports code that changes)
    folded = " ".join(name.casefold().split())
    return folded, folded.rsplit(" ", 1)[-1]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    collation = "C" if postgres else None
    op.add_column(
        "patients", sa.Column("search_name", sa.String(128, collation=collation), nullable=True)
    )
    op.add_column(
        "patients", sa.Column("search_surname", sa.String(128, collation=collation), nullable=True)
    )
    patients = sa.table(
        "patients",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("search_name", sa.String()),
        sa.column("search_surname", sa.String()),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(patients.c.id, patients.c.name)).all():
        name, surname = _fold(row.name)
        bind.execute(
            patients.update()
            .where(patients.c.id == row.id)
            .values(search_name=name, search_surname=surname)
        )
    op.create_index("ix_patients_search_name", "patients", ["search_name"])
    op.create_index("ix_patients_search_surname", "patients", ["search_surname"])
    lower = 'lower({}) COLLATE "C"' if postgres else "lower({})"
    op.create_index("ix_patients_mrn_lower", "patients", [sa.text(lower.format("mrn"))])
    op.create_index("ix_pumps_serial_lower", "pumps", [sa.text(lower.format("serial"))])

    op.add_column("refill_records", sa.Column("reviewed_at", sa.DateTime(), nullable=True))
    if postgres:
        op.add_column(
            "refill_records",
            sa.Column("reviewed_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        )
    else:  # a plain ADD COLUMN: a batch (table copy) would drop 0006's triggers
        op.execute(
            "ALTER TABLE refill_records ADD COLUMN reviewed_by_id INTEGER REFERENCES users (id)"
        )

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("visit_id", sa.Integer(), sa.ForeignKey("visits.id"), nullable=False),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("pump_id", sa.Integer(), sa.ForeignKey("pumps.id"), nullable=True),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=True),
        sa.Column("daily_dose_ug", sa.Float(), nullable=True),
        sa.Column("mas", sa.Float(), nullable=True),
        sa.Column("side_effects", sa.String(512), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("next_appointment_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("visit_id", name="uq_follow_ups_visit_id"),
    )
    op.create_index("ix_follow_ups_patient_id", "follow_ups", ["patient_id"])
    op.create_index("ix_follow_ups_next_appointment_at", "follow_ups", ["next_appointment_at"])
    op.execute("ANALYZE")


def downgrade() -> None:
    op.drop_index("ix_follow_ups_next_appointment_at", table_name="follow_ups")
    op.drop_index("ix_follow_ups_patient_id", table_name="follow_ups")
    op.drop_table("follow_ups")
    op.drop_column("refill_records", "reviewed_by_id")
    op.drop_column("refill_records", "reviewed_at")
    op.drop_index("ix_pumps_serial_lower", table_name="pumps")
    op.drop_index("ix_patients_mrn_lower", table_name="patients")
    op.drop_index("ix_patients_search_surname", table_name="patients")
    op.drop_index("ix_patients_search_name", table_name="patients")
    op.drop_column("patients", "search_surname")
    op.drop_column("patients", "search_name")
