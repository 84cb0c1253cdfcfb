"""Where a frame sync is: the peaks of a sync metric, shared by the DMR, MDC-1200 and FleetSync decoders.

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
    w = half_width
    # The samples at or over the threshold (few: a sync's peak and its flanks), each then checked
    # against its whole neighbourhood, all at once: the w values before it and the w after it,
    # gathered from the metric padded with -inf.
    k0 = min(metric.size, max(0, lo - first))
    k = np.flatnonzero(metric[k0 : max(k0, hi - first)] >= threshold) + k0
    if not k.size:
        return []
    pad = np.concatenate((np.full(w, -np.inf), metric, np.full(w, -np.inf)))
    span = np.arange(w) + k[:, None]
    before, after = pad[span], pad[span + (w + 1)]
    peak = metric[k]
    found = []
    last = metric.size - 1
    for j in k[(before.max(axis=1) < peak) & (after.max(axis=1) <= peak)].tolist():  # one or two, in Python
        # Refined by the parabola through the peak and its two neighbours.
        frac = 0.0
        if 0 < j < last:
            a, b, c = float(metric[j - 1]), float(metric[j]), float(metric[j + 1])
            den = a - 2 * b + c
            if den < 0:
                frac = min(max(0.5 * (a - c) / den, -0.5), 0.5)
        found.append(((first + j) + frac, j))
    return found
