"""A full session, byte for byte: the test vectors of the protocol specification.

``vectors/session_transcript.json`` holds one session with fixed static and ephemeral keys,
fixed request ids, challenge and clock: the handshake, an interrogation, a prepare/commit of a
low-reservoir alarm threshold, the commit retransmitted (answered again, applied once), a bare
high-risk command (refused), a second interrogation and a tampered frame (plaintext refusal).

Three checks:

* the real programmer and pump code (``ProgrammerConnection``, ``PumpEndpoint``) produce every
  frame of the file, byte for byte;
* the independent client (no ``itb``, another Noise library) produces every programmer frame of
  the file from the recorded plaintexts and reads every pump frame to the recorded plaintext;
* the specification's "Test vectors" section shows the same hex.

The endpoint draws its ephemeral key through the Noise library; here the library's key
generator hands out the fixed keys instead (:func:`fixed_ephemeral_keys`), which is the only
thing replaced. The pump's handler is scripted (a fixed status): what is pinned here is the
protocol, not the firmware. After a deliberate wire change, rewrite the file with
``ITB_WRITE_VECTORS=1 pytest tests/interop/test_transcript.py`` and update the spec's hex.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from noise.backends.default.diffie_hellmans import ED25519
from noise.backends.default.keypairs import KeyPair25519

from itb.pump.status import BatteryStatus, Mode, PumpStatus
from itb.telemetry.codec import FrameType, encode_frame, encode_request, encode_response
from itb.telemetry.endpoint import (
    PairedKey,
    ProgrammerConnection,
    PumpConnection,
    PumpEndpoint,
    RefusalReason,
    RefusalReport,
    ResponseReceived,
    Role,
    SessionOpened,
)
from itb.telemetry.messages import (
    JSON,
    Accepted,
    Command,
    Commit,
    Interrogate,
    Prepare,
    Request,
    RequestEnvelope,
    Response,
    ResponseEnvelope,
    SetLowReservoirAlarm,
    StatusReport,
)
from itb.therapy import program_from_dict
from tests.interop import independent_client as ic

VECTORS = Path(__file__).with_name("vectors") / "session_transcript.json"
SPEC = Path(__file__).parents[2] / "docs" / "telemetry.md"
SPEC_VECTORS_HEADING = "### Test vectors"
# The frames the spec shows: all but the status answers (a new status key changes only those).
SPEC_FRAMES = (0, 1, 2, 4, 5, 6, 7)

# Fixed inputs. Any 32 bytes are an X25519 private key (the scalar is clamped when used).
PROGRAMMER_STATIC = bytes(range(0x01, 0x21))
PUMP_STATIC = bytes(range(0x21, 0x41))
PROGRAMMER_EPHEMERAL = bytes(range(0x41, 0x61))
PUMP_EPHEMERAL = bytes(range(0x61, 0x81))
CHALLENGE = bytes(range(0xC0, 0xD0))
REQUEST_ID_COMMIT = "0123456789abcdef0123456789abcdef"
REQUEST_ID_BARE = "fedcba9876543210fedcba9876543210"
LINK_STATE_BEFORE: dict[str, JSON] = {"format": 1, "counter_ceiling": 128, "kept_answers": []}
TAMPER_BYTE = 20  # the 13th byte of the ciphertext (after 8 header and 8 nonce bytes)
PUMP_NOW = datetime(2027, 1, 4, 8, 0, 0)


@contextmanager
def fixed_ephemeral_keys(*private_keys: bytes) -> Iterator[list[bytes]]:
    """Make noiseprotocol's X25519 key generation hand out ``private_keys`` in order."""
    queue = list(private_keys)
    original = ED25519.generate_keypair

    def generate(self: object) -> Any:
        return KeyPair25519.from_private_bytes(queue.pop(0))

    ED25519.generate_keypair = generate
    try:
        yield queue
    finally:
        ED25519.generate_keypair = original


