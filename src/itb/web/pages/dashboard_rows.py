"""The dashboard's rows as the page shows them, built once in Python: words, numbers to one
decimal, dates to the minute, and each cell's urgency (red overdue, amber soon).

The template loops over these plain rows; no macro is called per cell. Each cell's span is
built here, every value in it escaped (:func:`markupsafe.escape`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from itb.clinic.services.views import DashboardRow

MINUTE_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"

FLAGGED_REFILL_WORDS = (
    "Refill flagged: withdrawn volume out of range, awaiting a physician's review"
)

_NONE = Markup('<span class="muted" data-urgency="none">—</span>')


def _span(urgency: str, text: str, overdue_title: str) -> Markup:
    # f-strings over escaped values: several times cheaper than Markup.format, 700 cells a page;
    # every value below is escaped first, so Markup is safe (the nosec B704 lines)
    shown, kind = escape(text), escape(urgency)
    if urgency == "ok":
        return Markup(f'<span data-urgency="ok">{shown}</span>')  # nosec B704
    title = f' title="{escape(overdue_title)}"' if urgency == "overdue" else ""
    # every value is escaped above
    return Markup(f'<span class="{kind}"{title} data-urgency="{kind}">{shown}</span>')  # nosec B704


def _urgency(days: float, warn_days: float) -> str:
    if days <= 0:
        return "overdue"
    return "soon" if days < warn_days else "ok"


def days_cell(days: float | None, warn_days: float) -> Markup:
    """Days from now to one decimal; at or below zero it reads 0.0 or the days overdue."""
    if days is None:
        return _NONE
    text = f"{days:.1f}" if days > 0 or days <= -0.05 else "0.0"
    return _span(_urgency(days, warn_days), text, "overdue")


def due_cell(when: datetime | None, days: float | None, warn_days: float) -> Markup:
    """A due date to the minute, coloured by the days left."""
    if when is None:
        return _NONE
    urgency = "ok" if days is None else _urgency(days, warn_days)
    return _span(urgency, when.strftime(MINUTE_FORMAT), "due now or overdue")


@dataclass(frozen=True, slots=True)
class RowView:
    id: int
    name: str
    mrn: str
    serial: str  # "" without a pump (the data attribute)
    pump: str  # the serial, or "no pump"
    clinician: str
    harm: str  # the harm's key ("" without one), for data-harm
    days_to_harm_attr: str  # one decimal, or ""
    harm_words: str
    days_to_harm: Markup
    conflict: str  # the sentence when the next refill is due after EOS, else ""
    reservoir: str
    days_to_low_reservoir: Markup
    days_to_empty: Markup
    days_to_stability_limit: Markup
    days_to_eri: Markup
    days_to_eos: Markup | None  # shown under ERI once ERI is reached
    next_refill: Markup
    next_due_attr: str  # the next refill's date (YYYY-MM-DD), or ""
    # a flagged refill awaits a physician's review: the mark's words, else ""
    flagged_refill: str = ""


def row_view(r: DashboardRow, soon_days: dict[str, float]) -> RowView:
    due = soon_days["due"]
    past_eri = r.days_to_eri is not None and r.days_to_eri <= 0
    return RowView(
        id=r.id,
        name=r.name,
        mrn=r.mrn,
        serial=r.serial or "",
        pump=r.serial or "no pump",
        clinician=r.clinician or "—",
        harm=r.harm.value if r.harm else "",
        days_to_harm_attr=f"{r.days_to_harm:.1f}" if r.days_to_harm is not None else "",
        harm_words=r.harm_words,
        days_to_harm=days_cell(r.days_to_harm, due),
        conflict=_conflict(r),
        reservoir=f"{r.reservoir_ml:.1f}" if r.reservoir_ml is not None else "—",
        days_to_low_reservoir=days_cell(r.days_to_low_reservoir, due),
        days_to_empty=days_cell(r.days_to_empty, due),
        days_to_stability_limit=days_cell(r.days_to_stability_limit, due),
        days_to_eri=days_cell(r.days_to_eri, soon_days["eri"]),
        days_to_eos=days_cell(r.days_to_eos, soon_days["eos"]) if past_eri else None,
        next_refill=due_cell(r.next_refill_at, r.days_to_next_refill, due),
        next_due_attr=r.next_refill_at.strftime(DATE_FORMAT) if r.next_refill_at else "",
        flagged_refill=FLAGGED_REFILL_WORDS if r.flagged_refill else "",
    )


def _conflict(r: DashboardRow) -> str:
    if not (r.refill_after_eos and r.next_refill_at and r.eos_at):
        return ""
    return (
        f"Conflict: the next refill ({r.next_refill_at.strftime(MINUTE_FORMAT)}) is due after "
        f"the pump stops delivering (EOS {r.eos_at.strftime(MINUTE_FORMAT)}): "
        "replace the pump first."
    )
