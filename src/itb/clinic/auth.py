"""Users, passwords (argon2id), server-side sessions, the login rate limit and the role check.

The login limit (5 attempts per username, 20 per client, in a 15-minute window) is reserved in
the database with one conditional UPDATE before the password is checked, so it holds across
threads, workers and servers sharing the database, on SQLite and PostgreSQL.

:func:`authorize` is the one role check: an action not in :data:`PERMISSIONS` is denied.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from itb.clinic import audit
from itb.clinic.models import LoginBudget, LoginFailure, Role, User, WebSession

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import CursorResult

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile

SESSION_LIFETIME = timedelta(hours=8)
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_CLIENT = 20
MIN_PASSWORD_CHARS = 10

# Clinic accounts are often e-mail-like (j.doe, a-b@clinic): ASCII letters and digits with dots,
# dashes, underscores and @, starting with a letter or digit; the login form checks the same.
USERNAME_MAX_CHARS = 64
USERNAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._@-]{{0,{USERNAME_MAX_CHARS - 1}}}$"
USERNAME_RE = re.compile(USERNAME_PATTERN)
USERNAME_RULE = (
    f"1 to {USERNAME_MAX_CHARS} letters, digits, dots, dashes, underscores or @, "
    "starting with a letter or digit"
)

# The care team's roles; a caregiver is not one of them: no clinic page or API call, only the
# family's page of the patients the care team linked (object-level check in services/family.py).
_STAFF = frozenset({Role.PHYSICIAN, Role.NURSE, Role.VIEWER})
_CARE = frozenset({Role.PHYSICIAN, Role.NURSE})
_FAMILY = frozenset({Role.CAREGIVER})
# an administrator manages accounts and reads the audit log, and sees no patient (least privilege)
_ADMIN = frozenset({Role.ADMINISTRATOR})

# action -> roles allowed. Anything not listed is refused.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": _STAFF,
    "interrogate": _CARE,
    "refill": _CARE,
    "record": _CARE,  # screening trial entries, follow-up notes
    "program": frozenset({Role.PHYSICIAN}),
    "prescribe": frozenset({Role.PHYSICIAN}),
    "manage_patients": frozenset({Role.PHYSICIAN}),
    "view_audit": frozenset({Role.PHYSICIAN, Role.ADMINISTRATOR}),  # the log, verify the chain
    "manage_users": _ADMIN,  # create, disable/enable, reset password, change role (audited)
    "own_password": _STAFF | _ADMIN,  # change one's own (caregivers: on the family's page)
    "manage_caregivers": _CARE,  # invite, revoke (audited)
    "acknowledge_report": _CARE,  # a family's report seen and acted on (audited)
    "review_refill": frozenset({Role.PHYSICIAN}),  # a flagged refill reviewed (audited)
    "set_clock": _CARE,  # correct the pump's clock (audited; the pump logs it too)
    "family_view": _FAMILY,
    "family_report": _FAMILY,
}


class AuthError(Exception):
    pass


class TooManyAttemptsError(AuthError):
    pass


def authorize(role: str | None, action: str) -> bool:
    """True only when ``action`` is known and ``role`` is one of its roles (deny by default)."""
    allowed = PERMISSIONS.get(action)
    if allowed is None or role is None:
        return False
    try:
        return Role(role) in allowed
    except ValueError:
        return False


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password: at least {MIN_PASSWORD_CHARS} characters")


def add_user(
    db: Session, username: str, role: str, password: str, actor: User | None = None
) -> User:
    """Create a user (and its audit entry) in the caller's transaction."""
    try:
        role = Role(role).value
    except ValueError:
        raise ValueError(f"role={role!r}: expected one of {', '.join(Role)}") from None
    if not USERNAME_RE.fullmatch(username):
        raise ValueError(f"username: {USERNAME_RULE}")
    check_password_strength(password)
    if db.execute(select(User.id).where(User.username == username)).first():
        raise ValueError(f"username={username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=username,
        created_at_utc=audit.utc_now(),
    )
    db.add(user)
    db.flush()
    audit.record(db, actor, "user.add", "user", user.id, None, {"username": username, "role": role})
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ensure_budget_row(db: Session, key: str, now: datetime) -> None:
    """The budget's row, inserted if missing; a concurrent insert of the same key is no error."""
    dialect = db.get_bind().dialect.name
    insert: Callable[[type[LoginBudget]], Any] = sqlite_insert
    if dialect == "postgresql":  # imported on use: the dialect's modules cost start-up time
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert = pg_insert
    values = {"key": key, "window_start_utc": now, "used": 0}
    db.execute(insert(LoginBudget).values(values).on_conflict_do_nothing(index_elements=["key"]))


