"""The MSK receiver's sync search with a coarse first pass (FleetSync's) finds the same candidates as the
search at every position: bursts at the sensitivity cliff, mistuned ones, noise and speech-like audio, at
each bit rate and several sample rates, however the audio is split."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from drivers.audio import fleetsync as fs
from drivers.audio.msk import MskReceiver, SyncCandidate


def _audio(rate: int, baud: int, seed: int) -> np.ndarray:
    """Bursts at 6, 3, 0 and -3 dB SNR (over the full band), one 2 % off, between stretches of noise
    and of a wandering tone (speech-like: it crosses the FleetSync tones)."""
    rng = np.random.default_rng(seed)
    version = 1 if baud == 1200 else 2
    parts = []
    for snr, error in ((6, 0.0), (3, 0.0), (0, 0.0), (-3, 0.0), (3, 0.02)):
        burst = fs.encode(fs.ani(100, int(rng.integers(1000, 5000))), rate=rate, version=version,
                          freq_error=error, baud_error=error)
        power = float(np.mean(burst[np.abs(burst) > 1e-6] ** 2))
        parts.append(burst + rng.normal(0, np.sqrt(power / 10 ** (snr / 10)), burst.size))
        parts.append(rng.normal(0, 0.2, rate // 2))
    t = np.arange(2 * rate) / rate
    parts.append(0.3 * np.sin(2 * np.pi * np.cumsum(900 + 700 * np.sin(2 * np.pi * 3 * t)) / rate))
    return np.concatenate(parts)


def _search(rx: MskReceiver, x: np.ndarray, block: int) -> list[SyncCandidate]:
    found: list[SyncCandidate] = []
    for first in range(0, x.size, block):
        rx.feed(x[first : first + block], first)
        found += rx.search(final=False)
        rx.trim([])
    return found + rx.search(final=True)


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
@pytest.mark.parametrize("baud", [1200, 2400])
@pytest.mark.parametrize("threshold", [fs.SYNC_THRESHOLD, 0.5])  # 0.5: hundreds of candidates in the noise
def test_coarse_search_finds_what_the_full_search_finds(rate: int, baud: int, threshold: float) -> None:
    def receiver(coarse: bool) -> MskReceiver:
        rx = fs.FleetSyncDecoder(rate)._channel(baud).rx
        assert rx.coarse is not None
        rx.threshold = threshold
        if not coarse:
            rx.coarse = None
        return rx

    x = _audio(rate, baud, seed=rate + baud)
    expected = _search(receiver(coarse=False), x, 4096)
    assert len(expected) >= (4 if threshold == fs.SYNC_THRESHOLD else 100)
    for block in (4096, 331):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no peak may meet the -inf of a position not computed
            got = _search(receiver(coarse=True), x, block)
        assert [c.pattern for c in got] == [c.pattern for c in expected]
        assert [c.pos for c in got] == pytest.approx([c.pos for c in expected], abs=1e-9)
        assert [c.metric for c in got] == pytest.approx([c.metric for c in expected], abs=1e-12)
