"""The clinic's tables (SQLAlchemy 2). Migrations in ``migrations/versions`` create them.

Times: pump and visit times are naive datetimes on the clinic's clock (the pump clock is a
fixed-offset local clock); the audit log and sessions are naive UTC, in columns ending ``_utc``.
The projected due dates on :class:`Pump` are denormalised from the last interrogation or refill
so that the dashboard of thousands of patients is one indexed query.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML


class Base(DeclarativeBase):
    pass


class Role(enum.StrEnum):
    PHYSICIAN = "physician"  # programs, prescribes
    NURSE = "nurse"  # refills, interrogates, records
    VIEWER = "viewer"
    CAREGIVER = "caregiver"  # a patient's family: only their own patients' family page
    ADMINISTRATOR = "administrator"  # user accounts and the audit log; no patient pages


class VisitKind(enum.StrEnum):
    SCREENING_TRIAL = "screening_trial"
    IMPLANT = "implant"
    REFILL = "refill"
    PROGRAMMING = "programming"
    FOLLOW_UP = "follow_up"
    REPLACEMENT = "replacement"
    # the care team's pump page (clinic/services/pump_actions.py): one visit per command
    BOLUS = "clinician_bolus"
    STOP = "pump_stop"
    RESUME = "pump_resume"
    CLEAR_ALARM = "alarm_clear"
    ALARM_TEST = "alarm_test"


class VisitStatus(enum.StrEnum):
    OPEN = "open"
    # written (and committed) before a pump command goes out; a visit left in this state
    # after a crash is reconciled from the pump's event log
    PUMP_COMMAND_SENT = "pump_command_sent"
    COMPLETED = "completed"
    COMPLETED_AFTER_RESTART = "completed_after_restart"
    NOT_APPLIED = "not_applied"  # the command never reached the pump
    FAILED = "failed"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_utc: Mapped[datetime] = mapped_column(DateTime)
    # set by an administrator's create or reset (migration 0009): the password is a one-time
    # password, valid until then and only to set the user's own (services/users.py)
    one_time_password_until_utc: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True, default=None
    )


class WebSession(Base):
    """A server-side session; the cookie holds a random token, the table only its hash."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at_utc: Mapped[datetime] = mapped_column(DateTime)
    expires_at_utc: Mapped[datetime] = mapped_column(DateTime)
    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at_utc: Mapped[datetime] = mapped_column(DateTime, index=True)


class LoginBudget(Base):
    """The log-in attempts left to one username or one client in the current window; reserved
    by one conditional UPDATE before a password is checked (itb.clinic.auth)."""

    __tablename__ = "login_budgets"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)  # "user:..." or "client:..."
    window_start_utc: Mapped[datetime] = mapped_column(DateTime)
    used: Mapped[int] = mapped_column(Integer)


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    birth_date: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    origin: Mapped[str] = mapped_column(String(16), default="spinal")  # spinal or cerebral
    clinician_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # the name case-folded, and its last word: the search's indexed prefixes (migration 0008);
    # filled from ``name`` on insert, and by the edit (services/patients.py) on a change
    search_name: Mapped[str | None] = mapped_column(
        String(128), nullable=True, default=lambda ctx: _search_default(ctx, 0)
    )
    search_surname: Mapped[str | None] = mapped_column(
        String(128), nullable=True, default=lambda ctx: _search_default(ctx, 1)
    )
    clinician: Mapped[User | None] = relationship(lazy="joined")
    pumps: Mapped[list[Pump]] = relationship(back_populates="patient", order_by="Pump.id")


