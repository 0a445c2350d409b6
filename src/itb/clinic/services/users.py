"""Every account, managed by an administrator, and everyone's own password.

An administrator creates a care-team account, disables or enables any account, resets its
password and changes a care-team account's role. A new account and a reset get a one-time
password (services/one_time_passwords.py, the same as a caregiver's invitation, ASVS 2.3.1):
shown once, it only opens the "set your own password" page, and expires. Every change is
audited with its before and after (never a password or a hash).

The last active administrator cannot be disabled or demoted: the accounts' rows are locked
first (PostgreSQL: ``FOR UPDATE`` on the active administrators; SQLite: its one write lock), so
two administrators demoting each other at once cannot leave the clinic with none.

A caregiver's account is created and linked to a patient by the care team on the patient's
Family tab (services/family.py). Here an administrator resets a caregiver's forgotten password
and disables or enables the account; a role never crosses between a caregiver and the care
team (a caregiver sees only the family's page, a care-team account every patient).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from itb.clinic import audit, auth
from itb.clinic.errors import ConflictError, InputError, NotFoundError
from itb.clinic.models import CaregiverLink, Patient, Role, User, WebSession
from itb.clinic.services.family import caregiver_links
from itb.clinic.services.lookups import iso
from itb.clinic.services.one_time_passwords import (
    PasswordState,
    new_one_time_password,
    one_time_until,
    reissue,
)
from itb.clinic.services.one_time_passwords import password_state as password_state

# The roles an administrator gives, in the order the form lists them.
MANAGED_ROLES: tuple[Role, ...] = (Role.PHYSICIAN, Role.NURSE, Role.VIEWER, Role.ADMINISTRATOR)
ROLE_WORDS = {
    Role.PHYSICIAN.value: "Physician: programs, prescribes, refills",
    Role.NURSE.value: "Nurse: refills, interrogates, records",
    Role.VIEWER.value: "Viewer: reads only",
    Role.ADMINISTRATOR.value: "Administrator: accounts and the audit log, no patient pages",
}
_ROLES_RULE = "physician, nurse, viewer or administrator"


@dataclass(frozen=True, slots=True)
class Issued:
    """An account and its one-time password, shown once to the administrator."""

    user: User
    one_time_password: str


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the administrator's list shows it: a caregiver with the names of the
    patients they are linked to (none: every link revoked)."""

    user: User
    linked_patients: tuple[str, ...]

    @property
    def is_caregiver(self) -> bool:
        return self.user.role == Role.CAREGIVER.value


def _summary(user: User) -> dict[str, object]:
    return {"username": user.username, "role": user.role, "active": user.active}


def _managed_role(role: str) -> str:
    if role not in {r.value for r in MANAGED_ROLES}:
        raise InputError("role", _ROLES_RULE)
    return role


def _linked_patients(db: Session) -> dict[int, list[str]]:
    """Each caregiver's patients (active links), by name."""
    rows = db.execute(
        select(CaregiverLink.user_id, Patient.name)
        .join(Patient, Patient.id == CaregiverLink.patient_id)
        .where(CaregiverLink.revoked_at_utc.is_(None))
        .order_by(Patient.name)
    ).all()
    linked: dict[int, list[str]] = {}
    for user_id, name in rows:
        linked.setdefault(user_id, []).append(name)
    return linked


def list_accounts(db: Session) -> list[Account]:
    """Every account by username; a caregiver's with the patients they are linked to."""
    linked = _linked_patients(db)
    users = db.execute(select(User).order_by(User.username)).scalars()
    return [Account(user, tuple(linked.get(user.id, ()))) for user in users]


