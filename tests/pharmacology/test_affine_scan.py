"""The chunked scan gives every state of y ← a y + c as stepping one step at a time does."""

from __future__ import annotations

import numpy as np
import pytest

from itb.pharmacology.affine_scan import affine_scan


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 17, 1000, 4099])
def test_every_state_matches_stepping_one_step_at_a_time(steps: int) -> None:
    rng = np.random.default_rng(steps)
    decay = rng.uniform(0.0, 1.0, (steps, 2, 3))
    decay[::7] = 1.0  # a step of no decay (an empty piece)
    offset = rng.uniform(0.0, 50.0, (steps, 2, 3))
    y0 = rng.uniform(-10.0, 10.0, (2, 3))
    expected = [y0]
    for a, c in zip(decay, offset, strict=True):
        expected.append(a * expected[-1] + c)
    states = affine_scan(decay, offset, y0)
    assert states.shape == (steps + 1, 2, 3)
    np.testing.assert_allclose(states, np.array(expected), rtol=1e-13, atol=1e-13)
