"""Patient search (the care team: every page's header): name, MRN or pump serial."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from itb.clinic.services.search import QUERY_MAX_CHARS, RESULTS_MAX, search_patients
from itb.errors import InputError
from itb.web.deps import Caller, Db, need
from itb.web.pages.common import render

router = APIRouter(include_in_schema=False)


@router.get("/search")
def search_page(
    request: Request,
    db: Db,
    q: Annotated[str, Query(max_length=4000)] = "",
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    """The patients whose name (or last name), MRN or pump serial starts with ``q``."""
    hits, error = [], ""
    if q.strip():
        try:
            hits = search_patients(db, q)
        except InputError as exc:
            error = f"Search: {exc.reason}"
    return render(
        request,
        "search.html",
        caller,
        422 if error else 200,
        q=q[:QUERY_MAX_CHARS],
        hits=hits,
        error=error,
        results_max=RESULTS_MAX,
    )
