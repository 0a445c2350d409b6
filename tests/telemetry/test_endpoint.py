"""The pump and programmer state machines, driven directly (no sockets)."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itb.pump.alarms import AlarmKind
from itb.pump.status import BolusKind
from itb.telemetry.codec import FrameType, encode_frame
from itb.telemetry.endpoint import (
    CHALLENGE_LIFETIME_S,
    COUNTER_RESERVE,
    LinkRefused,
    LinkStateError,
    PairedKey,
    ProgrammerConnection,
    PumpConnection,
    PumpEndpoint,
    RefusalReason,
    RefusalSummary,
    Resolution,
    ResponseReceived,
    Role,
    SessionOpened,
    resolve_uncertain,
)
from itb.telemetry.messages import (
    HIGH_RISK_COMMANDS,
    JSON,
    Accepted,
    ClearAlarm,
    Command,
    Commit,
    EventLogPage,
    Interrogate,
    LogRecord,
    PatientBolusRequest,
    Prepare,
    Prepared,
    ReadEventLog,
    Refill,
    Refused,
    Rejected,
    Request,
    Response,
    ResumePump,
    SetClock,
    SetLowReservoirAlarm,
    SetPatientBolusLimits,
    SetProgram,
    StartBolus,
    StatusReport,
    StopPump,
)
from itb.therapy import continuous
from tests.telemetry.fakes import FakePump, Keys, make_keys, make_pump

KEYS = make_keys()  # key generation is the slow part; one set serves every test
NEW_PROGRAM: dict[str, JSON] = {"rate_ug_per_day": 250.0}


def rid(n: int) -> str:
    return f"{n:032x}"


class Link:
    """A programmer and a pump connection joined back to back."""

    def __init__(
        self, pump: PumpEndpoint, private: bytes, now_s: float = 0.0, source: str | None = None
    ) -> None:
        self.pump = pump.connection(source, now_s)
        self.programmer = ProgrammerConnection(private, KEYS.pump_public)
        self.now_s = now_s
        self.events = self.deliver(self.programmer.start_handshake())

    def deliver(self, frame: bytes) -> list[object]:
        return list(self.programmer.receive_data(self.pump.receive_data(frame, self.now_s)))

    def prepare(self, command: Command) -> Prepared:
        answer = self.ask(Prepare(command))
        assert isinstance(answer, Prepared), answer
        return answer

    def do(self, command: Command) -> Response | None:
        """A two-step command: prepare, then commit with the pump's challenge."""
        prepared = self.prepare(command)
        return self.ask(Commit(prepared.request_id, prepared.challenge))

    def ask(self, request: Request) -> Response | None:
        counter, frame = self.programmer.send(request)
        return self.answer(counter, self.deliver(frame))

    @staticmethod
    def answer(counter: int, events: list[object]) -> Response | None:
        for event in events:
            if isinstance(event, ResponseReceived) and event.counter == counter:
                return event.response
        return None


def opened(link: Link) -> SessionOpened:
    event = link.events[0]
    assert isinstance(event, SessionOpened)
    return event


def test_a_clinician_interrogates_and_programs() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    assert opened(link).next_counter == 1
    status = link.ask(Interrogate())
    assert isinstance(status, StatusReport) and status.status.program == continuous(100.0)
    assert link.do(SetProgram(rid(1), NEW_PROGRAM)) == Accepted(rid(1))
    assert fake.program == NEW_PROGRAM
    assert fake.log[-1].data["request_id"] == rid(1)
    assert fake.refusals == []


def test_a_patient_may_interrogate_and_ask_a_bolus_but_not_program() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.patient_private)
    assert isinstance(link.ask(Interrogate()), StatusReport)
    assert link.ask(PatientBolusRequest(rid(1))) == Accepted(rid(1))
    before = fake.therapy()
    for request in (SetProgram(rid(2), NEW_PROGRAM), StopPump(rid(3)), ReadEventLog()):
        assert link.ask(request) == Refused()
    assert fake.therapy() == before
    assert [r.reason for r in fake.refusals] == [RefusalReason.ROLE_FORBIDDEN] * 3
    assert fake.refusals[0].role is Role.PATIENT
    assert fake.refusals[0].request_type == "set_program"
    assert fake.log[-1].kind == "link_refused"


def test_an_unpaired_key_gets_a_generic_refusal_and_no_session() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.stranger_private)
    assert link.events == [LinkRefused()]
    assert not link.programmer.is_open and not link.pump.is_open
    assert fake.refusals[0].reason is RefusalReason.UNKNOWN_KEY


