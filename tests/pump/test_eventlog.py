"""The event log: sequence numbers without gaps, counted roll-off, a verifiable hash chain."""

from __future__ import annotations

from itb.pump.eventlog import EventLog


def test_roll_off_is_counted_and_sequence_numbers_stay_contiguous() -> None:
    log = EventLog(capacity=10)
    for i in range(25):
        log.append(float(i), "tick", {"i": i})
    entries = log.entries()
    assert len(entries) == 10
    assert log.lost_count == 15
    assert [e.seq for e in entries] == list(range(16, 26))
    assert entries[0].seq - 1 == log.lost_count  # every missing entry is accounted for


def test_paged_reading() -> None:
    log = EventLog()
    for i in range(7):
        log.append(float(i), "tick")
    page = log.entries(since_seq=2, limit=3)
    assert [e.seq for e in page] == [3, 4, 5]


def test_hash_chain_detects_an_edited_entry() -> None:
    log = EventLog()
    for i in range(5):
        log.append(float(i), "bolus_start", {"dose_ug": 50})
    assert log.verify_chain()
    state = log.to_state()
    state["entries"][2][3] = {"dose_ug": 5}  # type: ignore[index]
    assert not EventLog.from_state(state).verify_chain()
