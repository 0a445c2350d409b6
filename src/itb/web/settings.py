"""What the web app needs at start: the database, the pumps it can reach, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from itb.clinic.pumps import NoPumps, PumpLinks
from itb.web.clinic_time import clinic_zone


def local_now() -> datetime:
    """The clinic's clock: naive local time in the clinic's zone, like the pump clocks."""
    return datetime.now(clinic_zone()).replace(tzinfo=None, microsecond=0)


@dataclass
class ClinicSettings:
    database_url: str
    links: PumpLinks = field(default_factory=NoPumps)
    clock: Callable[[], datetime] = local_now
    # The zone every time on a page is shown in, named (itb.web.clinic_time; H78).
    zone: tzinfo = field(default_factory=clinic_zone)
    # Behind a TLS-terminating proxy, set this so that cookies are __Host- and Secure.
    force_secure_cookies: bool = False
    migrate: bool = True
    # The largest request body read, in bytes (413 above it, before any parsing): the biggest
    # real body, a week program, is a few KB.
    max_body_bytes: int = 256 * 1024
    # Addresses of reverse proxies whose X-Forwarded-For is believed (docs/security.md). Empty,
    # the default: the client is the socket's peer, whatever the headers say, so rotating
    # X-Forwarded-For cannot dodge the per-client login limit.
    trusted_proxies: frozenset[str] = frozenset()
