"""Request dependencies: the database session, the signed-in user, the role check, CSRF.

Every route but the public ones (log-in, static files, the OpenAPI spec) depends on
:func:`need` with an action; :func:`itb.clinic.auth.authorize` decides, denying by default.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from itb.clinic import audit, auth
from itb.clinic.models import Role, User, WebSession

SESSION_COOKIE = "itb_session"
SECURE_SESSION_COOKIE = "__Host-itb_session"  # HTTPS only: Secure, Path=/, no Domain
LOGIN_CSRF_COOKIE = "itb_login_csrf"
OWN_PASSWORD = "own_password"  # change one's own password (care team, administrators)
OWN_PASSWORD_PAGE = "/account/password"
# Where an account still on a one-time password sets its own (ASVS 2.3.1): the family's page for
# a caregiver, the account page for everyone else. The one gate is in ``_caller``.
FAMILY_PASSWORD_PAGE = "/family/password"


def own_password_page(role: str) -> str:
    """The page where an account of ``role`` on a one-time password sets its own."""
    return FAMILY_PASSWORD_PAGE if role == Role.CAREGIVER.value else OWN_PASSWORD_PAGE


# Sent with every answer (docs/clinic.md, "Security"); a response may set its own CSP.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """A page (not an API route) asked for without a session: redirect to the log-in page."""


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as db:
        yield db


# Closed when the route returns (its answer already built), not after the answer is sent: a
# keep-alive client's next request otherwise finds the connection still held, the pool
# overflows, and PostgreSQL forks and drops a backend for each overflow (issue 13, 2 workers).
Db = Annotated[Session, Depends(get_db, scope="function")]


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.settings.force_secure_cookies)


def session_cookie_name(request: Request) -> str:
    return SECURE_SESSION_COOKIE if is_secure(request) else SESSION_COOKIE


def set_cookie(request: Request, response: Any, name: str, value: str, max_age_s: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def client_address(request: Request) -> str:
    """The client the login limit counts: the socket's peer, unless that peer is a trusted
    proxy (``ClinicSettings.trusted_proxies``); then the nearest untrusted address of its
    X-Forwarded-For (the rightmost: the proxy appended it; what is left of it the client wrote)."""
    peer = request.client.host if request.client else "unknown"
    trusted: frozenset[str] = request.app.state.settings.trusted_proxies
    if peer not in trusted:
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted:
            return hop[:64]
    return peer


def now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.settings.clock
    return clock()


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    web_session: WebSession
    action: str


def _web_session(request: Request, db: Session) -> WebSession | None:
    token = request.cookies.get(session_cookie_name(request))
    return auth.session_for_token(db, token, audit.utc_now())


def need(
    action: str, *, page: bool = False, form: bool = False, one_time_password: bool = False
) -> Any:
    """A dependency: a signed-in user allowed to do ``action`` (401/redirect, else 403).

    ``form``: a state-changing HTML form, whose ``csrf_token`` must match the session's.
    ``one_time_password``: a route an account still on a one-time password may use (setting
    its own, logging out); every other route sends it to :func:`own_password_page` first.
    The session lookup is database work: it runs in the thread pool (a plain ``def``
    dependency, or ``run_in_threadpool`` where the form must be awaited), never on the event
    loop, where it would stall every other request.
    """
    gate = _Gate(action, page, one_time_password)

    def signed_in(request: Request, db: Db) -> Caller:
        return _caller(request, db, gate)

    async def signed_in_form(request: Request, db: Db) -> Caller:
        caller = await run_in_threadpool(_caller, request, db, gate)
        submitted = (await request.form()).get("csrf_token")
        if not isinstance(submitted, str) or not secrets.compare_digest(
            submitted, caller.web_session.csrf_token
        ):
            raise HTTPException(403, "the form's CSRF token is missing or stale; reload")
        return caller

    dependency: Any = signed_in_form if form else signed_in
    dependency.itb_action = action  # read by the route audit test
    return Depends(dependency)


@dataclass(frozen=True, slots=True)
class _Gate:
    action: str
    page: bool
    one_time_password: bool


def _caller(request: Request, db: Session, gate: _Gate) -> Caller:
    web_session = _web_session(request, db)
    if web_session is None:
        if gate.page:
            raise LoginRequired()
        raise HTTPException(401, "log in first: POST /api/login")
    user = web_session.user
    if not auth.authorize(user.role, gate.action):
        raise HTTPException(403, f"a {user.role} may not {gate.action.replace('_', ' ')}")
    if user.one_time_password_until_utc is not None and not gate.one_time_password:
        # a one-time password (an invitation, an administrator's reset) opens one page: set
        # your own there (ASVS 2.3.1); expired, that page says so and offers nothing else
        where = own_password_page(user.role)
        if gate.page:
            raise HTTPException(303, "set your own password first", {"Location": where})
        raise HTTPException(403, f"set your own password first: {where}")
    return Caller(user, web_session, gate.action)