class Pump(Base):
    __tablename__ = "pumps"
    # the dashboard: active pumps in the ranking's order (soonest harm, then id), read from
    # this index (migration 0006); it also serves every "active pumps" filter
    __table_args__ = (Index("ix_pumps_active_harm_at", "active", "harm_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    model: Mapped[str] = mapped_column(String(32))
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    implanted_at: Mapped[datetime] = mapped_column(DateTime)
    explanted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    paired_key_hex: Mapped[str | None] = mapped_column(String(128), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    drug: Mapped[str] = mapped_column(String(32), default="baclofen")
    # Last known state (from the last interrogation or refill).
    state_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reservoir_ml: Mapped[float | None] = mapped_column(Float, nullable=True)
    concentration_ug_per_ml: Mapped[float | None] = mapped_column(Float, nullable=True)
    daily_dose_ug: Mapped[float | None] = mapped_column(Float, nullable=True)
    low_reservoir_alarm_ml: Mapped[float] = mapped_column(
        Float, default=DEFAULT_LOW_RESERVOIR_ALARM_ML
    )
    filled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # ERI and EOS as the pump reported them (its firmware's prediction, or the date entered)
    battery_eri_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    battery_eos_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Projected due dates and the soonest of them (the dashboard's sort key).
    low_reservoir_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    empty_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    stability_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    eri_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    eos_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    # the programmer's next refill date (plan_refill, docs/refill.md), projected with the others
    next_refill_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # the soonest harm without care (urgency.py: dry reservoir, EOS, expired drug, not
    # delivering) and its kind: the dashboard's sort key, walked by its index
    harm_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    harm: Mapped[str | None] = mapped_column(String(24), nullable=True)
    patient: Mapped[Patient] = relationship(back_populates="pumps")


class Catheter(Base):
    __tablename__ = "catheters"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("pumps.id"), nullable=True)
    length_cm: Mapped[float] = mapped_column(Float)
    volume_ml: Mapped[float] = mapped_column(Float)
    implanted_at: Mapped[datetime] = mapped_column(DateTime)


class DrugConcentration(Base):
    __tablename__ = "drug_concentrations"
    __table_args__ = (UniqueConstraint("drug", "concentration_ug_per_ml"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    drug: Mapped[str] = mapped_column(String(32))
    concentration_ug_per_ml: Mapped[float] = mapped_column(Float)
    stability_days: Mapped[float] = mapped_column(Float)


class Visit(Base):
    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("pumps.id"), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    notes: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[User | None] = relationship(lazy="joined")


class ProgramVersion(Base):
    """Every program a pump has run, each version kept."""

    __tablename__ = "programs"
    __table_args__ = (UniqueConstraint("pump_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    program_json: Mapped[str] = mapped_column(Text)
    daily_dose_ug: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), nullable=True)


class RefillRecord(Base):
    __tablename__ = "refill_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    expected_ml: Mapped[float] = mapped_column(Float)
    withdrawn_ml: Mapped[float] = mapped_column(Float)
    filled_ml: Mapped[float] = mapped_column(Float)
    concentration_ug_per_ml: Mapped[float] = mapped_column(Float)
    discrepancy_ml: Mapped[float] = mapped_column(Float)
    discrepancy_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    # a flagged refill is marked on the dashboard until a physician reviews it (migration 0008)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (UniqueConstraint("pump_id", "kind", "raised_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PumpEvent(Base):
    """One entry of a pump's own event log, stored once: keyed by serial and sequence number."""

    __tablename__ = "pump_events"
    __table_args__ = (UniqueConstraint("serial", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    serial: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(48))
    data_json: Mapped[str] = mapped_column(Text, default="{}")


class Interrogation(Base):
    __tablename__ = "interrogations"
    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("pumps.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    status_json: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only (database triggers refuse UPDATE and DELETE), hash-chained, UTC."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at_utc: Mapped[datetime] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str] = mapped_column(Text)
    after_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # no fork
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# The family's side (issue 16, docs/family.md) ------------------------------------------------
class CaregiverLink(Base):
    """A caregiver account linked to one patient by the care team; revoked, never deleted."""

    __tablename__ = "caregiver_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    # what the family calls the child on their page and calendar (never the full name)
    first_name: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32), default="parent")
    phone: Mapped[str] = mapped_column(String(32), default="")
    created_at_utc: Mapped[datetime] = mapped_column(DateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    revoked_at_utc: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # a new caregiver's one-time password is the account's (users.one_time_password_until_utc,
    # migration 0010), like any other account's
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    patient: Mapped[Patient] = relationship(lazy="joined")


class FamilyReport(Base):
    """A caregiver's message to the care team ("we hear an alarm", a withdrawal sign). Open
    until a clinician acknowledges it; while open it is the patient's harm now (urgency.py)."""

    __tablename__ = "family_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("pumps.id"), nullable=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))  # "alarm" or "withdrawal_sign"
    detail: Mapped[str] = mapped_column(String(64))  # which tone or which sign
    note: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[datetime] = mapped_column(DateTime)  # the clinic's clock
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


# Search, follow-up visits (issue 14, docs/clinic.md) -------------------------------------------
def search_keys(name: str) -> tuple[str, str]:
    """The name as the search compares it: case-folded, spaces collapsed; and its last word."""
    folded = " ".join(name.casefold().split())
    return folded, folded.rsplit(" ", 1)[-1]


def _search_default(context: Any, which: int) -> str:
    return search_keys(str(context.get_current_parameters()["name"]))[which]


class FollowUp(Base):
    """A follow-up visit's findings: the MAS on the program in force (a steady-state score the
    patient's fit can take), the side effects ticked, the next appointment (clinic time)."""

    __tablename__ = "follow_ups"
    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("pumps.id"), nullable=True)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"), nullable=True)
    daily_dose_ug: Mapped[float | None] = mapped_column(Float, nullable=True)
    mas: Mapped[float | None] = mapped_column(Float, nullable=True)
    side_effects: Mapped[str] = mapped_column(String(512), default="")  # keys, comma-separated
    seen_at: Mapped[datetime] = mapped_column(DateTime)
    next_appointment_at: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True, index=True
    )
