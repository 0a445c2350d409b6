"""The family's side: caregiver links and family reports (issue 16, docs/family.md)

* ``caregiver_links``: a caregiver account linked to one patient by the care team; a revoked
  link keeps its row (``revoked_at_utc``), so the audit log's entries still point at it.
* ``family_reports``: "we hear an alarm" or a withdrawal sign, open until a clinician
  acknowledges it; written with the pump's ``harm``/``harm_at`` (the dashboard's rank), so the
  dashboard's data version moves with the pump row's write.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caregiver_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("first_name", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("created_at_utc", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("revoked_at_utc", sa.DateTime(), nullable=True),
        sa.Column("invite_expires_at_utc", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_caregiver_links_user_id", "caregiver_links", ["user_id"])
    op.create_index("ix_caregiver_links_patient_id", "caregiver_links", ["patient_id"])
    op.create_table(
        "family_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("pump_id", sa.Integer(), sa.ForeignKey("pumps.id"), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("detail", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_index("ix_family_reports_patient_id", "family_reports", ["patient_id"])
    op.create_index("ix_family_reports_pump_id", "family_reports", ["pump_id"])


def downgrade() -> None:
    op.drop_index("ix_family_reports_pump_id", table_name="family_reports")
    op.drop_index("ix_family_reports_patient_id", table_name="family_reports")
    op.drop_table("family_reports")
    op.drop_index("ix_caregiver_links_patient_id", table_name="caregiver_links")
    op.drop_index("ix_caregiver_links_user_id", table_name="caregiver_links")
    op.drop_table("caregiver_links")
