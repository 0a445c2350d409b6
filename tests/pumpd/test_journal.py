"""The event log's journal on disk (issue 13 item 3, hazard H54): each save appends what changed,
a power cut at any byte of an append loses at most that record (whole), the log and the link's
kept answers go with the settings bank a boot picks, and they survive losing both banks."""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from pathlib import Path

from itb.link.keys import generate_private_key, public_key_of
from itb.pump import journal
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pumpd.files import corrupt_copies
from itb.pumpd.handler import FirmwareHandler
from itb.pumpd.journal import JOURNAL_FILE
from itb.pumpd.state import BANK_FILES, StateDir
from itb.telemetry.endpoint import (
    PairedKey,
    ProgrammerConnection,
    PumpEndpoint,
    ResponseReceived,
    Role,
)
from itb.telemetry.messages import (
    Accepted,
    Commit,
    LogRecord,
    Prepare,
    Prepared,
    Request,
    Response,
    SetProgram,
)
from itb.telemetry.outcomes import Resolution, resolve_uncertain
from itb.therapy import continuous

START = datetime(2027, 1, 4, 8, 0)
RID = "00112233445566778899aabbccddeeff"


def _pump(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "pump")
    fw = Firmware.implant(
        pump_model("peristaltic-20"), START, serial="T-1", concentration_ug_per_ml=500.0,
        volume_ml=20.0, program=continuous(600.0),
    )  # fmt: skip
    state.create(fw)
    return state


def _records(state: StateDir) -> list[LogRecord]:
    log = state.boot().firmware.log
    return [LogRecord(e.seq, e.at, e.kind, dict(e.data)) for e in log.entries()]  # type: ignore[arg-type]


