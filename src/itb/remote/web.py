"""``itb remote serve``: the remote's page on 127.0.0.1 only, so a family uses a browser.

Safe against other web pages the family's browser has open: a POST needs this process's random
token from the page (CSRF; a foreign page cannot read it), a foreign ``Origin`` is refused, and
the ``Host`` must be the loopback address the page is served on (no DNS rebinding). The page
cannot be framed (clickjacking) and runs no script. After a POST the answer is shown through a
redirect, so a reload never asks for a second bolus.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from itb.remote.page import CSS, render_page
from itb.remote.session import Remote, RemoteAnswer, ask_bolus, read_status
from itb.remote.words import RemoteStatus

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
KEPT_ANSWERS = 20  # the last answers shown after their redirect


def create_remote_app(remote: Remote, port: int) -> FastAPI:
    """The page for ``remote``, served on 127.0.0.1:``port``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    token = secrets.token_urlsafe(32)
    answers: dict[str, RemoteAnswer] = {}
    allowed_hosts = {f"{host}:{port}" for host in LOOPBACK_HOSTS}
    allowed_origins = {f"http://{host}" for host in allowed_hosts}

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.headers.get("host", "") not in allowed_hosts:
            response: Response = PlainTextResponse(
                "This page answers on its loopback address only.", 400
            )
        elif (
            request.method != "GET" and request.headers.get("origin", "null") not in allowed_origins
        ):
            response = PlainTextResponse("Refused: the request did not come from this page.", 403)
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    async def home(answer: str = "") -> HTMLResponse:
        shown = answers.get(answer)
        settled: tuple[str, ...] = ()
        problem = None
        status: RemoteStatus | None
        if shown is not None and shown.status is not None:
            status = shown.status
        else:
            current = await run_in_threadpool(read_status, remote)
            status, settled = current.status, current.settled
            problem = current if current.status is None else None
        html = render_page(
            answer=shown, status=status, problem=problem, settled=settled, csrf_token=token
        )
        return HTMLResponse(html)

    @app.post("/bolus")
    async def bolus(csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
        if not secrets.compare_digest(csrf_token, token):
            return PlainTextResponse(
                "Refused: the page was old or not this remote's; reload it.", 403
            )
        answer = await run_in_threadpool(ask_bolus, remote)
        key = secrets.token_urlsafe(8)
        answers[key] = answer
        while len(answers) > KEPT_ANSWERS:
            answers.pop(next(iter(answers)))
        return RedirectResponse(f"/?answer={key}", status_code=303)

    @app.get("/remote.css")
    async def css() -> Response:
        return Response(CSS, media_type="text/css")

    return app
