"""/sources: the sources behind the app's rules, where each "why?" link lands.

The list is docs/domain.md's (:mod:`itb.web.source_list`); ``?cite=S24,S28`` marks the ones a
"why?" link stood for, so the reader sees them first. A default no source confirms (``[R]`` in
the docs) is explained at ``#unconfirmed``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from itb.web.deps import Caller, Db, need
from itb.web.pages.common import render
from itb.web.source_list import SOURCES

router = APIRouter(include_in_schema=False)

_CODE = re.compile(r"S\d+[a-z]?")


def cited(cite: str) -> list[str]:
    """The known codes in ``?cite=`` (at most a handful; anything else is ignored)."""
    codes = [c for c in _CODE.findall(cite[:200]) if c.rstrip("abcdefghij") in SOURCES]
    return list(dict.fromkeys(codes))[:12]


@router.get("/sources")
def sources_page(
    request: Request,
    db: Db,
    cite: str = "",
    caller: Caller = need("view", page=True),
) -> HTMLResponse:
    marked = cited(cite)
    return render(
        request,
        "sources.html",
        caller,
        sources=[(code, *SOURCES[code]) for code in SOURCES],
        marked=marked,
        marked_sources=[(code, *SOURCES[code.rstrip("abcdefghij")]) for code in marked],
    )