@dataclass
class ScriptedPump:
    """A ``PumpHandler`` with a fixed status; applies the low-reservoir threshold only."""

    low_reservoir_alarm_ml: float = 2.0
    applied: list[Command] = field(default_factory=list)
    refusals: list[RefusalReport] = field(default_factory=list)
    saved_states: list[dict[str, JSON]] = field(default_factory=list)

    def status(self) -> StatusReport:
        status = PumpStatus(
            serial="VECTOR-0001",
            model="peristaltic-20",
            now=PUMP_NOW,
            mode=Mode.RUNNING,
            program=program_from_dict({"rate_ug_per_day": 600.0}),
            daily_dose_ug=600.0,
            concentration_ug_per_ml=500.0,
            reservoir_ml=20.0,
            low_reservoir_alarm_ml=self.low_reservoir_alarm_ml,
            battery=BatteryStatus(
                remaining_mah=1200.0,
                eri_at=None,
                eos_at=None,
                predicted_eri_at=datetime(2033, 6, 1, 0, 0, 0),
                predicted_eos_at=datetime(2033, 9, 1, 0, 0, 0),
            ),
            alarms=(),
            delivered_ug=0.0,
            delivered_ml=0.0,
            received_ug=10000.0,
            bolus=None,
            patient_bolus_limits=None,
            last_refill_at=PUMP_NOW,
            delivered_since_refill_ml=0.0,
        )
        return StatusReport(status)

    def handle(self, request: Request, role: Role, key_id: str) -> Response:
        if isinstance(request, Interrogate):
            return self.status()
        assert isinstance(request, SetLowReservoirAlarm), request
        self.applied.append(request)
        self.low_reservoir_alarm_ml = request.volume_ml
        return Accepted(request.request_id)

    def prepare(self, command: Command, role: Role, key_id: str) -> dict[str, JSON]:
        assert isinstance(command, SetLowReservoirAlarm), command
        change: JSON = {"old": self.low_reservoir_alarm_ml, "new": command.volume_ml}
        return {
            "request": command.type_name,
            "at": PUMP_NOW.isoformat(),
            "changes": {"low_reservoir_alarm_ml": change},
        }

    def on_refused(self, report: RefusalReport) -> None:
        self.refusals.append(report)

    def save_link_state(self, state: dict[str, JSON]) -> None:
        self.saved_states.append(state)


# Recording the session with the real code --------------------------------------------------------
@dataclass
class Recorder:
    programmer: ProgrammerConnection
    pump: PumpConnection
    frames: list[dict[str, Any]] = field(default_factory=list)

    def exchange(self, note: str, now_s: float, frame: bytes, plaintext: bytes) -> list[object]:
        """Send one programmer frame to the pump, record both frames, return the events."""
        self._record("programmer", note, now_s, frame, plaintext)
        reply = self.pump.receive_data(frame, now_s)
        events: list[object] = list(self.programmer.receive_data(reply))
        assert len(events) == 1, events
        event = events[0]
        if isinstance(event, ResponseReceived):
            answer = encode_response(ResponseEnvelope(event.counter, event.response))
            self._record("pump", f"answer: {event.response.type_name}", now_s, reply, answer)
        elif isinstance(event, SessionOpened):
            grant = ic.canonical_json({"next_counter": event.next_counter})
            self._record("pump", "handshake reply (SessionGrant)", now_s, reply, grant)
        else:
            assert reply[3] == FrameType.REFUSAL, event
            self._record("pump", "plaintext refusal", now_s, reply, b"")
        return events

    def request(self, note: str, now_s: float, request: Request) -> ResponseReceived:
        counter, frame = self.programmer.send(request)
        plaintext = encode_request(RequestEnvelope(counter, request))
        (event,) = self.exchange(note, now_s, frame, plaintext)
        assert isinstance(event, ResponseReceived) and event.counter == counter, event
        return event

    def _record(self, sender: str, note: str, now_s: float, frame: bytes, plaintext: bytes) -> None:
        sealed = FrameType(frame[3]) is FrameType.SEALED
        self.frames.append(
            {
                "from": sender,
                "type": FrameType(frame[3]).name,
                "note": note,
                "pump_clock_s": now_s,
                "nonce": int.from_bytes(frame[8:16], "big") if sealed else None,
                "plaintext": plaintext.decode("ascii"),
                "frame_hex": frame.hex(),
            }
        )