def test_a_retransmitted_command_is_applied_once() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    prepared = link.prepare(StopPump(rid(7)))
    counter, frame = link.programmer.send(Commit(rid(7), prepared.challenge))
    link.pump.receive_data(frame, 0.0)  # applied; the answer is lost
    again = link.answer(counter, link.deliver(link.programmer.resend(counter)))
    assert again == Accepted(rid(7))
    assert fake.applied == 1


def test_a_rejected_command_is_answered_the_same_on_retransmission() -> None:
    pump, _fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    counter, frame = link.programmer.send(ClearAlarm(rid(8), AlarmKind.ERI))
    first = link.answer(counter, link.deliver(frame))
    assert first == Rejected(rid(8), "type", "not supported by the fake pump")
    assert link.answer(counter, link.deliver(link.programmer.resend(counter))) == first


def test_the_same_request_id_in_a_new_session_returns_the_first_answer() -> None:
    pump, fake = make_pump(KEYS)
    Link(pump, KEYS.clinician_private).ask(PatientBolusRequest(rid(3)))
    second = Link(pump, KEYS.clinician_private)
    assert second.ask(PatientBolusRequest(rid(3))) == Accepted(rid(3))
    assert second.ask(ClearAlarm(rid(3), AlarmKind.ERI)) == Refused()  # same id, other body
    assert fake.applied == 1 and fake.boluses_ug == [10.0]
    assert fake.refusals[-1].reason is RefusalReason.REQUEST_ID_REUSED


def test_an_old_counter_is_refused_in_a_later_session() -> None:
    """An attacker holding a session key could re-seal an old request: the counter stops it."""
    pump, fake = make_pump(KEYS)
    first = Link(pump, KEYS.clinician_private)
    first.ask(Interrogate())  # counter 1
    second = Link(pump, KEYS.clinician_private)
    assert opened(second).next_counter == 2
    before = fake.therapy()
    # Forge: reuse counter 1 inside a valid session.
    counter, frame = second.programmer.send(SetProgram(rid(4), NEW_PROGRAM), counter=1)
    assert second.answer(counter, second.deliver(frame)) == Refused()
    assert fake.therapy() == before
    assert fake.refusals[-1].reason is RefusalReason.REPLAYED_COUNTER


def test_link_state_survives_a_restart_and_counters_jump_ahead() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    link.ask(PatientBolusRequest(rid(5)))
    # The ceiling was saved before the command acted, then again with the kept answer.
    assert fake.saved_states[0]["counter_ceiling"] == 1 + COUNTER_RESERVE
    stored = fake.saved_states[-1]
    restarted, fake_after = make_pump(KEYS, state=stored)
    link = Link(restarted, KEYS.clinician_private)
    assert opened(link).next_counter == 2 + COUNTER_RESERVE
    assert link.ask(PatientBolusRequest(rid(5))) == Accepted(rid(5))  # kept answer
    assert fake_after.applied == 0


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"format": 1, "counter_ceiling": -1},
        {"format": 1, "counter_ceiling": 3, "kept_answers": [{"request_id": "x"}]},
    ],
)
def test_a_corrupt_link_state_is_refused_clearly(state: dict[str, object]) -> None:
    with pytest.raises(LinkStateError, match="link state"):
        PumpEndpoint(
            KEYS.pump_private, KEYS.paired(), FakePump(), random_bytes=os.urandom, state=state
        )


def test_paired_keys_serialize_and_bad_ones_are_refused() -> None:
    key = KEYS.paired()[1]
    assert PairedKey.from_dict(key.to_dict()) == key
    with pytest.raises(LinkStateError, match="role"):
        PairedKey.from_dict({**key.to_dict(), "role": "admin"})
    with pytest.raises(LinkStateError, match="public_key"):
        PairedKey.from_dict({**key.to_dict(), "public_key": "abcd"})


