"""The pump process: boot from the state directory, resume the clock, serve the telemetry link.

``run_pump`` is what ``itb pump serve`` runs. The firmware is advanced to the clock's "now"
before every request (in the handler) and every ``tick_s`` of wall time, so alarms are raised
and logged when they happen, not only when someone asks. Images are written by the handler
before every answer to a command (and when a counter passes the stored ceiling), at start,
every ``save_every_s`` of wall time and at a clean stop (SIGTERM / SIGINT); never for a refused
frame (its log entry is saved with the next write: a keyless peer must not wear the memory).
A SIGKILL loses only what the firmware can re-derive (and at most ``save_every_s`` of link
refusals): the next boot re-advances from the last image to the current pump time, and the
deterministic firmware delivers, alarms and logs that span again exactly once.

Stopping (SIGTERM, SIGINT) is quiet and prompt whatever the load: the listener closes first,
every open link is closed (queued and half-open ones included, each ending without a
traceback), the firmware is advanced and saved, and one line says so (``STOPPED_PREFIX``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from itb.link.transport import PumpServer
from itb.pumpd.clock import PumpClock, start_clock
from itb.pumpd.handler import FirmwareHandler
from itb.pumpd.state import StateDir
from itb.telemetry.endpoint import PumpEndpoint
from itb.therapy import from_pump_s

DEFAULT_TICK_S = 0.25
DEFAULT_SAVE_EVERY_S = 30.0
READY_PREFIX = "itb pump listening on"
STOPPED_PREFIX = "itb pump stopped"


@dataclass(slots=True)
class Pump:
    """A booted pump: firmware handler, endpoint and clock."""

    state: StateDir
    handler: FirmwareHandler
    endpoint: PumpEndpoint
    clock: PumpClock


def boot_pump(state: StateDir, speed: float, wall: Callable[[], float] = time.time) -> Pump:
    """Boot from the newest valid bank, resume the clock, advance over the down time, log a
    ``power_on`` entry and save. The caller holds the state directory's lock."""
    state.remove_stale_temporaries()
    booted = state.boot()
    fw = booted.firmware
    image_t_s = fw.t_s
    clock, gap_s = start_clock(state, image_t_s, speed, wall)
    handler = FirmwareHandler(fw, state, clock.now, booted.paired_keys, booted.link_state)
    handler.advance()
    fw.record(
        fw.now,
        "power_on",
        {
            "image_at": from_pump_s(image_t_s).isoformat(),
            "since_image_s": round(gap_s, 6),
            "speed": speed,
            "generation": booted.generation,
        },
    )
    endpoint = PumpEndpoint(
        state.pump_private_key(),
        booted.paired_keys,
        handler,
        random_bytes=os.urandom,  # the challenges of two-step commands
        state=booted.link_state,
    )
    handler.save()
    return Pump(state, handler, endpoint, clock)


async def serve(
    pump: Pump,
    host: str,
    port: int,
    *,
    out: TextIO = sys.stdout,
    tick_s: float = DEFAULT_TICK_S,
    save_every_s: float = DEFAULT_SAVE_EVERY_S,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT). Prints the ready line with the address."""
    handler = pump.handler
    server = PumpServer(pump.endpoint, on_session_start=handler.new_link)
    tcp = await server.serve_tcp(host, port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    told: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        told.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
    bound_host, bound_port = tcp.sockets[0].getsockname()[:2]
    print(f"{READY_PREFIX} {bound_host}:{bound_port}", file=out, flush=True)
    last_save = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
            handler.advance()
            server.tick()  # a due summary of refused unauthenticated frames is logged
            if time.monotonic() - last_save >= save_every_s:
                handler.save()
                last_save = time.monotonic()
    finally:
        tcp.close()
        await server.close()
        handler.advance()
        handler.save()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tcp.wait_closed(), 1.0)
        why = f" on {told[0]}" if told else ""
        print(
            f"{STOPPED_PREFIX}{why}: every connection closed, state saved at pump time "
            f"{handler.firmware.now.isoformat(timespec='minutes')}",
            file=out,
            flush=True,
        )


def run_pump(state: StateDir, host: str, port: int, speed: float) -> None:
    """Lock the state directory, boot, and serve until told to stop."""
    with state.locked():
        pump = boot_pump(state, speed)
        asyncio.run(serve(pump, host, port))
