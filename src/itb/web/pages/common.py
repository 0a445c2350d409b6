"""What every page module shares: rendering with the session's context, the error page,
redirects after a form, the path and form types, and the notices a redirect can show."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from itb.clinic import auth
from itb.programmer.program_table import program_table
from itb.programmer.record_words import details_words, kind_words
from itb.web.citations import cite_sources
from itb.web.clinic_time import clinic_day, clinic_minute, pump_minute
from itb.web.deps import Caller, now
from itb.web.validation import error_words

DB_ID_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
FORM_TEXT_MAX_CHARS = 4000  # any one form field; longer is a 422 before a route runs

# Amber on the dashboard, the patient page and the reports: due within this many days [R].
# A pump replacement (ERI) is surgery to plan months ahead; EOS is past ERI already.
SOON_DAYS = {"due": 7.0, "eri": 180.0, "eos": 30.0}

# ``?notice=...`` after a redirect: the words shown in the page's notice box.
NOTICES = {
    "refilled": "Refill completed and recorded.",
    "refilled_flagged": "Refill recorded. The withdrawn volume was flagged: see the visit below "
    "(possible pocket fill, catheter or pump problem).",
    "programmed": "New program sent to the pump and recorded.",
    "interrogated": "Pump interrogated.",
    "screening": "Screening dose recorded: result and decision below.",
    "created": "Patient created. Record the implant when the pump is in.",
    "implanted": "Implant recorded: pump, catheter, first fill and program version 1.",
    "replaced": "Pump replacement recorded: the old pump is retired, the catheter kept.",
    # edit, follow-up, flagged refill review
    "edited": "Patient details saved (the audit log keeps the values before and after).",
    "unchanged": "Nothing was changed.",
    "followed_up": "Follow-up visit recorded.",
    "refill_reviewed": "Flagged refill reviewed: it no longer shows on the dashboard.",
}


class NoticeBox(TypedDict):
    notice: str  # the words shown
    notice_key: str  # what happened (``data-notice``), one of NOTICES' keys or ""


def notice_box(key: str) -> NoticeBox:
    """The notice box after a redirect; an unknown key shows nothing."""
    known = key if key in NOTICES else ""
    return {"notice": NOTICES.get(known, ""), "notice_key": known}


def render(
    request: Request, name: str, caller: Caller | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A template with the signed-in user, the CSRF token, the role check, the clinic's
    clock and the words of :func:`page_words` added to ``context``; each source code in the
    page's text becomes a "why?" link (:func:`itb.web.citations.cite_sources`)."""
    templates = request.app.state.templates
    user = caller.user if caller else None
    context |= {
        "user": user,
        "csrf_token": caller.web_session.csrf_token if caller else "",
        "can": (lambda action: auth.authorize(user.role, action)) if user else (lambda a: False),
        "now": now(request),
        "soon_days": SOON_DAYS,
    } | page_words(request)
    response: HTMLResponse = templates.TemplateResponse(request, name, context, status_code=status)
    return HTMLResponse(cite_sources(bytes(response.body).decode()), status_code=status)


def page_words(request: Request) -> dict[str, Any]:
    """How a page says a time, a program, a record and an error: ``when(t)`` a clinic time to
    the minute in the clinic's zone, named; ``pump_when(t)`` a pump's time the same way (H78);
    ``day(t)`` a date; ``program_table(p)`` a program's schedule rows; ``record_words(d)`` a
    visit's or an event's details as phrases with units; ``kind_words(k)``; ``error_words(e)``
    a refusal naming the field as its form labels it."""
    zone = request.app.state.settings.zone
    return {
        "when": lambda value: clinic_minute(value, zone),
        "pump_when": lambda value: pump_minute(value, zone),
        "day": clinic_day,
        "program_table": program_table,
        "record_words": lambda details: details_words(details, lambda t: clinic_minute(t, zone)),
        "kind_words": kind_words,
        "error_words": error_words,
    }


def error_page(
    request: Request, status: int, message: str, sentences: list[str] | None = None
) -> HTMLResponse:
    """The app's error page: a heading in words for ``status``, and the message (or one line
    per refused field)."""
    return render(
        request,
        "error.html",
        None,
        status,
        status_code=status,
        heading=ERROR_HEADINGS.get(status, "Something went wrong"),
        message=message,
        sentences=sentences or [message],
    )


# The error page's heading by HTTP status, in words.
ERROR_HEADINGS = {
    400: "Please check what was entered",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    409: "This cannot be done now",
    413: "Too much was sent",
    422: "Please check what was entered",
    429: "Too many attempts",
    503: "The pump cannot be reached",
    504: "The pump did not answer in time",
}


def redirect(url: str) -> RedirectResponse:
    """After a form: 303, so that a reload does not post it again."""
    return RedirectResponse(url, status_code=303)
