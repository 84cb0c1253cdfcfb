"""The sync peak finder shared by the DMR, MDC-1200 and FleetSync decoders, against its definition read
plainly, one sample at a time."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drivers.audio.peaks import sync_peaks


def by_definition(metric: np.ndarray, first: int, lo: int, hi: int, w: int,
                  threshold: float) -> list[tuple[float, int]]:
    """A peak: at or over the threshold, over each of the w samples before it and not under each of the
    w after it, its absolute position in lo .. hi - 1; moved by the parabola through its neighbours."""
    found = []
    for k, value in enumerate(metric.tolist()):
        if not lo <= first + k < hi or not value >= threshold:
            continue
        if any(v >= value for v in metric[max(0, k - w) : k].tolist()):
            continue
        if any(v > value for v in metric[k + 1 : k + 1 + w].tolist()):
            continue
        frac = 0.0
        if 0 < k < metric.size - 1:
            a, c = float(metric[k - 1]), float(metric[k + 1])
            den = a - 2 * value + c
            if den < 0:
                frac = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
        found.append((first + k + frac, k))
    return found


# Values from a few levels, so that ties (plateaus) come up often.
metrics = arrays(np.float64, st.integers(0, 300), elements=st.sampled_from([0.0, 0.3, 0.55, 0.6, 0.61, 0.8, 0.9, 1.0]))


@given(metrics, st.integers(0, 50), st.integers(-20, 400), st.integers(0, 400), st.integers(1, 12))
def test_peaks_are_those_of_the_definition(metric: np.ndarray, first: int, lo: int, span: int, w: int) -> None:
    hi = lo + span
    assert sync_peaks(metric, first=first, lo=lo, hi=hi, half_width=w, threshold=0.6) == \
        by_definition(metric, first, lo, hi, w, 0.6)


def test_a_plateau_gives_its_first_sample_and_a_lone_peak_its_parabola() -> None:
    metric = np.array([0.0, 0.7, 0.9, 0.9, 0.7, 0.0, 0.0, 0.65, 0.8, 0.7, 0.1])
    got = sync_peaks(metric, first=100, lo=0, hi=1000, half_width=2, threshold=0.6)
    # The plateau at 2-3: its first sample, moved half a sample towards its twin (the most the parabola
    # through 0.7, 0.9, 0.9 may move it).
    assert got[0] == (102.5, 2)
    # 0.65, 0.8, 0.7: the vertex is 0.5 * (0.65 - 0.7) / (0.65 - 1.6 + 0.7) = 0.1 after sample 8.
    assert got[1][1] == 8 and abs(got[1][0] - 108.1) < 1e-9
    assert len(got) == 2
