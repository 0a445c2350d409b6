"""One's own account: change one's password (every role), and log out.

``/account/password`` for the care team and administrators (``own_password``), the one page a
one-time password opens (web/deps.py sends every other page here until it is replaced);
``/family/account`` for a caregiver, on the family's page. The current password is required,
and every other session of the user ends (services/users.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from itb.clinic import audit, auth
from itb.clinic.errors import ConflictError, InputError
from itb.clinic.models import Role
from itb.clinic.services import users as service
from itb.clinic.services.one_time_passwords import ONE_TIME_PASSWORD_LIFETIME_DAYS
from itb.web.deps import OWN_PASSWORD, Caller, Db, need, session_cookie_name
from itb.web.pages.common import FORM_TEXT_MAX_CHARS, redirect, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=FORM_TEXT_MAX_CHARS)]

FIELD_WORDS = {
    "current": "Current password",
    "new": "New password",
    "repeat": "New password again",
}


def home_of(role: str) -> str:
    """Where a user lands after logging in or changing their password."""
    if role == Role.CAREGIVER.value:
        return "/family"
    if role == Role.ADMINISTRATOR.value:
        return "/admin/users"
    return "/"


def _page(
    request: Request, caller: Caller, status: int = 200, *, error: str = "", done: bool = False
) -> HTMLResponse:
    family_page = caller.user.role == Role.CAREGIVER.value
    return render(
        request, "account_password.html", caller, status,
        state=service.password_state(caller.user, audit.utc_now()), error=error, done=done,
        base="family_base.html" if family_page else "base.html",
        action="/family/account" if family_page else "/account/password",
        home=home_of(caller.user.role), one_time_days=ONE_TIME_PASSWORD_LIFETIME_DAYS,
    )  # fmt: skip


def _change(request: Request, db: Db, caller: Caller, change: service.PasswordChange) -> Response:
    try:
        service.change_own_password(db, caller.web_session, change)
    except InputError as exc:
        db.rollback()
        words = f"{FIELD_WORDS.get(exc.field, exc.field)}: {exc.reason}"
        return _page(request, caller, 422, error=words)
    except ConflictError as exc:
        db.rollback()
        return _page(request, caller, 409, error=str(exc))
    return _page(request, caller, done=True)


@router.get("/account/password", response_class=HTMLResponse)
def password_form(
    request: Request, caller: Caller = need(OWN_PASSWORD, page=True, one_time_password=True)
) -> Response:
    return _page(request, caller)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    db: Db,
    current: FormText = "",
    new: FormText = "",
    repeat: FormText = "",
    caller: Caller = need(OWN_PASSWORD, page=True, form=True, one_time_password=True),
) -> Response:
    return _change(request, db, caller, service.PasswordChange(current, new, repeat))


@router.get("/family/account", response_class=HTMLResponse)
def family_password_form(
    request: Request, db: Db, caller: Caller = need("family_view", page=True)
) -> Response:
    return _page(request, caller)


@router.post("/family/account", response_class=HTMLResponse)
def family_change_password(
    request: Request,
    db: Db,
    current: FormText = "",
    new: FormText = "",
    repeat: FormText = "",
    caller: Caller = need("family_view", page=True, form=True),
) -> Response:
    return _change(request, db, caller, service.PasswordChange(current, new, repeat))


@router.post("/account/logout")
def logout(
    request: Request,
    db: Db,
    caller: Caller = need(OWN_PASSWORD, page=True, form=True, one_time_password=True),
) -> Response:
    """Log out, for every care-team role and for an account still on a one-time password."""
    auth.end_session(db, caller.web_session)
    response = redirect("/login")
    response.delete_cookie(session_cookie_name(request), path="/")
    return response
