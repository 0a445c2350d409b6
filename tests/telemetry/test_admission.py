"""Which unauthenticated links the pump closes to make room (admission.py), driven in memory."""

from __future__ import annotations

import pytest

from itb.telemetry.admission import PreAuthBudget, Promise
from itb.telemetry.codec import FrameType, encode_frame
from itb.telemetry.endpoint import ProgrammerConnection, PumpConnection, PumpEndpoint
from itb.telemetry.messages import Interrogate
from tests.telemetry.fakes import make_keys, make_pump

KEYS = make_keys()
BUDGET = PreAuthBudget(max_links=6, max_per_source=3, max_silent_links=4)
GARBAGE = b"not a frame"


def small_pump() -> PumpEndpoint:
    pump, _fake = make_pump(KEYS)
    pump.budget = BUDGET
    return pump


def talking(pump: PumpEndpoint, source: str, now_s: float, data: bytes) -> PumpConnection:
    conn = pump.connection(source, now_s)
    conn.receive_data(data, now_s)
    return conn


def test_silent_links_are_kept_apart_and_only_the_oldest_silent_ones_make_room() -> None:
    pump = small_pump()
    silent = [pump.connection("idle", float(i)) for i in range(6)]  # 1 s apart: all had time
    assert [c.closed for c in silent] == [True, True, False, False, False, False]
    assert pump.take_evicted() == silent[:2] and pump.take_evicted() == []
    # A new link is silent until it talks (it made room: the oldest silent one went); then it
    # counts against the talking budget, which silent links never touch.
    garbage = talking(pump, "idle", 7.0, GARBAGE)
    assert not garbage.closed and pump.take_evicted() == [silent[2]]
    # A silent link has silent_s to talk, a talking one the handshake deadline to prove itself.
    assert silent[2].deadline_s() == 2.0 + BUDGET.silent_s
    assert garbage.deadline_s() == 7.0 + BUDGET.handshake_deadline_s


def test_garbage_makes_room_for_a_programmer_and_cannot_push_out_a_half_open_link() -> None:
    pump = small_pump()
    garbage = [talking(pump, "lan", float(i), GARBAGE) for i in range(3)]
    assert all(g.promise is Promise.REFUSED for g in garbage)
    programmer = ProgrammerConnection(KEYS.clinician_private, KEYS.pump_public)
    half_open = pump.connection("lan", 3.0)
    reply = half_open.receive_data(programmer.start_handshake(), 3.0)
    assert reply[3] == FrameType.HANDSHAKE_REPLY and half_open.promise is Promise.HALF_OPEN
    # The source holds 3: the oldest refused link made room for the programmer's.
    assert pump.take_evicted() == [garbage[0]] and not half_open.closed
    for i in range(30):  # more garbage, from the same source and from many others
        talking(pump, "lan" if i % 2 else f"host-{i}", 4.0 + i, GARBAGE)
    assert not half_open.closed
    # Its first sealed frame proves the session: it answers, and leaves the budget.
    programmer.receive_data(reply)
    _, frame = programmer.send(Interrogate())
    assert half_open.receive_data(frame, 40.0)[3] == FrameType.SEALED
    assert half_open.is_open and pump.unauthenticated_links == BUDGET.max_links - 1


def test_a_burst_of_new_links_does_not_close_one_before_it_could_talk() -> None:
    pump = small_pump()
    burst = [pump.connection("flood", 10.0 + i / 1000) for i in range(20)]  # in 20 ms
    assert not any(c.closed for c in burst)  # over the cap, for at most half of silent_s
    late = pump.connection("flood", 10.0 + BUDGET.silent_s)
    assert sum(c.closed for c in burst) == 17 and not late.closed  # now the cap holds: 4 left


def test_a_link_is_closed_after_its_allowance_of_refused_frames() -> None:
    pump, _fake = make_pump(KEYS)
    conn = pump.connection("noisy", 0.0)
    sealed = encode_frame(FrameType.SEALED, bytes(40))
    for i in range(pump.budget.max_failures):
        assert not conn.closed
        conn.receive_data(sealed, 100.0 * i)  # spaced out: the source's back-off has lapsed
    assert conn.closed and conn.receive_data(sealed, 1e6) == b""
    assert pump.take_evicted() == [conn]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_per_source": 0},
        {"max_per_source": 9, "max_links": 8},
        {"max_failures": 0},
        {"silent_s": 0.0},
        {"silent_s": 9.0, "handshake_deadline_s": 5.0},
    ],
)
def test_a_nonsensical_budget_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        PreAuthBudget(**kwargs)  # type: ignore[arg-type]
