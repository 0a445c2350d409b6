"""One worker of ``itb serve --workers N``: its app, built from the environment the parent set.

The parent (``itb.cli.clinic.serve``) migrates the schema once and settles pending pump commands;
every worker then opens its own database pool. Nothing a request relies on lives in a worker:
sessions, the log-in limit and the dashboard's data version are in the database.
"""

from __future__ import annotations

import asyncio
import os
import socket

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from itb.clinic.db import DATABASE_URL_ENV
from itb.web.app import create_app
from itb.web.settings import ClinicSettings

TRUSTED_PROXIES_ENV = "ITB_TRUSTED_PROXIES"  # comma-separated, as ``--trusted-proxy`` gave them


def app_from_env() -> FastAPI:
    proxies = os.environ.get(TRUSTED_PROXIES_ENV, "")
    settings = ClinicSettings(
        database_url=os.environ[DATABASE_URL_ENV],
        migrate=False,
        trusted_proxies=frozenset(p for p in proxies.split(",") if p),
    )
    return create_app(settings)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection.

    With several workers uvicorn binds the listening socket itself (protocol number 0), and
    asyncio then leaves TCP_NODELAY unset on the accepted connections (it sets it on single-
    worker ones): a small answer sent as headers then body waits for the client's delayed ACK,
    about 40 ms on Linux. ``itb serve --workers N`` serves with this protocol instead.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
