"""The event log: sequence numbers without gaps, counted roll-off, a verifiable hash chain, and
refusals in a ring of their own."""

from __future__ import annotations

from itb.pump.eventlog import DEFAULT_SECURITY_CAPACITY, SECURITY_KINDS, EventLog


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


def test_refusals_live_in_their_own_ring_and_never_push_a_clinical_entry_out() -> None:
    log = EventLog(capacity=10, security_capacity=4)
    log.append(0.0, "implant", {"serial": "A"})
    for i in range(9):
        log.append(1.0 + i, "command", {"request_id": f"{i:032x}"})
    for i in range(1000):  # a flood of refusals (the attack run washed a shared ring this way)
        log.append(10.0 + i, "link_refused", {"reason": "unknown_key"})
    clinical = [e for e in log.entries() if e.kind not in SECURITY_KINDS]
    assert [e.kind for e in clinical] == ["implant"] + ["command"] * 9
    assert log.lost_count == 0  # no clinical entry lost: an uncertain command can be settled
    assert log.security_lost_count == 996 and len(log) == 14
    # One sequence: the merged view is in order; every missing number is counted somewhere.
    seqs = [e.seq for e in log.entries()]
    assert seqs == sorted(seqs) and seqs[:10] == list(range(1, 11)) and seqs[-1] == 1010
    assert log.next_seq - 1 - len(log) == log.lost_count + log.security_lost_count
    assert log.verify_chain()  # each ring's chain verifies on its own, gaps and all


def test_the_rings_survive_the_memory_image_and_an_old_one_ring_image_still_loads() -> None:
    log = EventLog(capacity=5, security_capacity=2)
    for i in range(4):
        log.append(float(i), "refill" if i % 2 else "link_refusals", {"i": i})
    again = EventLog.from_state(log.to_state())
    assert again.to_state() == log.to_state() and again.verify_chain()
    old = {"capacity": 5, "next_seq": 3, "lost_count": 0, "head": log.head, "entries": []}
    assert EventLog.from_state(old).security_capacity == DEFAULT_SECURITY_CAPACITY
    state = log.to_state()
    state["security"]["entries"][1][3] = {"i": 99}  # type: ignore[index]
    assert not EventLog.from_state(state).verify_chain()
