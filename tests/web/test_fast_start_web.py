"""``itb serve`` starts fast (issue 13): the app imports only what its first page needs, the
pages come before the API without changing which route answers, and start-up leaves the
garbage collector on. Checked as behaviour (a fresh interpreter's ``sys.modules``, the route
table), never by timing (speed is bench/bench_clinic)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import typer
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from itb.cli.clinic import serve
from itb.web import api, api_family, api_fhir, api_pump_actions, pages
from itb.web.pages import family as family_pages

# Loaded by the request that needs them: the FHIR export, the PDF drawing, the migrations (the
# server's start runs them before the app is built), the PostgreSQL dialect (a SQLite clinic).
LOADED_ON_USE = (
    "fhir.resources",
    "matplotlib",
    "scipy",
    "alembic",
    "sqlalchemy.dialects.postgresql",
    "itb.clinic.fhir",
    "itb.clinic.print_pdf",
    "itb.clinic.printout",
)
PROBE = """
import json, sys
from itb.web.app import create_app
from itb.web.settings import ClinicSettings

create_app(ClinicSettings(database_url=sys.argv[1], migrate=False))
print(json.dumps(sorted(set(sys.modules) & set(json.loads(sys.argv[2])))))
"""


def test_the_app_is_built_without_the_code_of_requests_not_yet_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url, json.dumps(LOADED_ON_USE)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []


def _paths(routers: tuple[object, ...]) -> list[str]:
    return [
        route.path
        for router in routers
        for route in getattr(router, "routes", [])
        if isinstance(route, APIRoute)
    ]


def test_no_page_can_answer_an_api_address_nor_the_api_a_page_address() -> None:
    """The app includes the pages before the API (the log-in page answers first); this keeps
    that order from changing any answer."""
    page_paths = _paths((*pages.ROUTERS, family_pages.router))
    api_paths = _paths((api.router, api_fhir.router, api_family.router, api_pump_actions.router))
    assert page_paths and api_paths
    assert [p for p in page_paths if p == "/api" or p.startswith(("/api/", "/{"))] == []
    assert [p for p in api_paths if not p.startswith("/api/")] == []


def test_a_start_that_fails_leaves_the_garbage_collector_on(tmp_path: Path) -> None:
    """Start-up runs without collection passes; a refused start (an unreadable programmer
    key) must not leave them off in the process that called it."""
    command = typer.Typer()
    command.command()(serve)
    missing = tmp_path / "missing.key"
    refused = CliRunner().invoke(
        command,
        [
            "--database-url",
            f"sqlite:///{tmp_path / 'clinic.sqlite3'}",
            "--pumps",
            str(tmp_path / "pumps.toml"),
            "--programmer-key",
            str(missing),
        ],
    )
    assert refused.exit_code == 2, refused.output
    assert f"{missing}: cannot read" in refused.output
    assert gc.isenabled()
