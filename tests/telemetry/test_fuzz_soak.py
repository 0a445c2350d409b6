"""The fuzz targets again with 20,000 examples each (``make soak`` runs ``-m slow``).

``make test`` runs the same targets briefly; ``HYPOTHESIS_PROFILE=soak`` lengthens those too.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.telemetry import test_codec, test_endpoint, test_session

SOAK = settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@SOAK
@given(st.binary(max_size=4000))
def test_soak_frame_buffer(data: bytes) -> None:
    test_codec.test_fuzz_frame_buffer_raises_only_codec_errors.hypothesis.inner_test(data)  # type: ignore[attr-defined]


@pytest.mark.slow
@SOAK
@given(st.binary(max_size=400))
def test_soak_session_open(data: bytes) -> None:
    inner = test_session.test_fuzz_session_open_raises_only_session_errors_and_changes_nothing
    inner.hypothesis.inner_test(data)  # type: ignore[attr-defined]


@pytest.mark.slow
@SOAK
@given(st.lists(st.binary(max_size=400), max_size=6))
def test_soak_pump_connection(chunks: list[bytes]) -> None:
    test_endpoint.test_fuzz_random_bytes_change_nothing.hypothesis.inner_test(chunks)  # type: ignore[attr-defined]


@pytest.mark.slow
@SOAK
@given(st.data())
def test_soak_altered_command_frames(data: st.DataObject) -> None:
    test_endpoint.test_fuzz_altered_command_frames_change_nothing.hypothesis.inner_test(data)  # type: ignore[attr-defined]


@pytest.mark.slow
@SOAK
@given(st.binary(min_size=16, max_size=16), st.booleans())
def test_soak_forged_commits(forged: bytes, other_id: bool) -> None:
    test_endpoint.test_fuzz_forged_commits_change_nothing.hypothesis.inner_test(forged, other_id)  # type: ignore[attr-defined]
