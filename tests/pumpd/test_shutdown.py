"""Stopping a loaded pump (issue 12): SIGTERM or SIGINT to ``itb pump serve`` while about a
thousand connections are open or still queued in the kernel, and a paired programmer holds the
session, prints no traceback, says so in one line, exits 0 promptly, and leaves a state
directory that boots clean with its whole log."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest

from itb.link.client import PumpAddress, PumpSession
from itb.pump import journal
from itb.pumpd.journal import JOURNAL_FILE
from itb.pumpd.server import STOPPED_PREFIX
from itb.pumpd.state import StateDir
from tests.pumpd.support import PumpProcess, connection, make_pump, wait_s

CONNECTIONS = 1000  # more than the accept backlog (512): some wait in the kernel's queue
STOP_WAIT_S = 10.0  # on an idle machine it takes well under a second; scaled with the load
ANSWER_WAIT_S = 5.0  # the programmer's wait for each answer while the flood is taken in
GARBAGE = b"\x00\x10garbage-that-is-not-a-frame"


def _flood(stack: ExitStack, port: int) -> None:
    """Half the sockets say nothing, half send the start of a frame and stop."""
    for i in range(CONNECTIONS):
        sock = stack.enter_context(socket.socket())
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # queued by the kernel, not yet accepted
            sock.connect(("127.0.0.1", port))
        if i % 2:
            with contextlib.suppress(OSError):  # not connected yet: it stays a silent one
                sock.send(GARBAGE)


async def _stop_during_session(
    pump: PumpProcess, address: PumpAddress, sockets: ExitStack, sig: int
) -> int:
    """The programmer's session opens first (it holds the pump's one session), the flood
    comes, the programmer still gets an answer, and then the signal."""
    session = await PumpSession.connect(address)
    try:
        assert pump.proc is not None
        await asyncio.to_thread(_flood, sockets, pump.port)
        await session.interrogate()
        pump.proc.send_signal(sig)
        return await asyncio.to_thread(pump.proc.wait, wait_s(STOP_WAIT_S))
    finally:
        await session.close()


def _last_line(pump: PumpProcess) -> str:
    """The process's last stdout line (it has exited: its stdout ends with None)."""
    last = ""
    while True:
        try:
            line = pump.lines.get(timeout=wait_s(STOP_WAIT_S))
        except queue.Empty:
            return last
        if line is None:
            return last
        last = line.strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_under_a_thousand_connections_stops_quietly_and_promptly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    stderr_path = tmp_path / "serve.err"
    pump = PumpProcess(pump_dir, stderr_path=stderr_path)
    try:
        pump.start()
        flags = connection(pump, clinician)
        answer_s = min(wait_s(ANSWER_WAIT_S), 60.0)
        address = PumpAddress.from_files(
            flags[1], Path(flags[3]), Path(flags[5]), timeout_s=answer_s
        )
        with ExitStack() as sockets:
            code = asyncio.run(_stop_during_session(pump, address, sockets, sig))
    finally:
        pump.kill()
    assert code == 0
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr and stderr.strip() == "", stderr[:2000]
    assert _last_line(pump).startswith(f"{STOPPED_PREFIX} on {sig.name}:")

    # The state is whole: both banks check, the journal has no torn or unread tail, and the
    # log's sequence numbers run without a gap from the implant to the last start.
    state = StateDir(pump_dir)
    booted = state.boot()
    assert booted.bad_banks == [] and booted.firmware.alarms == {}
    replayed = journal.replay((pump_dir / JOURNAL_FILE).read_bytes(), booted.generation)
    assert replayed.unread_bytes == 0 and not replayed.damaged
    log = booted.firmware.log
    seqs = [e.seq for e in log.entries()]
    assert seqs == list(range(1, log.next_seq)) and log.verify_chain()
    assert [e.kind for e in log.entries()].count("power_on") == 1
