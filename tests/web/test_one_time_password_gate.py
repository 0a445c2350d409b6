"""One gate for every route (``itb.web.deps``): an account on a one-time password (a new
account, an invitation or an administrator's reset) reaches only the page where it sets its own
and log-out. Every other page sends it to that page (the family's for a caregiver, the
account page for everyone else) and every API call is refused naming it. Walks every route."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from itb.clinic import auth
from itb.clinic.models import Role
from itb.web.app import PUBLIC_ROUTES, app_routes, route_action
from tests.clinic.support import Clinic
from tests.web.test_admin import ADMIN, _log_in, _one_time_password, _user_id

# what an account on a one-time password may use: set its own, or leave
OPEN_TO_ONE_TIME = frozenset(
    {
        ("GET", "/account/password"),
        ("POST", "/account/password"),
        ("POST", "/account/logout"),
        ("GET", "/family/password"),
        ("POST", "/family/password"),
        ("POST", "/family/logout"),
        ("POST", "/api/logout"),
    }
)


def _reset(clinic: Clinic, username: str) -> str:
    csrf = _log_in(clinic.client, ADMIN)
    user_id = _user_id(clinic, username)
    answer = clinic.client.post(f"/admin/users/{user_id}/reset", data={"csrf_token": csrf})
    assert answer.status_code == 200, answer.text
    return _one_time_password(answer.text)


@pytest.mark.parametrize(
    ("username", "role", "own_page"),
    [
        ("nurse_demo", Role.NURSE, "/account/password"),
        ("dr_demo", Role.PHYSICIAN, "/account/password"),
        ("parent_demo", Role.CAREGIVER, "/family/password"),
    ],
)
def test_every_route_but_setting_ones_own_password_sends_a_one_time_password_there(
    clinic: Clinic, username: str, role: Role, own_page: str
) -> None:
    one_time = _reset(clinic, username)
    user = TestClient(clinic.app)
    _log_in(user, username, one_time)
    assert user.get(own_page).status_code == 200
    walked = 0
    for route in app_routes():
        action = route_action(route)
        for method in sorted(route.methods or ()):
            if action is None or (method, route.path) in PUBLIC_ROUTES | OPEN_TO_ONE_TIME:
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            answer = user.request(method, path, follow_redirects=False)
            where = f"{method} {route.path}"
            if not auth.authorize(role.value, action):
                assert answer.status_code == 403, where  # not this role's at all
            elif route.path.startswith("/api"):
                assert answer.status_code == 403, where
                assert own_page in answer.json()["detail"], where
            else:
                assert answer.status_code == 303, where
                assert answer.headers["location"] == own_page, where
            walked += 1
    assert walked > 50
    # and once their own is set, the same routes open
    csrf = _log_in(user, username, one_time)
    new = "a-new-password-1"
    if role is Role.CAREGIVER:
        chosen = {"csrf_token": csrf, "password": new, "repeat": new}
    else:
        chosen = {"csrf_token": csrf, "current": one_time, "new": new, "repeat": new}
    assert user.post(own_page, data=chosen, follow_redirects=False).status_code in (200, 303)
    _log_in(user, username, new)
    home = "/family" if role is Role.CAREGIVER else "/"
    assert user.get(home).status_code == 200