def _commit_a_program(state: StateDir) -> Response:
    """A clinician's program change, prepared and committed through the real endpoint."""
    programmer = generate_private_key()
    paired = [PairedKey(public_key_of(programmer), Role.CLINICIAN)]
    booted = state.boot()
    handler = FirmwareHandler(booted.firmware, state, lambda: START, paired, booted.link_state)
    endpoint = PumpEndpoint(state.pump_private_key(), paired, handler, random_bytes=os.urandom)
    conn = ProgrammerConnection(programmer, public_key_of(state.pump_private_key()))
    pump = endpoint.connection()
    conn.receive_data(pump.receive_data(conn.start_handshake(), 0.0))

    def ask(request: Request) -> Response:
        _, frame = conn.send(request)
        (event,) = conn.receive_data(pump.receive_data(frame, 0.0))
        assert isinstance(event, ResponseReceived)
        return event.response

    prepared = ask(Prepare(SetProgram(RID, {"rate_ug_per_day": 650.0})))
    assert isinstance(prepared, Prepared)
    return ask(Commit(prepared.request_id, prepared.challenge))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_losing_both_banks_keeps_the_log_and_the_settled_command_answers(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    assert isinstance(_commit_a_program(state), Accepted)
    for name in BANK_FILES:
        _flip_a_byte(state.path / name)

    booted = StateDir(state.path).boot()
    assert booted.firmware.mode.value == "safe_state"  # the settings are gone ...
    records = _records(StateDir(state.path))
    kinds = [r.kind for r in records]
    assert kinds[0] == "implant" and kinds[-1] == "alarm"  # ... the log is whole, then the alarm
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    # ... so the command a programmer could not confirm is still settled from the pump's log,
    assert resolve_uncertain(RID, records) is Resolution.APPLIED
    # ... and its kept answer is still there for a retransmission.
    assert booted.link_state is not None
    assert RID in {kept["request_id"] for kept in booted.link_state["kept_answers"]}
    # The safe-stated pump saves (its first bank after the loss) and restarts: still whole,
    # then the alarm for the bank that is still bad.
    again = StateDir(state.path)
    rebooted = again.boot()
    again.write_image(rebooted.firmware, rebooted.link_state)
    after = StateDir(state.path).boot()
    kept = [e.to_state() for e in rebooted.firmware.log.entries()]
    assert [e.to_state() for e in after.firmware.log.entries()][: len(kept)] == kept
    assert after.link_state == booted.link_state and len(after.bad_banks) == 1


def test_a_power_cut_at_every_byte_of_a_journal_append_keeps_the_old_log_or_the_new(
    tmp_path: Path,
) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    fw = booted.firmware
    path = state.path / JOURNAL_FILE
    before = path.read_bytes()
    old = [e.to_state() for e in fw.log.entries()]
    fw.record(fw.now, "refill", {"volume_ml": 18.0, "concentration_ug_per_ml": 500.0})
    state.write_image(fw, booted.link_state)
    after = path.read_bytes()
    assert after.startswith(before)  # appended, not rewritten
    new = [e.to_state() for e in fw.log.entries()]
    banks = {name: (state.path / name).read_bytes() for name in BANK_FILES}
    for cut in range(len(before), len(after) + 1):
        path.write_bytes(after[:cut])
        again = StateDir(state.path)
        got = [e.to_state() for e in again.boot().firmware.log.entries()]
        assert got == (new if cut == len(after) else old), cut
        if cut in (len(before) + 1, len(after) - 1):  # the next save cuts the torn tail off
            check = again.boot()
            check.firmware.record(check.firmware.now, "alarm", {"alarm": "low_reservoir"})
            again.write_image(check.firmware, check.link_state)
            replayed = journal.replay(path.read_bytes(), check.generation + 1)
            assert replayed.unread_bytes == 0 and replayed.log is not None
            assert [e.kind for e in replayed.log.entries()][-1] == "alarm"
            assert corrupt_copies(path) == []  # a torn tail is not evidence: nothing kept
            for name, data in banks.items():
                (state.path / name).write_bytes(data)


def test_a_record_whose_bank_write_was_cut_goes_with_it_and_is_kept_aside(tmp_path: Path) -> None:
    # The journal record of generation g+1 landed; bank g+1 did not. Killed before the bank
    # write began (both banks good): the record is cut off, nothing kept. The bank write torn
    # by a power cut (bank g+1 fails its check): the record is cut off and the journal kept.
    for torn in (False, True):
        state = _pump(tmp_path / str(torn))
        booted = state.boot()
        banks = {name: (state.path / name).read_bytes() for name in BANK_FILES}
        fw = booted.firmware
        fw.record(fw.now, "refill", {"volume_ml": 18.0, "concentration_ug_per_ml": 500.0})
        state.write_image(fw, booted.link_state)
        for name, data in banks.items():
            written = (state.path / name).read_bytes()
            cut = written[: len(written) // 2]  # the new bank, torn
            (state.path / name).write_bytes(cut if torn and written != data else data)
        again = StateDir(state.path)
        back = again.boot()
        assert back.generation == booted.generation and bool(back.bad_banks) is torn
        assert "refill" not in [e.kind for e in back.firmware.log.entries()]  # log = settings
        again.write_image(back.firmware, back.link_state)
        replayed = journal.replay((state.path / JOURNAL_FILE).read_bytes(), None)
        assert replayed.unread_bytes == 0 and replayed.log is not None
        assert "refill" not in [e.kind for e in replayed.log.entries()]
        assert len(corrupt_copies(state.path / JOURNAL_FILE)) == (1 if torn else 0)


def test_a_save_of_refusals_and_link_state_writes_no_settings_bank(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    writes = state.bank_writes
    fw = booted.firmware
    fw.record(fw.now, "link_refusals", {"count": 40})
    link = {"format": 1, "counter_ceiling": 128, "kept_answers": []}
    generation = state.write_image(fw, link, settings=False)
    assert generation == booted.generation and state.bank_writes == writes
    again = StateDir(state.path).boot()
    assert again.link_state == link
    assert [e.kind for e in again.firmware.log.entries()][-1] == "link_refusals"
    fw.record(fw.now, "alarm", {"alarm": "low_reservoir"})  # a clinical entry: the bank too
    assert state.write_image(fw, link, settings=False) == generation + 1
    assert state.bank_writes == writes + 1


def test_the_journal_is_compacted_and_stays_bounded(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    fw = booted.firmware
    path = state.path / JOURNAL_FILE
    sizes = []
    for i in range(3000):
        fw.record(fw.now, "command", {"request_id": f"{i:032x}", "outcome": "applied"})
        kept = [{"request_id": f"{i:032x}", "response": "x" * 300}]
        state.write_image(fw, {"format": 1, "counter_ceiling": i, "kept_answers": kept})
        sizes.append(path.stat().st_size)
    snapshot = len(journal.snapshot(0, fw.log, None))
    assert max(sizes) <= 2 * snapshot + journal.COMPACT_SLACK_BYTES + 2000
    assert any(b < a for a, b in itertools.pairwise(sizes))  # it was compacted
    again = StateDir(state.path).boot()
    assert again.firmware.log.to_state() == fw.log.to_state()


def test_a_damaged_journal_is_kept_aside_and_named_in_the_start_warning(tmp_path: Path) -> None:
    state = _pump(tmp_path)
    booted = state.boot()
    fw = booted.firmware
    fw.record(fw.now, "refill", {"volume_ml": 18.0, "concentration_ug_per_ml": 500.0})
    state.write_image(fw, booted.link_state)
    path = state.path / JOURNAL_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last record: a flash fault, not a torn write
    path.write_bytes(bytes(data))
    findings = StateDir(state.path).keep_corrupt_copies()
    warning = findings.warning()
    assert warning is not None and "journal has a damaged record" in warning
    (copy,) = corrupt_copies(path)
    assert copy.read_bytes() == bytes(data) and str(copy) in warning
    again = StateDir(state.path).boot()
    assert again.firmware.log.lost_count == 1  # the refill's entry: counted, not renumbered
    assert "refill" not in [e.kind for e in again.firmware.log.entries()]
