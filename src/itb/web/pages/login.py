"""Log in and out. The log-in form carries its own CSRF token (a short-lived cookie), since
there is no session yet to hold one."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from itb.clinic import auth
from itb.web.deps import (
    LOGIN_CSRF_COOKIE,
    Caller,
    Db,
    client_address,
    need,
    session_cookie_name,
    set_cookie,
)
from itb.web.pages.account import home_of
from itb.web.pages.common import FORM_TEXT_MAX_CHARS, redirect, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=FORM_TEXT_MAX_CHARS)]
LOGIN_FORM_LIFETIME_S = 600
USERNAME_MAX_CHARS = 64
ERROR_MAX_CHARS = 200


@router.get("/login")
def login_form(request: Request, error: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token, error=error[:ERROR_MAX_CHARS])
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, LOGIN_FORM_LIFETIME_S)
    return response


@router.post("/login")
def login(
    request: Request,
    db: Db,
    username: FormText = "",
    password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return redirect("/login?error=Your+log-in+form+expired%3B+try+again")
    client = client_address(request)
    try:
        user = auth.authenticate(db, username[:USERNAME_MAX_CHARS], password, client)
    except auth.TooManyAttemptsError as exc:
        return render(request, "login.html", None, 429, login_csrf=expected, error=str(exc))
    except auth.AuthError as exc:
        return render(request, "login.html", None, 401, login_csrf=expected, error=str(exc))
    token, _ = auth.start_session(db, user)
    # a caregiver's home is the family's page (issue 16), an administrator's the accounts,
    # the care team's the dashboard
    response = redirect(home_of(user.role))
    max_age_s = int(auth.SESSION_LIFETIME.total_seconds())
    set_cookie(request, response, session_cookie_name(request), token, max_age_s)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request, db: Db, caller: Caller = need("view", page=True, form=True)
) -> Response:
    auth.end_session(db, caller.web_session)
    response = redirect("/login")
    response.delete_cookie(session_cookie_name(request), path="/")
    return response