def _reserve(db: Session, key: str, limit: int, now: datetime) -> bool:
    """Take one attempt from ``key``'s budget: one conditional UPDATE, so that concurrent
    requests (threads, workers, servers on one database) can never take more than ``limit``
    within a window. A window older than LOGIN_WINDOW starts afresh with this attempt."""
    _ensure_budget_row(db, key, now)
    expired = LoginBudget.window_start_utc <= now - LOGIN_WINDOW
    result = db.execute(
        update(LoginBudget)
        .where(LoginBudget.key == key, or_(LoginBudget.used < limit, expired))
        .values(
            used=case((expired, 1), else_=LoginBudget.used + 1),
            window_start_utc=case((expired, now), else_=LoginBudget.window_start_utc),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(cast("CursorResult[Any]", result).rowcount == 1)


def _give_back(db: Session, key: str, *, all_of_it: bool = False) -> None:
    used = literal(0) if all_of_it else LoginBudget.used - 1
    db.execute(
        update(LoginBudget)
        .where(LoginBudget.key == key, LoginBudget.used > 0)
        .values(used=used)
        .execution_options(synchronize_session=False)
    )


def reserve_attempt(db: Session, username: str, client: str, now: datetime) -> None:
    """Reserve this log-in attempt in the database, committed, before any password is checked;
    TooManyAttemptsError (nothing reserved) when the username or the client has none left."""
    db.commit()  # start from a fresh transaction whose first statement is a write
    user_key, client_key = f"user:{username[:64]}", f"client:{client[:64]}"
    granted = _reserve(db, user_key, MAX_FAILURES_PER_USERNAME, now)
    if granted and not _reserve(db, client_key, MAX_FAILURES_PER_CLIENT, now):
        _give_back(db, user_key)
        granted = False
    db.commit()
    if not granted:
        raise TooManyAttemptsError("too many failed log-ins; try again in 15 minutes")


def _password_ok(user: User | None, password: str) -> bool:
    if user is None or not user.active:
        _HASHER.hash(password)  # same cost whether or not the user exists
        return False
    try:
        return _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(user: User, password: str) -> bool:
    """The user's password is ``password`` (and the account is active): the one check."""
    return _password_ok(user, password)


def authenticate(db: Session, username: str, password: str, client: str) -> User:
    """Check the password under the rate limit; record the failure or the login. Commits.

    The attempt is reserved first (:func:`reserve_attempt`): a failed one keeps its
    reservation, a successful one gives its username's budget and its client's unit back.
    """
    now = audit.utc_now()
    reserve_attempt(db, username, client, now)
    user = db.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not _password_ok(user, password):
        db.add(LoginFailure(username=username[:64], client=client[:64], at_utc=now))
        audit.record(db, None, "login.failed", "user", username[:64])
        db.commit()
        raise AuthError("unknown username or wrong password")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.execute(delete(LoginFailure).where(LoginFailure.username == username))
    _give_back(db, f"user:{username[:64]}", all_of_it=True)
    _give_back(db, f"client:{client[:64]}")
    return user


def start_session(db: Session, user: User) -> tuple[str, WebSession]:
    """A new session for ``user``; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = audit.utc_now()
    web_session = WebSession(
        token_sha256=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at_utc=now,
        expires_at_utc=now + SESSION_LIFETIME,
    )
    db.add(web_session)
    audit.record(db, user, "login", "user", user.id)
    db.commit()
    return token, web_session


def session_for_token(db: Session, token: str | None, now: datetime) -> WebSession | None:
    if not token:
        return None
    web_session = db.execute(
        select(WebSession).where(WebSession.token_sha256 == _token_hash(token))
    ).scalar_one_or_none()
    if web_session is None or web_session.expires_at_utc <= now or not web_session.user.active:
        return None
    return web_session


def end_session(db: Session, web_session: WebSession) -> None:
    """Log out: the server forgets the session, so the cookie is worthless even if kept."""
    user = web_session.user
    db.delete(web_session)
    audit.record(db, user, "logout", "user", user.id)
    db.commit()