def record_transcript() -> dict[str, Any]:
    """Run the session with the real pump and programmer code; return the vectors."""
    handler = ScriptedPump()
    programmer_public = ic.public_key_of(PROGRAMMER_STATIC)
    endpoint = PumpEndpoint(
        PUMP_STATIC,
        [PairedKey(programmer_public, Role.CLINICIAN, "vector programmer")],
        handler,
        random_bytes=lambda n: CHALLENGE[:n],
        state=LINK_STATE_BEFORE,
    )
    programmer = ProgrammerConnection(PROGRAMMER_STATIC, ic.public_key_of(PUMP_STATIC))
    recorder = Recorder(programmer, endpoint.connection())
    with fixed_ephemeral_keys(PROGRAMMER_EPHEMERAL, PUMP_EPHEMERAL) as unused:
        hello = programmer.start_handshake()
        (opened,) = recorder.exchange("handshake (KK message 1)", 1000.0, hello, b"")
    assert not unused and isinstance(opened, SessionOpened)
    _run_requests(recorder)
    assert len(handler.applied) == 1  # the retransmitted commit was answered, not applied again
    assert [r.reason for r in handler.refusals] == [
        RefusalReason.NEEDS_PREPARE,
        RefusalReason.NOT_AUTHENTIC,
    ]
    return {
        "about": "One OpenITB telemetry session; see docs/telemetry.md, 'Test vectors'.",
        "protocol_name": "Noise_KK_25519_ChaChaPoly_SHA256",
        "prologue_hex": ic.PROLOGUE.hex(),
        "keys": _keys(),
        "pump_link_state_before": LINK_STATE_BEFORE,
        "challenge_random_hex": CHALLENGE.hex(),
        "handshake_hash_hex": opened.handshake_hash.hex(),
        "tamper": {"frame_byte": TAMPER_BYTE, "xor": 1, "crc_recomputed": True},
        "frames": recorder.frames,
    }


def _run_requests(recorder: Recorder) -> None:
    command = SetLowReservoirAlarm(REQUEST_ID_COMMIT, 3.0)
    recorder.request("interrogate", 1001.0, Interrogate())
    prepared = recorder.request("prepare set_low_reservoir_alarm 3.0 mL", 1002.0, Prepare(command))
    challenge = str(prepared.response.to_wire()["challenge"])
    commit = recorder.request("commit", 1010.0, Commit(REQUEST_ID_COMMIT, challenge))
    counter = commit.counter
    resent = recorder.programmer.resend(counter)
    plaintext = encode_request(RequestEnvelope(counter, Commit(REQUEST_ID_COMMIT, challenge)))
    recorder.exchange("commit retransmitted (same counter)", 1011.0, resent, plaintext)
    bare = SetLowReservoirAlarm(REQUEST_ID_BARE, 2.5)
    recorder.request("bare high-risk command (one step)", 1012.0, bare)
    recorder.request("interrogate", 1013.0, Interrogate())
    counter, frame = recorder.programmer.send(Interrogate())
    tampered = bytearray(frame)
    tampered[TAMPER_BYTE] ^= 1
    tampered[-4:] = zlib.crc32(bytes(tampered[:-4])).to_bytes(4, "big")
    plaintext = encode_request(RequestEnvelope(counter, Interrogate()))
    note = "interrogate with one ciphertext bit flipped (CRC-32 recomputed)"
    recorder.exchange(note, 1014.0, bytes(tampered), plaintext)


def _keys() -> dict[str, str]:
    keys = {
        "programmer_static": PROGRAMMER_STATIC,
        "pump_static": PUMP_STATIC,
        "programmer_ephemeral": PROGRAMMER_EPHEMERAL,
        "pump_ephemeral": PUMP_EPHEMERAL,
    }
    out: dict[str, str] = {}
    for name, private in keys.items():
        out[f"{name}_private"] = private.hex()
        out[f"{name}_public"] = ic.public_key_of(private).hex()
    return out