def test_garbage_backs_off_its_source_but_never_a_handshake_that_completes() -> None:
    pump, fake = make_pump(KEYS)
    garbage = pump.connection("10.0.0.9", 100.0)
    answers = [garbage.receive_data(b"garbage!" * 3, 100.0) for _ in range(5)]
    # 3 free failures, the 4th backs the source off (1 s, 2 s ...): the 5th is dropped unread.
    assert answers[:4] == [encode_frame(FrameType.REFUSAL, b"")] * 4 and answers[4] == b""
    assert pump.source_retry_after_s("10.0.0.9", 100.0) > 0.0
    assert pump.source_retry_after_s("10.0.0.7", 100.0) == 0.0  # another source is not blocked
    # While backed off, a sealed frame from that source is dropped unread and unanswered...
    other = pump.connection("10.0.0.9", 100.0)
    assert other.receive_data(encode_frame(FrameType.SEALED, bytes(40)), 100.0) == b""
    # ...but a paired programmer's handshake from the same source is answered and completes.
    link = Link(pump, KEYS.clinician_private, now_s=100.0, source="10.0.0.9")
    assert isinstance(link.events[0], SessionOpened)
    assert pump.source_retry_after_s("10.0.0.9", 100.0) > 0.0  # answered is not proved
    assert isinstance(link.ask(Interrogate()), StatusReport)
    assert pump.source_retry_after_s("10.0.0.9", 100.0) == 0.0  # a proved session resets it
    # The burst was logged once (its first refusal), the rest counted for the summary, which
    # the clinician's proved session brought into the log.
    assert [r.log_kind for r in fake.refusals] == ["link_refused", "link_refusals"]
    summary = fake.refusals[1]
    assert isinstance(summary, RefusalSummary)
    # 4 refused (the first logged as it is, 3 counted), 2 dropped unread (the 5th, the sealed)
    assert summary.refused == 3 and summary.dropped_unread == 2


def test_unauthenticated_refusals_are_logged_at_most_once_a_minute() -> None:
    pump, fake = make_pump(KEYS)
    for i in range(600):  # ten minutes of one garbage connection a second, each its own source
        conn = pump.connection(f"10.0.{i // 250}.{i % 250}", float(i))
        conn.receive_data(b"not a frame", float(i))
        conn.close()
        pump.tick(float(i))
    kinds = [r.log_kind for r in fake.refusals]
    # t = 0 s: the first refusal as it is; then one summary a minute (at 60, 120 ... 540 s).
    assert kinds == ["link_refused"] + ["link_refusals"] * 9
    summaries = [r for r in fake.refusals if isinstance(r, RefusalSummary)]
    assert [s.refused for s in summaries] == [60] * 9  # 1 + 9 × 60 = 541 of the 600 refusals
    assert sum(s.links_closed for s in summaries) == 540
    pump.tick(600.0)
    assert [r.log_kind for r in fake.refusals][-1] == "link_refusals"
    assert sum(s.refused for s in fake.refusals if isinstance(s, RefusalSummary)) == 599


def test_a_replayed_first_message_is_refused_stale_and_moves_nothing() -> None:
    pump, fake = make_pump(KEYS)
    programmer = ProgrammerConnection(KEYS.clinician_private, KEYS.pump_public)
    hello = programmer.start_handshake()
    reply = pump.connection("10.0.0.1").receive_data(hello, 0.0)
    assert reply[3] == FrameType.HANDSHAKE_REPLY  # answered once; never proved (no sealed frame)
    saved = list(fake.saved_states)
    for i in range(50):
        again = pump.connection("10.0.0.66", float(i))
        assert again.receive_data(hello, float(i)) in (encode_frame(FrameType.REFUSAL, b""), b"")
    assert pump.handshakes == 0  # no session counted, no battery charge
    assert fake.saved_states == saved  # no memory write
    assert [r.reason for r in fake.refusals] == [RefusalReason.STALE_HANDSHAKE]  # one entry
    assert pump.source_retry_after_s("10.0.0.66", 49.0) > 0.0  # and the replays back off


def test_a_new_handshake_does_not_end_a_proved_session_until_it_is_proved() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    assert isinstance(link.ask(Interrogate()), StatusReport)
    # An injected message 1 (a recorded one from another session) on the live link...
    other = ProgrammerConnection(KEYS.clinician_private, KEYS.pump_public)
    assert link.pump.receive_data(other.start_handshake(), 0.0)[3] == FrameType.HANDSHAKE_REPLY
    # ...leaves the proved session serving.
    assert isinstance(link.ask(Interrogate()), StatusReport)
    assert fake.refusals == []


def test_a_long_event_log_page_is_trimmed_to_fit_one_frame() -> None:
    pump, fake = make_pump(KEYS)
    for i in range(64):
        fake.record("note", {"text": "x" * 400, "i": i})
    page = Link(pump, KEYS.clinician_private).ask(ReadEventLog(0, 64))
    assert isinstance(page, EventLogPage)
    assert 0 < len(page.entries) < 64 and page.more
    assert page.next_seq == page.entries[-1].seq


def test_resolve_uncertain_reads_the_pumps_log() -> None:
    at = datetime(2024, 1, 1)
    applied = LogRecord(4, at, "set_program", {"request_id": rid(1)})
    rejected = LogRecord(5, at, "set_program", {"request_id": rid(2), "outcome": "rejected"})
    log = [applied, rejected]
    assert resolve_uncertain(rid(1), log) is Resolution.APPLIED
    assert resolve_uncertain(rid(2), log) is Resolution.NOT_APPLIED
    assert resolve_uncertain(rid(3), log) is Resolution.NOT_APPLIED
    assert resolve_uncertain(rid(3), log, lost_count=10) is Resolution.UNKNOWN


