"""The care team's web app: server-rendered pages and a JSON API under /api (FastAPI)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from itb.clinic import auth
from itb.clinic.db import make_engine, make_session_factory, upgrade_to_head
from itb.clinic.errors import ConflictError, NotFoundError, SerialMismatchError
from itb.clinic.pumps import PumpCommandUncertainError, PumpUnreachableError
from itb.errors import InputError
from itb.web import (
    api,
    api_family,
    api_fhir,
    api_pump_actions,  # bolus, stop/resume, clear alarm
    pages,
)
from itb.web.api_docs import install_api_docs
from itb.web.deps import SECURITY_HEADERS, LoginRequired
from itb.web.guards import BodyLimit, SecurityHeaders
from itb.web.pages import family as family_pages
from itb.web.settings import ClinicSettings
from itb.web.validation import (
    input_error_sentence,
    refused_in_path,
    validation_detail,
    validation_sentences,
)

HERE = Path(__file__).parent


def create_app(settings: ClinicSettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    if settings.migrate:
        upgrade_to_head(engine)
    app = ClinicApp(
        title="OpenITB clinic",
        version="0.1.0",
        description="The care team's API. Simulation only: not a medical device.",
        docs_url=None,  # served offline by install_api_docs
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # The pages first: FastAPI builds an included router's routes on the first request that
    # passes it, and the first page asked for, the log-in page, then builds the log-in router's
    # routes only, not the API's. No page's path begins with /api and every API path does, so
    # the order changes no answer.
    for router in pages.ROUTERS:
        app.include_router(router)
    app.include_router(family_pages.router)
    app.include_router(api.router)
    app.include_router(api_fhir.router)
    app.include_router(api_family.router)
    app.include_router(api_pump_actions.router)
    install_api_docs(app, "/api/openapi.json")
    _add_error_handlers(app)
    return app


class ClinicApp(FastAPI):
    """FastAPI with the guards outermost: the body limit and the security headers wrap the
    whole stack, its 500 answers included (``itb.web.guards``)."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        limited = BodyLimit(stack, self.state.settings.max_body_bytes)
        return SecurityHeaders(limited, SECURITY_HEADERS)


PUBLIC_ROUTES = frozenset({("POST", "/api/login"), ("GET", "/login"), ("POST", "/login")})


def app_routes() -> list[APIRoute]:
    """Every route of the app (the role-check test walks them)."""
    routers = (
        api.router,
        api_fhir.router,
        api_family.router,
        api_pump_actions.router,
        *pages.ROUTERS,
        family_pages.router,
    )
    return [route for router in routers for route in router.routes if isinstance(route, APIRoute)]


def route_action(route: APIRoute) -> str | None:
    """The action a route's role check asks for (None: the route has no role check)."""
    for dependency in route.dependant.dependencies:
        action = getattr(dependency.call, "itb_action", None)
        if action is not None:
            return str(action)
    return None


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _invalid_request_answer(request: Request, errors: Sequence[Any]) -> Response:
    """A refused request: the API's 422 JSON; a page's error page in words, 404 for a bad
    address (``/patients/abc``: no such page), 422 for a bad form."""
    if _is_api(request):
        return JSONResponse({"detail": validation_detail(errors)}, status_code=422)
    status = 404 if refused_in_path(errors) else 422
    sentences = validation_sentences(errors)
    return pages.error_page(request, status, " ".join(sentences), sentences)


def _add_error_handlers(app: FastAPI) -> None:
    def page_or_json(
        request: Request, status: int, message: str, field: str | None = None
    ) -> Response:
        if _is_api(request):
            if field is not None:
                detail = [{"loc": ["body", field], "msg": message, "type": "value_error"}]
                return JSONResponse({"detail": detail}, status_code=status)
            return JSONResponse({"detail": message}, status_code=status)
        return pages.error_page(request, status, message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        response = page_or_json(request, exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # JSON-safe by construction: the refused input is not echoed (NaN cannot be encoded,
        # and a password has no place in an error answer)
        return _invalid_request_answer(request, exc.errors())

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Response:
        if _is_api(request):
            return page_or_json(request, 422, str(exc), exc.field)
        return pages.error_page(request, 422, input_error_sentence(exc.field, exc.reason, str(exc)))

    for error, status in (
        (NotFoundError, 404),
        (ConflictError, 409),
        (SerialMismatchError, 409),
        (PumpUnreachableError, 503),
        (PumpCommandUncertainError, 504),
        (auth.TooManyAttemptsError, 429),
        (auth.AuthError, 401),
    ):

        def handler(request: Request, exc: Exception, status: int = status) -> Response:
            return page_or_json(request, status, str(exc))

        app.add_exception_handler(error, handler)
