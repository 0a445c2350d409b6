"""The event log's journal (issue 13, hazard H54): appended, not rewritten; a power cut at any
byte of an append loses at most that record, whole, never half of it; a record whose settings
bank was never written is not read back; a damaged journal never renumbers the log."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from itb.pump import journal, persistence
from itb.pump.eventlog import EventLog, LogEntry, canonical_json
from itb.pump.firmware import Firmware
from itb.pump.hardware import pump_model
from itb.pump.memory import DualBankMemory
from itb.pump.world import World
from itb.therapy import continuous

LINK = {"format": 1, "counter_ceiling": 64, "kept_answers": []}


def _log(count: int, capacity: int = 4096) -> EventLog:
    log = EventLog(capacity=capacity)
    for i in range(count):
        log.append(float(i), "command", {"request_id": f"{i:032x}", "outcome": "applied"})
    return log


def _journal_of(log: EventLog, generation: int = 1) -> bytes:
    return journal.snapshot(generation, log, LINK)


def _states(log: EventLog) -> list[list[object]]:
    return [e.to_state() for e in log.entries()]


def test_a_power_cut_at_every_byte_of_an_append_leaves_the_old_log_or_the_new_never_half() -> None:
    log = _log(3)
    old = _journal_of(log)
    before = _states(log)
    log.append(3.0, "alarm", {"alarm": "low_reservoir", "priority": "non_critical"})
    log.append(3.5, "link_refusals", {"count": 7})
    new_link = {**LINK, "counter_ceiling": 128}
    record = journal.transaction(1, log, log.entries_after(3), new_link)
    after = _states(log)
    for cut in range(len(record) + 1):
        replayed = journal.replay(old + record[:cut], bank_generation=1)
        assert replayed.log is not None
        got = _states(replayed.log)
        if cut < len(record):  # torn: the record is dropped whole, the link state is the old
            assert got == before and replayed.link_state == LINK, cut
            assert replayed.keep_bytes == len(old) and replayed.dropped_records == 0
        else:
            assert got == after and replayed.link_state == new_link
        assert replayed.log.verify_chain()


def test_a_record_whose_settings_bank_was_never_written_is_not_read_back() -> None:
    # The save of generation 2 appended its record, then the power failed before bank 2: the
    # pump boots on bank 1, and the log and the link state are those of bank 1.
    log = _log(2)
    data = _journal_of(log, generation=1)
    log.append(2.0, "command", {"request_id": "f" * 32, "outcome": "applied"})
    data += journal.transaction(2, log, log.entries_after(2), {**LINK, "counter_ceiling": 128})
    on_bank_1 = journal.replay(data, bank_generation=1)
    assert on_bank_1.log is not None and len(on_bank_1.log) == 2
    assert on_bank_1.link_state == LINK
    assert on_bank_1.dropped_records == 1 and on_bank_1.keep_bytes < len(data)
    on_bank_2 = journal.replay(data, bank_generation=2)
    assert on_bank_2.log is not None and len(on_bank_2.log) == 3
    # Both banks lost: nothing to check against, every readable record counts (H54).
    assert journal.replay(data, bank_generation=None).log is not None


def test_a_damaged_record_drops_it_and_what_follows_and_the_lost_entries_are_counted() -> None:
    log = _log(2)
    data = bytearray(_journal_of(log))
    cut = len(data)
    log.append(2.0, "refill", {"volume_ml": 18.0})
    data += journal.transaction(1, log, log.entries_after(2), None)
    log.append(3.0, "alarm", {"alarm": "low_reservoir"})
    data += journal.transaction(1, log, log.entries_after(3), None)
    data[cut + 12] ^= 0xFF  # a flipped bit inside the first appended record
    replayed = journal.replay(bytes(data), bank_generation=1)
    assert replayed.damaged and replayed.dropped_records >= 1 and replayed.keep_bytes == cut
    assert replayed.log is not None
    # The settings image says four entries were logged: the two unreadable ones are counted as
    # lost, and the next entry is number 5, not a second number 3.
    fw = _firmware()
    fw.log = log
    image = persistence.settings_image(fw)
    back = persistence.from_image(Firmware, image, World(reservoir_ul=20_000.0), replayed.log)
    assert back.log.lost_count == 2 and back.log.next_seq == 5
    assert [e.seq for e in back.log.entries()] == [1, 2]


def test_a_compacted_journal_reads_back_the_same_log_and_link_state() -> None:
    log = _log(50, capacity=16)  # a full ring: its lost count goes with the snapshot
    data = _journal_of(log)
    for i in range(3):
        log.append(100.0 + i, "link_refused", {"reason": "unknown_key"})
        data += journal.transaction(1, log, log.entries_after(log.next_seq - 2), None)
    replayed = journal.replay(data, bank_generation=1)
    compacted = journal.replay(_journal_of(log), bank_generation=1)
    assert replayed.log is not None and compacted.log is not None
    assert replayed.log.to_state() == log.to_state() == compacted.log.to_state()
    assert replayed.log.lost_count == 34 and replayed.log.verify_chain()


def test_compaction_is_due_only_after_as_many_bytes_as_the_snapshot_plus_the_slack() -> None:
    snapshot_bytes = 800_000
    assert not journal.should_compact(snapshot_bytes, snapshot_bytes)
    limit = 2 * snapshot_bytes + journal.COMPACT_SLACK_BYTES
    assert not journal.should_compact(limit, snapshot_bytes)
    assert journal.should_compact(limit + 1, snapshot_bytes)


def test_the_settings_image_does_not_grow_with_the_log() -> None:
    fw = _firmware()
    empty = len(persistence.settings_image(fw))
    for i in range(4000):
        fw.log.append(fw.t_s, "command", {"request_id": f"{i:032x}", "outcome": "applied"})
    assert len(persistence.settings_image(fw)) <= empty + 8  # only the next sequence number
    assert len(persistence.to_image(fw)) > 100 * empty  # the whole image carries the log


def test_both_banks_lost_keeps_the_journal_log_and_adds_the_alarm_after_it() -> None:
    log = _log(5)
    fw = persistence.boot(
        Firmware,
        DualBankMemory([bytearray(b"x" * 40), bytearray()]),
        pump_model("peristaltic-20"),
        "T-1",
        datetime(2000, 1, 3),  # the clock anchor's time may be older than the newest entry
        World(reservoir_ul=20_000.0),
        log,
    )
    entries = fw.log.entries()
    assert [e.kind for e in entries] == ["command"] * 5 + ["alarm"]
    assert entries[-1].seq == 6 and entries[-1].t_s >= entries[-2].t_s
    assert fw.concentration_lost


def test_an_entry_survives_its_journal_form_exactly() -> None:
    log = _log(1)
    (entry,) = log.entries()
    assert LogEntry.from_state(entry.to_state()) == entry


def _firmware() -> Firmware:
    return Firmware.implant(
        pump_model("peristaltic-20"), datetime(2027, 1, 4, 8, 0), serial="T-1",
        concentration_ug_per_ml=500.0, volume_ml=20.0, program=continuous(600.0),
    )  # fmt: skip


def test_entries_a_ring_dropped_before_they_were_journaled_are_counted_as_lost() -> None:
    log = EventLog(capacity=8, security_capacity=2)
    log.append(0.0, "implant", {"serial": "T-1"})
    data = _journal_of(log)
    for i in range(5):  # five refusals between two saves: the ring keeps two
        log.append(1.0 + i, "link_refused", {"reason": "unknown_key"})
    data += journal.transaction(1, log, log.entries_after(1), None)
    replayed = journal.replay(data, bank_generation=1)
    assert replayed.log is not None
    assert replayed.log.security_lost_count == 3 == log.security_lost_count
    assert replayed.log.next_seq == log.next_seq == 7


def test_the_link_state_is_journaled_as_its_change_and_reads_back_whole() -> None:
    kept = [{"request_id": f"{i:032x}", "response": "r" * 200} for i in range(32)]
    before = {"format": 1, "counter_ceiling": 64, "kept_answers": kept}
    after = {"format": 1, "counter_ceiling": 128, "kept_answers": [*kept[1:], {"request_id": "n"}]}
    log = _log(1)
    data = journal.snapshot(1, log, before)
    record = journal.transaction(1, log, [], after, previous_link=before)
    assert len(record) < 200  # the change, not the 32 kept answers again
    assert journal.replay(data + record, bank_generation=1).link_state == after
    assert journal.link_delta({"a": 1}, {"b": 1}) is None  # another shape: written whole
    whole = journal.transaction(1, log, [], {"b": 1}, previous_link={"a": 1})
    assert journal.replay(data + whole, bank_generation=1).link_state == {"b": 1}


def test_the_chain_hashes_the_same_canonical_json_the_standard_encoder_writes() -> None:
    values: list[object] = [
        [1, 0.1, 1e-320, -0.0, 2**70, True, None, "µg/mL ✓", {"b": [1, {"z": 2, "a": 3}], "a": ""}],
        {"rate_ug_per_day": 600.0, "steps": [{"at": "08:00", "rate": 1.5}], "note": 'q"\\'},
    ]
    for value in values:
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        assert canonical_json(value) == expected
    with pytest.raises(ValueError):
        canonical_json([float("nan")])
