"""``itb serve`` (the care team's web app), ``itb user add`` (accounts) and ``itb clinic
export`` (FHIR records), on one database.

The lead registers them in ``itb.cli``::

    app.command("serve")(clinic.serve)
    app.add_typer(clinic.user_app, name="user")
    app.add_typer(clinic.clinic_app, name="clinic")
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from itb.clinic.database_url import DATABASE_URL_ENV

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fastapi import FastAPI
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from itb.cli.demo_start import DemoSeeding
    from itb.clinic.pumps import PumpLinks
    from itb.web.settings import ClinicSettings

user_app = typer.Typer(help="Clinic user accounts.", no_args_is_help=True)
clinic_app = typer.Typer(help="The clinic's records: export, calendar.", no_args_is_help=True)


@clinic_app.callback()
def clinic_records() -> None:
    """The clinic's records (``itb clinic export --fhir DIR``, ``itb clinic calendar``)."""


@user_app.callback()
def users() -> None:
    """Clinic user accounts (a group even with one command: ``itb user add``)."""


DATABASE_URL_HELP = (
    f"SQLAlchemy URL; else ${DATABASE_URL_ENV}; else a SQLite file in the user data dir."
)
DatabaseUrl = typer.Option(None, "--database-url", help=DATABASE_URL_HELP)


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
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Worker processes. Sessions, the log-in limit and the dashboard's cache are kept "
        "in the database, so any worker answers any request. Not with --demo or --pumps "
        "(their pumps live in one process).",
    ),
    time_zone: str | None = typer.Option(
        None,
        "--time-zone",
        help="The clinic's time zone (IANA name, e.g. Europe/Paris): every time on a page is "
        "shown in it, named. Else $ITB_CLINIC_TZ; else the server's zone.",
    ),
) -> None:
    """Serve the clinic web app; the schema is created or migrated at start."""
    if time_zone is not None:
        _set_clinic_zone(time_zone)
    if demo and (pumps_file or programmer_key):
        typer.echo("error: --pumps and --programmer-key are not for --demo", err=True)
        raise typer.Exit(2)
    if workers > 1 and (demo or pumps_file or programmer_key):
        typer.echo(
            "error: --workers: 1 with --demo or --pumps (one process owns the pumps)", err=True
        )
        raise typer.Exit(2)
    with _start_up():
        app = _clinic_app(demo, database_url, demo_speed, pumps_file, programmer_key, trusted_proxy)
    import uvicorn

    from itb.web.worker import TRUSTED_PROXIES_ENV

    settings: ClinicSettings = app.state.settings
    typer.echo(
        f"OpenITB clinic on http://{host}:{port}/  (database: {_safe(settings.database_url)})"
    )
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any loopback peer as
    # the client (rotating it dodged the login limit); ClinicSettings.trusted_proxies decides
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
        return
    # each worker builds its own app from the environment (itb.web.worker); migrated above
    app.state.engine.dispose()
    os.environ[DATABASE_URL_ENV] = settings.database_url
    os.environ[TRUSTED_PROXIES_ENV] = ",".join(trusted_proxy)
    uvicorn.run(
        "itb.web.worker:app_from_env", factory=True, workers=workers, host=host, port=port,
        log_level="warning", proxy_headers=False, http="itb.web.worker:NoDelayH11Protocol",
    )  # fmt: skip


@contextmanager
def _start_up() -> Iterator[None]:
    """Start-up (the imports, the app, the demo's seeding) allocates much and frees little: no
    garbage-collection passes during it (a tenth of its CPU time). Once started, its objects
    are frozen out of later passes, so that the first request does not pay for one pass over
    them all (the few cycles start-up left behind are kept: about a megabyte)."""
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        gc.enable()


def _clinic_app(
    demo: bool,
    database_url: str | None,
    demo_speed: float,
    pumps_file: Path | None,
    programmer_key: Path | None,
    trusted_proxy: list[str],
) -> FastAPI:
    """The web app on its database, migrated, the demo seeded, pending pump commands settled."""
    # imported here, at start-up, with garbage collection off and before the demo's fork (as
    # when they were at module level): not by ``--help``, for which SQLAlchemy is too slow
    from itb.clinic.db import resolve_database_url
    from itb.web.settings import ClinicSettings

    seeding = None
    if demo:
        from itb.cli.demo_start import DemoSeeding

        settings = _demo_settings(database_url, demo_speed)
        # migrated and seeded in a child process while this one imports the web app
        seeding = DemoSeeding(settings.database_url, settings.clock)
        settings.migrate = False
    else:
        settings = ClinicSettings(
            database_url=resolve_database_url(database_url),
            links=_telemetry_pumps(pumps_file, programmer_key),
        )
    settings.trusted_proxies = frozenset(trusted_proxy)
    from itb.web.app import create_app

    app = create_app(settings)
    importlib.import_module("uvicorn")  # serve's next step: imported while the demo is seeded
    if seeding is not None:
        _seed_demo(seeding, settings)
    _reconcile_pending(app.state.sessions, settings)
    return app


def _set_clinic_zone(name: str) -> None:
    """``--time-zone``: checked, then set for this process and its workers (before the
    clinic's clock or zone is first read)."""
    from itb.errors import InputError
    from itb.web.clinic_time import CLINIC_TZ_ENV, clinic_zone, zone_named

    try:
        zone_named(name, "--time-zone")
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    os.environ[CLINIC_TZ_ENV] = name.strip()
    clinic_zone.cache_clear()


