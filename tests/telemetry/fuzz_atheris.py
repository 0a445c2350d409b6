"""Coverage-guided fuzzing of the telemetry codec, session and pump endpoint with atheris.

``make soak`` runs each target for a million inputs:
    python -m tests.telemetry.fuzz_atheris codec -atheris_runs=1000000
The properties are those of the Hypothesis targets in ``make test``: no exception but the
module's own error type escapes, and no input changes the pump's therapy or the session state.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from itb.telemetry.codec import (
        CodecError,
        FrameBuffer,
        decode_grant,
        decode_json,
        decode_request,
        decode_response,
    )
    from itb.telemetry.messages import Commit, Prepare, SetProgram
    from itb.telemetry.session import SessionError

from tests.telemetry.test_codec import drain
from tests.telemetry.test_endpoint import KEYS, open_session
from tests.telemetry.test_session import open_pair


def codec_target(data: bytes) -> None:
    buffer = FrameBuffer()
    buffer.receive_data(data)
    drain(buffer)  # raises only CodecError subclasses, which drain handles
    for decode in (decode_json, decode_request, decode_response, decode_grant):
        with contextlib.suppress(CodecError):
            decode(data)


_SENDER, _RECEIVER = open_pair()
_GENUINE = [_SENDER.seal(bytes([i])) for i in range(256)]


def session_target(data: bytes) -> None:
    nonce_before = _RECEIVER.lowest_acceptable_nonce
    try:
        _RECEIVER.open(data)
    except SessionError:
        if _RECEIVER.lowest_acceptable_nonce != nonce_before:
            raise AssertionError("a refused frame moved the receive nonce") from None


_PUMP, _PROGRAMMER, _FAKE = open_session(KEYS)
_THERAPY = _FAKE.therapy()
_PREPARED_ID = "9" * 32
_PREPARE = Prepare(SetProgram(_PREPARED_ID, {"rate_ug_per_day": 250.0}))


_CLOCK_S = [0.0]


def endpoint_target(data: bytes) -> None:
    _CLOCK_S[0] += 61.0  # past the longest rate-limit block, so every input is examined
    _PUMP.receive_data(data, _CLOCK_S[0])
    if _FAKE.therapy() != _THERAPY:
        raise AssertionError("random bytes changed the pump's therapy")
    _FAKE.refusals.clear()  # counted and reported; not kept for a million inputs
    _FAKE.saved_states.clear()


def commit_target(data: bytes) -> None:
    """A prepared program change, then a commit with a forged challenge: never applied."""
    _CLOCK_S[0] += 61.0  # past any rate-limit block; the prepare and commit share this time
    _, frame = _PROGRAMMER.send(_PREPARE)
    _PROGRAMMER.receive_data(_PUMP.receive_data(frame, _CLOCK_S[0]))
    challenge = (data + bytes(16))[:16].hex()
    _, frame = _PROGRAMMER.send(Commit(_PREPARED_ID, challenge))
    _PROGRAMMER.receive_data(_PUMP.receive_data(frame, _CLOCK_S[0]))
    if _FAKE.therapy() != _THERAPY:
        raise AssertionError("a forged challenge committed a prepared command")
    assert _FAKE.refusals, "a forged commit must be refused and reported"
    _FAKE.refusals.clear()  # each refusal is checked here; keep a million of them out of memory
    _FAKE.saved_states.clear()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "codec": codec_target,
    "session": session_target,
    "endpoint": endpoint_target,
    "commit": commit_target,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: fuzz_atheris {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
