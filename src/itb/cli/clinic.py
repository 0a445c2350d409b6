"""``itb serve`` (the care team's web app) and ``itb user add`` (accounts), on one database.

The lead registers them in ``itb.cli``::

    app.command("serve")(clinic.serve)
    app.add_typer(clinic.user_app, name="user")
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from itb.clinic.db import (
    DATABASE_URL_ENV,
    make_engine,
    make_session_factory,
    resolve_database_url,
    upgrade_to_head,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from itb.clinic.pumps import PumpLinks
    from itb.web.settings import ClinicSettings

user_app = typer.Typer(help="Clinic user accounts.", no_args_is_help=True)


@user_app.callback()
def users() -> None:
    """Clinic user accounts (a group even with one command: ``itb user add``)."""


DatabaseUrl = typer.Option(
    None,
    "--database-url",
    help=f"SQLAlchemy URL; else ${DATABASE_URL_ENV}; else a SQLite file in the user data dir.",
)


def serve(  # noqa: PLR0913  (a Typer command: its options are its parameters)
    demo: bool = typer.Option(False, "--demo", help="A fresh demo clinic with simulated pumps."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    database_url: str | None = DatabaseUrl,
    demo_speed: float = typer.Option(
        1.0, "--demo-speed", min=0.0, max=100_000.0, help="Simulated seconds per real second."
    ),
    pumps_file: Path | None = typer.Option(
        None,
        "--pumps",
        help="The pump directory (TOML, [[pump]] serial, address, pump_key): pumps served by "
        "`itb pump serve`, reached over telemetry. Not with --demo.",
    ),
    programmer_key: Path | None = typer.Option(
        None,
        "--programmer-key",
        help="The clinic's programmer.key, paired with the clinician role on each pump.",
    ),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="A reverse proxy's address whose X-Forwarded-For is believed (repeatable). "
        "Default: none; the client is the socket's peer (docs/security.md).",
    ),
) -> None:
    """Serve the clinic web app; the schema is created or migrated at start."""
    import uvicorn

    from itb.web.app import create_app
    from itb.web.settings import ClinicSettings

    if demo and (pumps_file or programmer_key):
        typer.echo("error: --pumps and --programmer-key are not for --demo", err=True)
        raise typer.Exit(2)
    if demo:
        settings = _demo_settings(database_url, demo_speed)
    else:
        settings = ClinicSettings(
            database_url=resolve_database_url(database_url),
            links=_telemetry_pumps(pumps_file, programmer_key),
        )
    settings.trusted_proxies = frozenset(trusted_proxy)
    app = create_app(settings)
    if demo:
        _seed_demo(app.state.sessions, settings)
    _reconcile_pending(app.state.sessions, settings)
    typer.echo(
        f"OpenITB clinic on http://{host}:{port}/  (database: {_safe(settings.database_url)})"
    )
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any loopback peer as
    # the client (rotating it dodged the login limit); ClinicSettings.trusted_proxies decides
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def _demo_settings(database_url: str | None, demo_speed: float) -> ClinicSettings:
    """A demo clinic: simulated pumps on a clock running ``demo_speed`` times real time."""
    from itb.clinic.pumps import DemoClock, SimulatedPumps
    from itb.web.settings import ClinicSettings, local_now

    explicit = database_url or os.environ.get(DATABASE_URL_ENV)
    url = explicit or _fresh_demo_sqlite()
    clock = DemoClock(local_now(), demo_speed)
    return ClinicSettings(database_url=url, links=SimulatedPumps(clock), clock=clock)


def _seed_demo(sessions: Callable[[], Session], settings: ClinicSettings) -> None:
    """The demo patients and accounts, into an empty database only (exit 2 otherwise)."""
    from itb.clinic import demo as demo_clinic
    from itb.clinic import services
    from itb.clinic.pumps import SimulatedPumps

    assert isinstance(settings.links, SimulatedPumps)  # made so by _demo_settings
    with sessions() as db:
        if services.dashboard(db, settings.clock(), limit=1)[1]:
            typer.echo("the database already has patients: use an empty one for --demo", err=True)
            raise typer.Exit(2)
        accounts = demo_clinic.seed_demo(db, settings.links, settings.clock())
    typer.echo("Demo clinic (simulated pumps; not a medical device). Accounts:")
    for account in accounts:
        typer.echo(f"  {account.role:<10} {account.username:<12} password: {account.password}")


def _reconcile_pending(sessions: Callable[[], Session], settings: ClinicSettings) -> None:
    """Settle the pump commands a previous run left pending (sent, outcome unknown)."""
    from itb.clinic import services
    from itb.clinic.pumps import PumpUnreachableError

    with sessions() as db:
        try:
            settled = services.reconcile_pending(db, settings.links, settings.clock())
        except PumpUnreachableError as exc:
            settled = []
            typer.echo(f"pump commands left pending (pump not reachable): {exc}", err=True)
    for visit in settled:
        typer.echo(f"reconciled visit {visit.id} ({visit.kind}): {visit.status}")


def _telemetry_pumps(pumps_file: Path | None, programmer_key: Path | None) -> PumpLinks:
    """The pumps of ``--pumps`` over telemetry; no pumps without it. Exit 2 on a bad file."""
    from itb.clinic.pumps import NoPumps
    from itb.clinic.telemetry_links import PumpDirectoryError, TelemetryPumps

    if pumps_file is None and programmer_key is None:
        return NoPumps()
    if pumps_file is None or programmer_key is None:
        missing = "--pumps" if pumps_file is None else "--programmer-key"
        typer.echo(f"error: {missing}: needed with the other one", err=True)
        raise typer.Exit(2)
    try:
        pumps = TelemetryPumps.from_files(pumps_file, programmer_key)
    except PumpDirectoryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"pumps over telemetry: {', '.join(pumps.serials())}")
    return pumps


def _fresh_demo_sqlite() -> str:
    import platformdirs

    data_dir = Path(platformdirs.user_data_dir("openitb", appauthor=False))
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _safe(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="1 to 64 letters, digits or underscores."),
    role: str = typer.Option(..., "--role", help="physician, nurse or viewer"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (first line)."
    ),
    database_url: str | None = DatabaseUrl,
) -> None:
    """Create a user (the first physician, say) on the clinic's database."""
    from itb.clinic import auth

    if not password_stdin:
        typer.echo("give the password on standard input with --password-stdin", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    engine = make_engine(resolve_database_url(database_url))
    upgrade_to_head(engine)
    with make_session_factory(engine)() as db:
        try:
            user = auth.add_user(db, username, role, password)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        db.commit()
        typer.echo(f"added {user.role} {user.username}")
    engine.dispose()