def _managed(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no account {user_id}")
    return user


def _end_sessions(db: Session, user: User, keep: WebSession | None = None) -> None:
    """Sign the user out everywhere (but ``keep``): the server forgets the sessions."""
    statement = delete(WebSession).where(WebSession.user_id == user.id)
    if keep is not None:
        statement = statement.where(WebSession.id != keep.id)
    db.execute(statement.execution_options(synchronize_session=False))


def create_account(db: Session, actor: User, username: str, role: str) -> Issued:
    """A new care-team account with a one-time password. Audited; commits."""
    username = username.strip()
    if not auth.USERNAME_RE.fullmatch(username):
        raise InputError("username", auth.USERNAME_RULE)
    _managed_role(role)
    password = new_one_time_password()
    try:
        user = auth.add_user(db, username, role, password, actor)
    except ValueError:  # the only check left to add_user: the name is taken
        raise InputError("username", f"{username} is taken; choose another") from None
    user.one_time_password_until_utc = one_time_until(audit.utc_now())
    db.commit()
    return Issued(user, password)


def _password_summary(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "role": user.role,
        "one_time_password_until_utc": iso(user.one_time_password_until_utc),
    }


def reset_password(db: Session, actor: User, user_id: int) -> Issued:
    """A new one-time password for any account, a caregiver's too; the user's sessions end.
    Audited; commits."""
    user = _managed(db, user_id)
    before = _password_summary(user)
    password = reissue(user, audit.utc_now())
    _end_sessions(db, user)
    after = _password_summary(user) | {"one_time_password": True, "sessions_ended": True}
    audit.record(db, actor, "user.password_reset", "user", user.id, before, after)
    db.commit()
    return Issued(user, password)


def _lock_accounts(db: Session) -> None:
    """Serialise the last-administrator check with any other change to accounts."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            select(User.id)
            .where(User.role == Role.ADMINISTRATOR.value, User.active.is_(True))
            .with_for_update()
        )
    else:  # SQLite: the first write of a transaction takes the database's one write lock
        db.execute(text("UPDATE users SET id = id WHERE 1 = 0"))


def _refuse_losing_the_last_administrator(db: Session, user: User) -> None:
    others = db.execute(
        select(User.id).where(
            User.role == Role.ADMINISTRATOR.value, User.active.is_(True), User.id != user.id
        )
    ).first()
    if user.role == Role.ADMINISTRATOR.value and user.active and others is None:
        raise ConflictError(
            f"{user.username} is the last active administrator: make another account an "
            "administrator first, or the clinic could no longer manage its accounts"
        )


def set_active(db: Session, actor: User, user_id: int, active: bool) -> User:
    """Disable (sessions end at once) or enable an account; a caregiver is enabled only while
    linked to a patient. Audited; commits."""
    _lock_accounts(db)
    user = _managed(db, user_id)
    if user.active == active:
        return user
    if active and user.role == Role.CAREGIVER.value and not caregiver_links(db, user):
        raise ConflictError(
            f"{user.username} is no longer linked to any patient: link them again on the "
            "patient's Family tab (that enables the account)"
        )
    if not active:
        if user.id == actor.id:
            raise ConflictError("you cannot disable your own account: ask another administrator")
        _refuse_losing_the_last_administrator(db, user)
        _end_sessions(db, user)
    before = _summary(user)
    user.active = active
    action = "user.enable" if active else "user.disable"
    audit.record(db, actor, action, "user", user.id, before, _summary(user))
    db.commit()
    return user


def change_role(db: Session, actor: User, user_id: int, role: str) -> User:
    """Give the account another role (it takes effect on its next request). Audited;
    commits."""
    if role == Role.CAREGIVER.value:
        raise InputError(
            "role",
            "a care-team account cannot become a caregiver's: invite the family on the "
            "patient's Family tab, with a username of their own",
        )
    _managed_role(role)
    _lock_accounts(db)
    user = _managed(db, user_id)
    if user.role == Role.CAREGIVER.value:
        raise ConflictError(
            f"{user.username} is a caregiver's account, which sees only the family's page of "
            "their child: it cannot become a care-team account. Create a care-team account "
            "with a username of its own instead"
        )
    if user.role == role:
        return user
    if role != Role.ADMINISTRATOR.value:
        _refuse_losing_the_last_administrator(db, user)
    before = _summary(user)
    user.role = role
    audit.record(db, actor, "user.role_change", "user", user.id, before, _summary(user))
    db.commit()
    return user


# One's own password -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PasswordChange:
    current: str
    new: str
    repeat: str


def change_own_password(db: Session, web_session: WebSession, change: PasswordChange) -> None:
    """Replace one's own password (the current one, or the one-time password, required); every
    other session of the user ends. Audited; commits."""
    user = web_session.user
    if password_state(user, audit.utc_now()) == PasswordState.EXPIRED:
        raise ConflictError(
            "your one-time password has expired: ask an administrator for a new one"
        )
    if not auth.verify_password(user, change.current):
        raise InputError("current", "this is not your current password")
    if change.new != change.repeat:
        raise InputError("repeat", "the two new passwords differ; type the same one twice")
    if len(change.new) < auth.MIN_PASSWORD_CHARS:
        raise InputError("new", f"at least {auth.MIN_PASSWORD_CHARS} characters")
    if change.new == change.current:
        raise InputError("new", "the new password must differ from the current one")
    one_time = user.one_time_password_until_utc is not None
    user.password_hash = auth.hash_password(change.new)
    user.one_time_password_until_utc = None
    _end_sessions(db, user, keep=web_session)
    audit.record(
        db, user, "user.password_change", "user", user.id, None,
        {"replaced_one_time_password": one_time, "other_sessions_ended": True},
    )  # fmt: skip
    db.commit()
