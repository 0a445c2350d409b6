"""An in-process pump (pumpd) served on 127.0.0.1 from a background thread, for client tests."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from itb.link.client import PumpAddress
from itb.link.keys import KeyOwner, load_public_key, write_keypair
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.server import Pump, boot_pump, serve
from itb.pumpd.state import StateDir
from itb.telemetry.endpoint import Role
from itb.therapy import continuous

START = datetime(2027, 1, 4, 8, 0)


@dataclass
class ServedPump:
    state: StateDir
    address: PumpAddress
    key_file: Path
    pump_key_file: Path
    port: int
    pump: Pump  # the in-process pump: its endpoint counts the handshakes it answered


@contextmanager
def served_pump(tmp_path: Path, role: Role = Role.CLINICIAN) -> Iterator[ServedPump]:
    state = StateDir(tmp_path / "pump")
    state.create(
        Firmware.implant(
            pump_model("peristaltic-20"), START, serial="T-1", concentration_ug_per_ml=500.0,
            volume_ml=20.0, program=continuous(600.0),
        )
    )  # fmt: skip
    key_file, pub_file = write_keypair(tmp_path / "programmer", KeyOwner.PROGRAMMER)
    with state.locked():
        state.pair(load_public_key(pub_file, KeyOwner.PROGRAMMER), role)
    pump_pub = state.write_pump_public_key()
    state.lock()
    pump = boot_pump(state, speed=60.0)
    out = io.StringIO()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(pump, "127.0.0.1", 0, out=out, stop=stop, tick_s=0.05))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10.0
        while "listening" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        port = int(out.getvalue().strip().rsplit(":", 1)[1])
        address = PumpAddress.from_files(f"127.0.0.1:{port}", key_file, pump_pub)
        yield ServedPump(state, address, key_file, pump_pub, port, pump)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        state.unlock()
