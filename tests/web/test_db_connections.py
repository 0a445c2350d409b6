"""A request gives its database connection back before its answer goes out, on SQLite and
PostgreSQL.

Why it matters: a keep-alive client sends its next request as soon as it has read the answer.
A connection still held while the answer was sent made the pool overflow under load, and on
PostgreSQL every overflow connection is a backend forked and dropped again: the dashboard,
the slowest answer to send (140 kB), fell to a third of ``/api/me``'s throughput with 2 workers.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.clinic.support import DEMO_PASSWORD, Clinic


class HeldWhenSending:
    """Around the app: how many pool connections are checked out as each answer starts."""

    def __init__(self, app: ASGIApp, pool: QueuePool) -> None:
        self.app, self.pool = app, pool
        self.held: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.held.append(self.pool.checkedout())
            await send(message)

        await self.app(scope, receive, watched)


def test_no_answer_is_sent_while_its_request_holds_a_connection(clinic: Clinic) -> None:
    pool = clinic.app.state.engine.pool
    assert isinstance(pool, QueuePool)
    watcher = HeldWhenSending(clinic.app, pool)
    with TestClient(watcher) as client:
        login = {"username": "nurse_demo", "password": DEMO_PASSWORD}
        assert client.post("/api/login", json=login).status_code == 200
        watcher.held.clear()
        for path in ("/api/me", "/", "/?page=2", "/reports", "/api/patients?limit=5"):
            assert client.get(path).status_code == 200, path
    assert watcher.held == [0, 0, 0, 0, 0]
