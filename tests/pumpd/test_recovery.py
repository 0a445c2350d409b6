"""Both settings banks corrupt, over real TCP: the paired clinician still reaches the pump, sees
its safe state, an unknown concentration and the critical alarm; the corrupt bytes are kept and
``itb pump serve`` says so in one line; a refill sets the concentration again; the event log,
kept apart in its journal, still settles a command sent before the loss (H54)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from itb.link.client import PumpAddress, PumpSession
from itb.pumpd.files import corrupt_copies
from itb.pumpd.state import BANK_FILES
from tests.pumpd.support import ITB, PumpProcess, connection, itb_json, make_pump

SPEED = 60.0


class WarnedPump(PumpProcess):
    """``itb pump serve`` with its stderr kept in a file (the start-up warning is read)."""

    def __init__(self, state: Path, stderr_path: Path) -> None:
        super().__init__(state, SPEED, stderr_path)
        self.warnings_path = stderr_path

    def warnings(self) -> list[str]:
        lines = self.warnings_path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if line.startswith("warning:")]


def _flip_a_byte(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


async def _resolve(conn: list[str], request_id: str) -> str:
    address = PumpAddress.from_files(conn[1], Path(conn[3]), Path(conn[5]))
    session = await PumpSession.connect(address)
    try:
        return str((await session.resolve([request_id]))[request_id])
    finally:
        await session.close()


def test_both_banks_corrupt_the_paired_clinician_still_reaches_the_safe_stated_pump(
    tmp_path: Path,
) -> None:
    pump_dir, (clinician,) = make_pump(tmp_path, "clinician")
    pump = WarnedPump(pump_dir, tmp_path / "serve.err")
    try:
        pump.start()  # a pump in service: its clock has run
        assert itb_json("programmer", "interrogate", *connection(pump, clinician))[0] == 0
        code, sent = itb_json(
            "programmer", "program", *connection(pump, clinician), "--rate-ug-per-day", "620"
        )
        assert (code, sent["status"]) == (0, "done"), sent
        assert pump.terminate() == 0
        assert pump.warnings() == []  # a clean memory says nothing
        corrupt = {name: _flip_a_byte(pump_dir / name) for name in BANK_FILES}
        pump.start()
        conn = connection(pump, clinician)
        code, status = itb_json("programmer", "interrogate", *conn)
        assert code == 0, status
        assert status["mode"] == "safe_state"
        assert status["concentration_ug_per_ml"] is None
        assert status["program"] is None
        assert ("memory_error", "critical") in {
            (a["kind"], a["priority"]) for a in status["alarms"]
        }
        # the program sent before the loss is still settled from the pump's own log (H54)
        assert asyncio.run(_resolve(conn, sent["request_id"])) == "applied"

        # a program needs the concentration: refused before anything is sent
        code, out = itb_json("programmer", "program", *conn, "--rate-ug-per-day", "600")
        assert code != 0 and out["field"] == "concentration_ug_per_ml", out
        assert itb_json("programmer", "interrogate", *conn)[1]["mode"] == "safe_state"

        # a refill sets it; the pump still runs its minimum flow, now known in µg
        code, out = itb_json(
            "programmer", "refill", *conn, "--withdrawn-ml", "19.9", "--volume-ml", "18",
            "--concentration-ug-per-ml", "500", "--acknowledge-discrepancy",
        )  # fmt: skip
        assert (code, out["status"]) == (0, "done"), out
        code, after = itb_json("programmer", "interrogate", *conn)
        assert after["concentration_ug_per_ml"] == 500.0
        assert after["mode"] == "safe_state" and after["program"] is not None
    finally:
        pump.kill()

    (warning,) = pump.warnings()
    assert "both settings banks (bank0.bin, bank1.bin) failed their check" in warning
    for name, data in corrupt.items():
        (copy,) = corrupt_copies(pump_dir / name)
        assert copy.read_bytes() == data
        assert str(copy) in warning


def test_serve_names_a_missing_state_directory_not_the_listen_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [ITB, "pump", "serve", "--state", str(tmp_path / "missing"), "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a pump state directory" in result.stderr and "listen" not in result.stderr
    assert not (tmp_path / "missing").exists()