def load_vectors() -> dict[str, Any]:
    if os.environ.get("ITB_WRITE_VECTORS") == "1":
        VECTORS.parent.mkdir(exist_ok=True)
        text = json.dumps(record_transcript(), indent=1, ensure_ascii=True) + "\n"
        VECTORS.write_text(text, encoding="ascii")
    vectors: dict[str, Any] = json.loads(VECTORS.read_text(encoding="ascii"))
    return vectors


# The checks --------------------------------------------------------------------------------------
def test_the_real_pump_and_programmer_produce_every_frame_of_the_transcript() -> None:
    expected = load_vectors()
    recorded = record_transcript()
    assert len(recorded["frames"]) == len(expected["frames"])
    for i, (got, want) in enumerate(zip(recorded["frames"], expected["frames"], strict=True)):
        assert got == want, f"frame {i} ({want['from']}: {want['note']}) differs"
    assert recorded == expected


def test_the_independent_client_builds_and_reads_every_frame_of_the_transcript() -> None:
    vectors = load_vectors()
    session = ic.ClientSession(
        PROGRAMMER_STATIC, ic.public_key_of(PUMP_STATIC), ephemeral_private=PROGRAMMER_EPHEMERAL
    )
    frames = vectors["frames"]
    assert frames[0]["frame_hex"] == session.hello().hex()
    reply_type, reply_body = _frame(frames[1])
    session.on_reply(reply_type, reply_body)
    assert session.channel.handshake_hash.hex() == vectors["handshake_hash_hex"]
    for i in range(2, len(frames), 2):
        sent, answer = frames[i], frames[i + 1]
        envelope = json.loads(sent["plaintext"])
        if sent["note"].startswith("commit retransmitted"):
            built = session.resend(envelope["counter"])
        else:
            session.next_counter = envelope["counter"]
            counter, built = session.request(envelope["type"], envelope["body"])
            assert counter == envelope["counter"]
        if "bit flipped" in sent["note"]:
            built = _tampered(built, vectors["tamper"]["frame_byte"])
        assert built.hex() == sent["frame_hex"], f"frame {i} ({sent['note']}) differs"
        _check_answer(session, answer, envelope["counter"], i + 1)


def _check_answer(session: ic.ClientSession, answer: dict[str, Any], counter: int, i: int) -> None:
    frame_type, body = _frame(answer)
    if answer["type"] == "REFUSAL":
        assert body == b""
        return
    got = session.answer(frame_type, body)
    assert ic.canonical_json(
        {"body": got.body, "counter": got.counter, "type": got.type}
    ) == answer["plaintext"].encode("ascii"), f"frame {i} ({answer['note']})"
    assert got.counter == counter


def _frame(record: dict[str, Any]) -> tuple[int, bytes]:
    buffer = bytearray(bytes.fromhex(record["frame_hex"]))
    frame = ic.take_frame(buffer)
    assert frame is not None and not buffer
    return frame


def _tampered(frame: bytes, byte: int) -> bytes:
    tampered = bytearray(frame)
    tampered[byte] ^= 1
    tampered[-4:] = zlib.crc32(bytes(tampered[:-4])).to_bytes(4, "big")
    return bytes(tampered)


def test_the_specification_shows_the_same_vectors() -> None:
    vectors = load_vectors()
    text = SPEC.read_text(encoding="utf-8")
    assert SPEC_VECTORS_HEADING in text
    section = text.split(SPEC_VECTORS_HEADING, 1)[1].split("\n## ", 1)[0]
    compact = re.sub(r"\s+", "", section)
    for name, value in vectors["keys"].items():
        assert value in compact, f"the spec's vectors lack {name}"
    assert vectors["handshake_hash_hex"] in compact
    for i in SPEC_FRAMES:
        frame = vectors["frames"][i]
        assert frame["frame_hex"] in compact, f"the spec's vectors lack frame {i}"
        assert re.sub(r"\s+", "", frame["plaintext"]) in compact, f"plaintext {i}"
    assert "tests/interop/vectors/session_transcript.json" in section
    assert _frame(vectors["frames"][-1]) == (FrameType.REFUSAL, b"")
    assert encode_frame(FrameType.REFUSAL, b"").hex() in compact