# Two-step prepare/commit ------------------------------------------------------------------------
def test_prepare_changes_nothing_and_commit_applies_the_prepared_command_once() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    before, log_before = fake.therapy(), list(fake.log)
    prepared = link.prepare(SetProgram(rid(1), NEW_PROGRAM))
    assert fake.therapy() == before and fake.log == log_before  # prepare alone: nothing
    assert prepared.request_id == rid(1) and prepared.expires_in_s == CHALLENGE_LIFETIME_S
    assert prepared.summary == {
        "request": "set_program",
        "changes": {"program": {"old": {"rate_ug_per_day": 100.0}, "new": NEW_PROGRAM}},
    }
    # Asked again (a retransmitted prepare): the same challenge, still nothing applied.
    assert link.prepare(SetProgram(rid(1), NEW_PROGRAM)) == prepared
    assert link.ask(Commit(rid(1), prepared.challenge)) == Accepted(rid(1))
    assert fake.program == NEW_PROGRAM and fake.applied == 1
    assert fake.log[-1].data["request_id"] == rid(1)
    assert fake.refusals == []


def test_a_prepare_the_firmware_would_refuse_is_rejected_and_gives_no_challenge() -> None:
    pump, fake = make_pump(KEYS)
    fake.stopped = True
    link = Link(pump, KEYS.clinician_private)
    before = fake.therapy()
    assert link.ask(Prepare(StopPump(rid(2)))) == Rejected(rid(2), "mode", "already stopped")
    assert link.ask(Commit(rid(2), "00" * 16)) == Refused()
    assert fake.therapy() == before
    assert [r.reason for r in fake.refusals] == [RefusalReason.BAD_COMMIT]


def test_a_lost_commit_answer_is_answered_again_and_applied_once() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    prepared = link.prepare(StopPump(rid(3)))
    counter, frame = link.programmer.send(Commit(rid(3), prepared.challenge))
    link.pump.receive_data(frame, 0.0)  # applied; the answer is lost
    again = link.answer(counter, link.deliver(link.programmer.resend(counter)))
    assert again == Accepted(rid(3))
    assert link.ask(Commit(rid(3), prepared.challenge)) == Accepted(rid(3))  # a fresh counter too
    assert fake.applied == 1 and fake.stopped


def flip(challenge: str) -> str:
    raw = bytearray(bytes.fromhex(challenge))
    raw[0] ^= 0x01
    return raw.hex()


@pytest.mark.parametrize("attack", ["flipped", "expired", "other_request", "other_session"])
def test_a_bad_commit_is_refused_logged_and_changes_nothing(attack: str) -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private, now_s=100.0)
    prepared = link.prepare(SetProgram(rid(4), NEW_PROGRAM))
    link.prepare(StopPump(rid(5)))  # another prepared command, in the same session
    before, saves = fake.therapy(), len(fake.saved_states)
    commit = Commit(rid(4), prepared.challenge)
    if attack == "flipped":
        commit = Commit(rid(4), flip(prepared.challenge))
    elif attack == "expired":
        link.now_s += CHALLENGE_LIFETIME_S + 0.001
    elif attack == "other_request":
        commit = Commit(rid(5), prepared.challenge)
    else:
        link = Link(pump, KEYS.clinician_private, now_s=100.0)
    assert link.ask(commit) == Refused()
    assert fake.therapy() == before and len(fake.saved_states) == saves
    (report,) = fake.refusals
    assert report.reason is RefusalReason.BAD_COMMIT and report.request_type == "commit"
    assert fake.log[-1].kind == "link_refused"
    if attack in ("flipped", "expired", "other_request"):
        # One try: the right challenge no longer works after a wrong one or after the expiry.
        tried = rid(5) if attack == "other_request" else rid(4)
        assert link.ask(Commit(tried, prepared.challenge)) == Refused()
        if attack != "other_request":
            assert link.ask(Commit(rid(4), prepared.challenge)) == Refused()
        assert fake.therapy() == before


