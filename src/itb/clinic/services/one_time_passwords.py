"""One-time passwords, the one mechanism for every account: an administrator's new account or
reset, and a caregiver's invitation or reset.

A one-time password is generated, shown once to whoever hands it over, and kept as the account's
password hash with ``users.one_time_password_until_utc`` (migration 0009; a caregiver's
invitation moved there in 0010). Until its owner chooses their own password it opens only the
page to do so (web/deps.py for the care team, the family's pages for a caregiver), and after
that time not even that page: ask for a new one.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from itb.clinic import auth
from itb.clinic.models import User

# 96 random bits, 16 URL-safe characters: read out over the phone, never guessed
ONE_TIME_PASSWORD_BYTES = 12
# ASVS 2.3.1: a generated initial password is used once (to set one's own) and expires soon [R].
ONE_TIME_PASSWORD_LIFETIME = timedelta(days=7)
ONE_TIME_PASSWORD_LIFETIME_DAYS = ONE_TIME_PASSWORD_LIFETIME.days  # as the pages say it


class PasswordState:
    READY = "ready"  # the user's own password is set
    PENDING = "pending"  # on a one-time password: set your own first
    EXPIRED = "expired"  # the one-time password is past its time: ask for a new one


def new_one_time_password() -> str:
    return secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)


def one_time_until(now_utc: datetime) -> datetime:
    """When a one-time password given at ``now_utc`` expires."""
    return now_utc + ONE_TIME_PASSWORD_LIFETIME


def reissue(user: User, now_utc: datetime) -> str:
    """A new one-time password replaces the account's password; returned to be shown once."""
    password = new_one_time_password()
    user.password_hash = auth.hash_password(password)
    user.one_time_password_until_utc = one_time_until(now_utc)
    return password


def password_state(user: User, now_utc: datetime) -> str:
    """READY, PENDING or EXPIRED (:class:`PasswordState`)."""
    until = user.one_time_password_until_utc
    if until is None:
        return PasswordState.READY
    return PasswordState.PENDING if now_utc < until else PasswordState.EXPIRED