def _demo_settings(database_url: str | None, demo_speed: float) -> ClinicSettings:
    """A demo clinic: simulated pumps on a clock running ``demo_speed`` times real time."""
    from itb.clinic.pumps import DemoClock, SimulatedPumps
    from itb.web.settings import ClinicSettings, local_now

    explicit = database_url or os.environ.get(DATABASE_URL_ENV)
    url = explicit or _fresh_demo_sqlite()
    clock = DemoClock(local_now(), demo_speed)
    return ClinicSettings(database_url=url, links=SimulatedPumps(clock), clock=clock)


def _seed_demo(seeding: DemoSeeding, settings: ClinicSettings) -> None:
    """The demo patients and accounts, into an empty database only (exit 2 otherwise)."""
    from itb.cli.demo_start import DemoSeedError
    from itb.clinic.pumps import SimulatedPumps

    assert isinstance(settings.links, SimulatedPumps)  # made so by _demo_settings
    try:
        accounts = seeding.finish(settings.links)
    except DemoSeedError as exc:
        typer.echo(f"error: --demo: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo("Demo clinic (simulated pumps; not a medical device). Accounts:")
    for account in accounts:
        typer.echo(f"  {account.role:<13} {account.username:<12} password: {account.password}")


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


def _migrated_engine(database_url: str | None) -> Engine:
    """The clinic's database (``--database-url``, else the environment's, else the default),
    its schema brought to the latest migration."""
    # imported here: SQLAlchemy costs more than the help's whole budget (issue 13)
    from itb.clinic.db import make_engine, resolve_database_url, upgrade_to_head

    engine = make_engine(resolve_database_url(database_url))
    upgrade_to_head(engine)
    return engine


def _sessions(engine: Engine) -> Callable[[], Session]:
    from itb.clinic.db import make_session_factory

    return make_session_factory(engine)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(
        ..., help="1 to 64 letters, digits, dots, dashes, underscores or @."
    ),
    role: str = typer.Option(..., "--role", help="physician, nurse, viewer or administrator"),
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
    engine = _migrated_engine(database_url)
    with _sessions(engine)() as db:
        try:
            user = auth.add_user(db, username, role, password)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        db.commit()
        typer.echo(f"added {user.role} {user.username}")
    engine.dispose()


@clinic_app.command("export")
def clinic_export(
    fhir_dir: Path = typer.Option(
        ..., "--fhir", help="Directory to write one FHIR R4 Bundle (JSON) per patient into."
    ),
    mrn: list[str] = typer.Option(
        [], "--mrn", help="Only this patient (repeatable); default: every patient."
    ),
    database_url: str | None = DatabaseUrl,
) -> None:
    """Export patients' records as FHIR R4 Bundles, one file per patient in DIR
    (patient-<id>-<MRN>.json)."""
    import json
    from datetime import datetime

    from sqlalchemy import select

    from itb.cli.outputs import check_writable_dir
    from itb.clinic import audit, fhir
    from itb.clinic.models import Patient

    check_writable_dir(fhir_dir, "--fhir")
    engine = _migrated_engine(database_url)
    query = select(Patient).order_by(Patient.id)
    if mrn:
        query = query.where(Patient.mrn.in_(mrn))
    generated_at = datetime.now().replace(microsecond=0)  # the clinic's clock: naive local
    with _sessions(engine)() as db:
        patients = list(db.execute(query).scalars())
        missing = sorted(set(mrn) - {p.mrn for p in patients})
        if missing:
            typer.echo(f"error: --mrn: no patient with MRN {', '.join(missing)}", err=True)
            raise typer.Exit(2)
        for patient in patients:
            record = fhir.load_record(db, patient)
            bundle = fhir.validated(fhir.patient_bundle(record, generated_at, fhir.system_local))
            path = fhir_dir / f"patient-{patient.id}-{_file_safe(patient.mrn)}.json"
            path.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n")
            audit.record(
                db, None, "patient.export_fhir", "patient", patient.id, None,
                {"resources": len(bundle["entry"]), "file": path.name},
            )  # fmt: skip
            db.commit()
            typer.echo(f"{path}: {len(bundle['entry'])} FHIR resources ({patient.mrn})")
    engine.dispose()
    typer.echo(f"exported {len(patients)} patient record(s) to {fhir_dir}")


def _file_safe(text: str) -> str:
    """An MRN as part of a file name: letters, digits, dot, dash and underscore only."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)


@clinic_app.command("calendar")
def clinic_calendar(
    out: Path = typer.Option(..., "--out", help="The .ics file to write."),
    patient_label: str = typer.Option(
        "mrn",
        "--patient-label",
        help="How events name the patient: mrn (default) or initials; full_name only when "
        "you mean it (calendars sync to third parties).",
    ),
    database_url: str | None = DatabaseUrl,
) -> None:
    """Write upcoming refills and pump replacements as an .ics calendar (RFC 5545)."""
    from datetime import datetime

    from itb.cli.outputs import check_writable_file
    from itb.clinic import calendar
    from itb.errors import InputError

    try:
        label = calendar.PatientLabel(patient_label)
    except ValueError:
        allowed = ", ".join(calendar.PatientLabel)
        raise InputError("--patient-label", f"allowed {allowed}") from None
    check_writable_file(out, "--out")
    engine = _migrated_engine(database_url)
    with _sessions(engine)() as db:
        text = calendar.calendar_ics(db, datetime.now().replace(microsecond=0), None, label)
    engine.dispose()
    out.write_text(text, newline="")
    events = text.count("BEGIN:VEVENT")
    typer.echo(f"{out}: {events} event(s), patients named by {label.value.replace('_', ' ')}")