@pytest.mark.parametrize("type_name", sorted(t.type_name for t in HIGH_RISK_COMMANDS))
def test_a_bare_high_risk_command_is_refused_logged_and_changes_nothing(type_name: str) -> None:
    command = next(
        c
        for c in (
            SetProgram(rid(6), NEW_PROGRAM),
            StartBolus(rid(6), BolusKind.CLINICIAN, 5.0),
            Refill(rid(6), 20.0, 500.0),
            StopPump(rid(6)),
            ResumePump(rid(6)),
            SetPatientBolusLimits(rid(6), 10.0, 10.0, 60.0, 4),
            SetLowReservoirAlarm(rid(6), 3.0),
            SetClock(rid(6), datetime(2030, 1, 1)),
        )
        if c.type_name == type_name
    )
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.clinician_private)
    before = fake.therapy()
    assert link.ask(command) == Refused()
    assert fake.therapy() == before
    (report,) = fake.refusals
    assert report.reason is RefusalReason.NEEDS_PREPARE and report.request_type == type_name


def test_a_patient_may_not_prepare() -> None:
    pump, fake = make_pump(KEYS)
    link = Link(pump, KEYS.patient_private)
    assert link.ask(Prepare(SetProgram(rid(7), NEW_PROGRAM))) == Refused()
    assert fake.refusals[0].reason is RefusalReason.ROLE_FORBIDDEN
    assert fake.refusals[0].request_type == "set_program"


# Fuzzing: no input changes therapy or escapes as an exception ----------------------------------
def open_session(keys: Keys) -> tuple[PumpConnection, ProgrammerConnection, FakePump]:
    pump, fake = make_pump(keys)
    link = Link(pump, keys.clinician_private)
    return link.pump, link.programmer, fake


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=4))
def test_fuzz_random_bytes_change_nothing(chunks: list[bytes]) -> None:
    pump, _programmer, fake = open_session(KEYS)
    before = fake.therapy()
    for i, chunk in enumerate(chunks):
        pump.receive_data(chunk, float(i))
    assert fake.therapy() == before


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_altered_command_frames_change_nothing(data: st.DataObject) -> None:
    pump, programmer, fake = open_session(KEYS)
    _, frame = programmer.send(SetProgram(rid(9), NEW_PROGRAM))
    body = bytearray(frame[8:-4])
    how = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if how == "flip":
        bit = data.draw(st.integers(0, len(body) * 8 - 1))
        body[bit // 8] ^= 1 << (bit % 8)
    elif how == "truncate":
        del body[data.draw(st.integers(0, len(body) - 1)) :]
    else:
        body += data.draw(st.binary(min_size=1, max_size=20))
    # Re-frame with a valid CRC so the alteration reaches the AEAD, as an attacker would.
    before = fake.therapy()
    pump.receive_data(encode_frame(FrameType.SEALED, bytes(body)), 0.0)
    assert fake.therapy() == before
    assert fake.refusals[-1].reason is RefusalReason.NOT_AUTHENTIC


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=16, max_size=16), st.booleans())
def test_fuzz_forged_commits_change_nothing(forged: bytes, other_id: bool) -> None:
    pump, programmer, fake = open_session(KEYS)
    _, frame = programmer.send(Prepare(SetProgram(rid(9), NEW_PROGRAM)))
    (event,) = programmer.receive_data(pump.receive_data(frame, 0.0))
    assert isinstance(event, ResponseReceived) and isinstance(event.response, Prepared)
    challenge = event.response.challenge
    if forged.hex() == challenge and not other_id:
        return  # the one right guess, at 2**-128
    before = fake.therapy()
    counter, frame = programmer.send(Commit(rid(10) if other_id else rid(9), forged.hex()))
    answer = Link.answer(counter, list(programmer.receive_data(pump.receive_data(frame, 0.0))))
    assert answer == Refused() and fake.therapy() == before
    assert fake.refusals[-1].reason is RefusalReason.BAD_COMMIT


@pytest.mark.parametrize("lost", [None, 0, 1])
def test_a_retried_handshake_opens_whichever_reply_comes_first(lost: int | None) -> None:
    """A slow pump: the programmer retries before the first reply; the replies come in order
    (or one is lost). The first reply to arrive opens the session, and the pump accepts it."""
    pump, fake = make_pump(KEYS)
    conn = pump.connection("clinic", 0.0)
    programmer = ProgrammerConnection(KEYS.clinician_private, KEYS.pump_public)
    replies = [conn.receive_data(programmer.start_handshake(), 0.0) for _ in range(2)]
    arriving = [r for i, r in enumerate(replies) if i != lost]
    events = [e for reply in arriving for e in programmer.receive_data(reply)]
    assert isinstance(events[0], SessionOpened)  # never HandshakeFailed
    counter, frame = programmer.send(Interrogate())
    (answer,) = programmer.receive_data(conn.receive_data(frame, 0.1))
    assert isinstance(answer, ResponseReceived) and answer.counter == counter
    assert isinstance(answer.response, StatusReport) and fake.refusals == []
