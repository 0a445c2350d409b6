"""schemathesis against the OpenAPI spec, signed in as a physician: no server error anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from itb.web.app import create_app
from itb.web.settings import ClinicSettings
from tests.clinic.support import DEMO_PASSWORD, Template, template_for

EXAMPLES_PER_OPERATION = 30


def test_api_answers_without_server_errors(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, Template],
    fast_hashing: None,
) -> None:
    url, pumps, clock = template_for("sqlite", templates, tmp_path_factory.getbasetemp()).copy(
        tmp_path
    )
    app = create_app(ClinicSettings(database_url=url, links=pumps, clock=clock))
    with TestClient(app) as client:
        response = client.post(
            "/api/login", json={"username": "dr_demo", "password": DEMO_PASSWORD}
        )
        cookie = response.headers["set-cookie"].split(";", 1)[0]
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    statuses: set[int] = set()
    for operation in operations:
        if operation.path == "/api/logout":
            continue  # it would end the session the other operations use

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            answer = case.call_and_validate(headers={"Cookie": cookie}, checks=[not_a_server_error])
            statuses.add(answer.status_code)

        check()
    assert {200, 404, 422} <= statuses  # signed in: the calls reached the handlers
    app.state.engine.dispose()
