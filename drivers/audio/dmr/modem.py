"""DMR 4FSK as a receiver's discriminator hears it (ETSI TS 102 361-1 clause 10.2): the modulator this
project's tests and benches make signals with, and the receive filter of the decoder.

    symbols +3 +1 -1 -3  ->  deviation +1944 +648 -648 -1944 Hz (10.2.1, table 10.3), 4800 symbols/s
    shaping: root-raised-cosine, roll-off 0.2 (10.2.2), at the transmitter and again at the receiver,
    so that the two together are a raised cosine with no intersymbol interference

A discriminator's output is the instantaneous frequency: :func:`modulate` gives that directly (the
audio of a clean signal), :func:`through_receiver` FM-modulates it, adds white noise at a given
carrier-to-noise ratio in the 12.5 kHz channel, filters the channel and discriminates again, so that a
weak signal has the clicks and the noise a real FM receiver's discriminator output has.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from drivers.audio.base import Samples

SYMBOL_RATE = 4800
DEVIATION_HZ = 648.0  # per symbol level unit: +-1 -> +-648 Hz, +-3 -> +-1944 Hz (table 10.3)
ROLL_OFF = 0.2  # 10.2.2
BASE_RATE = 48000
CHANNEL_HZ = 12500.0


def rrc_taps(sps: float, *, alpha: float = ROLL_OFF, span: int = 8) -> npt.NDArray[np.float64]:
    """Root-raised-cosine impulse response over +-``span`` symbols at ``sps`` samples per symbol (unit
    energy; callers scale it)."""
    half = math.floor(span * sps)
    t = (np.arange(-half, half + 1)) / sps
    h = np.zeros(t.size)
    for i, x in enumerate(t.tolist()):
        if abs(x) < 1e-9:
            h[i] = 1.0 - alpha + 4 * alpha / math.pi
        elif abs(abs(x) - 1 / (4 * alpha)) < 1e-9:
            h[i] = alpha / math.sqrt(2) * ((1 + 2 / math.pi) * math.sin(math.pi / (4 * alpha))
                                            + (1 - 2 / math.pi) * math.cos(math.pi / (4 * alpha)))
        else:
            h[i] = (math.sin(math.pi * x * (1 - alpha)) + 4 * alpha * x * math.cos(math.pi * x * (1 + alpha))) / (
                math.pi * x * (1 - (4 * alpha * x) ** 2))
    taps: npt.NDArray[np.float64] = h / np.sqrt(np.sum(h * h))
    return taps


def frequency(symbols: npt.ArrayLike, *, rate: int = BASE_RATE, lead_s: float = 0.0, tail_s: float = 0.0,
              gaps: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """The transmitter's instantaneous frequency (Hz) for a run of symbols: impulses at the symbol rate
    through the RRC filter. ``gaps``: a boolean per symbol, True where the transmitter is off (the
    time between an MS's bursts): the frequency there is 0 and :func:`through_receiver` drops the carrier."""
    s = np.asarray(symbols, np.float64)
    sps = BASE_RATE / SYMBOL_RATE
    h = rrc_taps(sps)
    x = np.zeros(int(s.size * sps))
    x[(np.arange(s.size) * sps).astype(np.int64)] = s
    # A run of one symbol settles at its deviation (the filter's DC gain per symbol is 1): a long +3
    # is 1944 Hz, as a deviation meter measures a radio.
    h = h * sps / np.sum(h)
    f = np.convolve(x, h, mode="full")[h.size // 2: h.size // 2 + x.size] * DEVIATION_HZ
    f = np.concatenate((np.zeros(round(lead_s * BASE_RATE)), f, np.zeros(round(tail_s * BASE_RATE))))
    if rate != BASE_RATE:
        from scipy import signal  # here: the decoder does not need scipy.signal's second of import

        g = math.gcd(rate, BASE_RATE)
        f = signal.resample_poly(f, rate // g, BASE_RATE // g)
    return f


def to_audio(freq_hz: npt.ArrayLike, *, level: float = 0.5) -> Samples:
    """Discriminator audio: ``level`` is the amplitude of a +-3 symbol (+-1944 Hz)."""
    return (np.asarray(freq_hz) * (level / (3 * DEVIATION_HZ))).astype(np.float32)


def modulate(symbols: npt.ArrayLike, *, rate: int = BASE_RATE, level: float = 0.5, lead_s: float = 0.0,
             tail_s: float = 0.0) -> Samples:
    return to_audio(frequency(symbols, rate=rate, lead_s=lead_s, tail_s=tail_s), level=level)


def through_receiver(freq_hz: npt.ArrayLike, cnr_db: float | None, rng: np.random.Generator, *,
                     carrier: npt.ArrayLike | None = None, rate: int = BASE_RATE) -> npt.NDArray[np.float64]:
    """FM-modulate ``freq_hz`` (at ``rate``), add complex white noise so that the carrier-to-noise ratio
    in the 12.5 kHz channel is ``cnr_db`` (None: no noise), filter the channel, discriminate. Where
    ``carrier`` is False the transmitter is off: only noise is heard there, as from an open squelch."""
    f = np.asarray(freq_hz, np.float64)
    z = np.exp(1j * 2 * np.pi * np.cumsum(f) / rate)
    if carrier is not None:
        z = z * np.asarray(carrier, np.float64)
    if cnr_db is not None:
        noise_power = 10 ** (-cnr_db / 10) * rate / CHANNEL_HZ  # per sample over the whole band
        noise = rng.normal(0, math.sqrt(noise_power / 2), (2, z.size))
        z = z + noise[0] + 1j * noise[1]
    from scipy import signal  # see frequency

    taps = signal.firwin(129, CHANNEL_HZ / 2, fs=rate)
    z = signal.lfilter(taps, [1.0], z)
    out = np.angle(z[1:] * np.conj(z[:-1])) * rate / (2 * np.pi)
    # The channel filter delays by 64 samples: give the audio back aligned with the input.
    return np.concatenate((out[63:], np.zeros(64)))
