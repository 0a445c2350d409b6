"""Every state of an elementwise affine recurrence, in about 2√steps vectorised steps.

The exact PK propagation of a piece is, in the model's eigenbasis, ``y ← a y + c`` elementwise
(``a = e^{λ d}``, ``c = (1 - a) y_ss``). Stepping it one piece at a time costs a Python-level step
per piece, which dominates for one patient and years of pieces. Here the steps are cut into
chunks of about √steps: the map of every position inside a chunk (``y = prod · y_start + part``,
``prod`` the product of the decays so far, ``part`` the state reached from zero) is built for all
chunks at once, the chunk starts then follow one chunk at a time, and every state is its chunk's
start through that map. Same arithmetic as stepping (products of decays at most 1, sums of
offsets), so the same accuracy; no exponential of a long time is ever formed.
"""

from __future__ import annotations

import math

import numpy as np

from itb.pharmacology.model import FloatArray


def affine_scan(decay: FloatArray, offset: FloatArray, y0: FloatArray) -> FloatArray:
    """States of ``y ← decay[i] * y + offset[i]`` (elementwise) from ``y0``, shape
    ``(steps + 1, *y0.shape)``: row 0 is ``y0``, row i + 1 the state after step i."""
    steps = decay.shape[0]
    shape = y0.shape
    if steps == 0:
        result: FloatArray = np.array(y0, dtype=np.float64)[None]
        return result
    size = math.isqrt(steps)  # steps per chunk
    chunks = -(-steps // size)
    pad = chunks * size - steps  # trailing steps that change nothing: decay 1, offset 0
    a = _by_position(np.concatenate((decay, np.ones((pad, *shape)))), chunks, size)
    c = _by_position(np.concatenate((offset, np.zeros((pad, *shape)))), chunks, size)
    prod = np.empty((size + 1, chunks, *shape))
    part = np.empty((size + 1, chunks, *shape))
    prod[0], part[0] = 1.0, 0.0
    for j in range(size):
        np.multiply(prod[j], a[j], out=prod[j + 1])
        np.multiply(part[j], a[j], out=part[j + 1])
        part[j + 1] += c[j]
    starts = np.empty((chunks + 1, *shape))
    starts[0] = y0
    for m in range(chunks):
        starts[m + 1] = prod[size, m] * starts[m] + part[size, m]
    inside = prod[:size] * starts[None, :chunks] + part[:size]  # (size, chunks, ...)
    ordered = np.moveaxis(inside, 0, 1).reshape(chunks * size, *shape)[:steps]
    result = np.concatenate((ordered, starts[chunks][None]))
    return result


def _by_position(values: FloatArray, chunks: int, size: int) -> FloatArray:
    """(chunks * size, ...) as (size, chunks, ...): position inside the chunk first."""
    result: FloatArray = np.ascontiguousarray(
        np.moveaxis(values.reshape(chunks, size, *values.shape[1:]), 0, 1)
    )
    return result
