"""Where a frame sync is: the peaks of a sync metric, shared by the MDC-1200 and FleetSync decoders.

A correlation against a sync word rises and falls over a few samples around the true position; the
candidate is the sample whose metric is the highest within ``half_width`` either side (ties go to the
first), refined to a fraction of a sample by the parabola through it and its two neighbours.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def sync_peaks(metric: npt.NDArray[np.floating], *, first: int, lo: int, hi: int, half_width: int,
               threshold: float) -> list[tuple[float, int]]:
    """(position, index into ``metric``) of each peak at or above ``threshold`` whose absolute position
    (``first`` + index) lies in ``lo`` .. ``hi`` - 1."""
    out = []
    w = half_width
    # Only a sample over the one before it and not under the one after it can be the highest of its
    # neighbourhood: one vectorised pass leaves the loop below a sample or two per peak.
    maybe = metric >= threshold
    maybe[1:] &= metric[1:] > metric[:-1]
    maybe[:-1] &= metric[:-1] >= metric[1:]
    k0 = min(metric.size, max(0, lo - first))
    for k in (np.flatnonzero(maybe[k0 : max(k0, hi - first)]) + k0).tolist():
        g = first + k
        before = metric[max(0, k - w) : k]
        after = metric[k + 1 : k + 1 + w]
        if (before.size and before.max() >= metric[k]) or (after.size and after.max() > metric[k]):
            continue
        frac = 0.0
        if 0 < k < metric.size - 1:
            a, b, c = metric[k - 1], metric[k], metric[k + 1]
            den = a - 2 * b + c
            frac = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0
        out.append((g + frac, k))
    return out
