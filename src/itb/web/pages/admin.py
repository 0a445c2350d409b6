"""The administrator's pages: every account and the audit log.

``/admin/users``: every account (create a care-team account, disable/enable, reset password,
change a care-team role; a caregiver's account is listed with the patients it is linked to,
and reset or disabled here; services/users.py), administrators only. ``/admin/audit``: the
audit log with filters and the "verify the chain" action, for administrators and physicians
(``view_audit``): the log names patients, and a physician answers for the clinic's records;
nurses and viewers do not read it. A one-time password is shown on the answer to the form
that made it, never in a URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from itb.clinic.errors import ConflictError, InputError
from itb.clinic.services import audit_log
from itb.clinic.services import users as service
from itb.clinic.services.one_time_passwords import ONE_TIME_PASSWORD_LIFETIME_DAYS
from itb.web.deps import Caller, Db, need
from itb.web.pages.common import DB_ID_MAX, FORM_TEXT_MAX_CHARS, redirect, render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=FORM_TEXT_MAX_CHARS)]
UserId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
FilterText = Annotated[str, Field(max_length=audit_log.FILTER_MAX_CHARS)]

# The fields as these pages' forms label them (a refusal names the field so).
FIELD_WORDS = {
    "username": "Username",
    "role": "Role",
    "who": "Who (username)",
    "what": "What",
    "patient": "Patient (MRN)",
    "from": "From (UTC)",
    "to": "To (UTC)",
}

USER_NOTICES = {
    "disabled": "Account disabled; its sessions have ended.",
    "enabled": "Account enabled.",
    "role": "Role changed; it applies from the account's next page.",
}


def refusal_words(exc: InputError) -> str:
    return f"{FIELD_WORDS.get(exc.field, exc.field.capitalize())}: {exc.reason}"


def _users_page(
    request: Request, db: Db, caller: Caller, status: int = 200, **extra: object
) -> HTMLResponse:
    return render(
        request, "admin_users.html", caller, status, accounts=service.list_accounts(db),
        roles=service.MANAGED_ROLES, role_words=service.ROLE_WORDS,
        one_time_days=ONE_TIME_PASSWORD_LIFETIME_DAYS,
        **({"notice": "", "error": "", "issued": None, "issued_action": ""} | extra),
    )  # fmt: skip


def _refused(request: Request, db: Db, caller: Caller, exc: Exception) -> HTMLResponse:
    """The page again with the refusal in words (nothing was changed)."""
    db.rollback()
    if isinstance(exc, InputError):
        return _users_page(request, db, caller, 422, error=refusal_words(exc))
    return _users_page(request, db, caller, 409, error=str(exc))


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request, db: Db, notice: str = "", caller: Caller = need("manage_users", page=True)
) -> HTMLResponse:
    return _users_page(request, db, caller, notice=USER_NOTICES.get(notice, ""))


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    db: Db,
    username: FormText = "",
    role: FormText = "",
    caller: Caller = need("manage_users", page=True, form=True),
) -> HTMLResponse:
    try:
        issued = service.create_account(db, caller.user, username, role)
    except (InputError, ConflictError) as exc:
        return _refused(request, db, caller, exc)
    return _users_page(request, db, caller, issued=issued, issued_action="created")


@router.post("/admin/users/{user_id}/reset", response_class=HTMLResponse)
def reset_password(
    user_id: UserId,
    request: Request,
    db: Db,
    caller: Caller = need("manage_users", page=True, form=True),
) -> HTMLResponse:
    issued = service.reset_password(db, caller.user, user_id)
    return _users_page(request, db, caller, issued=issued, issued_action="reset")


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
def set_active(
    user_id: UserId,
    request: Request,
    db: Db,
    active: FormText = "",
    caller: Caller = need("manage_users", page=True, form=True),
) -> Response:
    try:
        service.set_active(db, caller.user, user_id, active == "yes")
    except ConflictError as exc:
        return _refused(request, db, caller, exc)
    return redirect(f"/admin/users?notice={'enabled' if active == 'yes' else 'disabled'}")


@router.post("/admin/users/{user_id}/role", response_class=HTMLResponse)
def change_role(
    user_id: UserId,
    request: Request,
    db: Db,
    role: FormText = "",
    caller: Caller = need("manage_users", page=True, form=True),
) -> Response:
    try:
        service.change_role(db, caller.user, user_id, role)
    except (InputError, ConflictError) as exc:
        return _refused(request, db, caller, exc)
    return redirect("/admin/users?notice=role")


# The audit log ------------------------------------------------------------------------------
def _audit_page(
    request: Request,
    db: Db,
    caller: Caller,
    wanted: audit_log.AuditFilter,
    chain: audit_log.ChainWords | None = None,
) -> HTMLResponse:
    try:
        page = audit_log.audit_page(db, wanted)
        error = ""
    except InputError as exc:
        page = audit_log.AuditPage([], False)
        error = refusal_words(exc)
    return render(
        request, "admin_audit.html", caller, 422 if error else 200, page=page, wanted=wanted,
        chain=chain, error=error, page_entries=audit_log.PAGE_ENTRIES,
        action_words=audit_log.action_words,
    )  # fmt: skip


class AuditQuery(BaseModel):
    """The audit log's filters, as typed in the page's form (the service checks each)."""

    model_config = ConfigDict(extra="ignore")
    who: FilterText = ""
    what: FilterText = ""
    patient: FilterText = ""
    from_utc: FilterText = ""
    to_utc: FilterText = ""


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    db: Db,
    query: Annotated[AuditQuery, Query()],
    caller: Caller = need("view_audit", page=True),
) -> HTMLResponse:
    wanted = audit_log.AuditFilter(
        query.who, query.what, query.patient, query.from_utc, query.to_utc
    )
    return _audit_page(request, db, caller, wanted)


@router.post("/admin/audit/verify", response_class=HTMLResponse)
def verify_chain(
    request: Request, db: Db, caller: Caller = need("view_audit", page=True, form=True)
) -> HTMLResponse:
    chain = audit_log.verify_in_words(db, caller.user)
    return _audit_page(request, db, caller, audit_log.AuditFilter(), chain)
