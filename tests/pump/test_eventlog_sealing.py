"""The event log seals its hash chain when it is read, not at each append (issue 13): the chain
is the one an eager log writes, byte for byte, and an entry the encoder refuses never joins."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from itb.pump.eventlog import EventLog


def _eager_chains(entries: list[tuple[int, float, str, dict[str, object]]]) -> list[str]:
    """The chain as security.md defines it, written out with the standard encoder."""
    head, chains = "0" * 32, []
    for seq, t_s, kind, data in entries:
        body = json.dumps(
            [seq, t_s, kind, data], sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        head = hashlib.sha256(f"{head}|{body}".encode()).hexdigest()[:32]
        chains.append(head)
    return chains


def test_a_chain_sealed_when_read_is_the_eager_chain_even_across_roll_off() -> None:
    log = EventLog(capacity=5)
    written = []
    for i in range(12):  # seven dropped from the ring before anything read it
        data: dict[str, object] = {"i": i, "ml": i / 3, "old": {"ok": True, "n": None}}
        log.append(float(i) * 0.5, "refill", data)
        written.append((i + 1, float(i) * 0.5, "refill", data))
    chains = _eager_chains(written)
    assert [e.chain for e in log.entries()] == chains[-5:]
    assert log.head == chains[-1] and log.lost_count == 7 and log.verify_chain()
    log.append(9.0, "alarm", {"alarm": "eri"})  # sealed after a read: the chain goes on
    written.append((13, 9.0, "alarm", {"alarm": "eri"}))
    assert log.head == _eager_chains(written)[-1]
    again = EventLog.from_state(log.to_state())
    assert again.verify_chain() and again.to_state() == log.to_state()


@pytest.mark.parametrize("bad", [math.nan, math.inf, object()])
def test_an_entry_the_encoder_refuses_is_refused_at_append_and_the_log_still_reads(
    bad: object,
) -> None:
    log = EventLog()
    log.append(0.0, "implant", {"serial": "A"})
    with pytest.raises((ValueError, TypeError)):
        log.append(1.0, "refill", {"volume_ml": [1.0, {"x": bad}]})
    log.append(2.0, "refill", {"volume_ml": 20.0})
    assert [(e.seq, e.kind) for e in log.entries()] == [(1, "implant"), (2, "refill")]
    assert log.verify_chain()


def test_an_entry_json_writes_in_its_own_way_is_chained_as_before() -> None:
    log = EventLog()
    data = {"t": (1, 2), "n": {2: "b"}}  # a tuple, an int key: JSON writes them all the same
    log.append(0.0, "record", data)
    expected = json.dumps([1, 0.0, "record", data], sort_keys=True, separators=(",", ":"))
    assert log.head == hashlib.sha256(f"{'0' * 32}|{expected}".encode()).hexdigest()[:32]


def test_data_of_a_kind_in_order_from_both_rings() -> None:
    log = EventLog(capacity=3)
    for i in range(5):
        log.append(float(i), "alarm", {"alarm": f"a{i}"})
        log.append(float(i), "link_refused", {"reason": "unknown_key"})
    assert [d["alarm"] for d in log.data_of("alarm")] == ["a2", "a3", "a4"]
    assert len(log.data_of("link_refused")) == 5 and log.data_of("refill") == []
