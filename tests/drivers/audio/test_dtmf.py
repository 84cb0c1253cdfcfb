"""The DTMF decoder: every digit, sequences and the inter-digit timeout, each ITU-T Q.24 accept and reject
case on its own, noise, a radio's band-limited audio (sox), any split of the stream, garbage, and no
talk-off on speech (espeak-ng)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.io import wavfile
from support import feed_split

from drivers.audio.dtmf import KEYS, DtmfDecoder, dtmf_tones
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)
RATE = 8000


def need(tool: str) -> None:
    """Skip without ``tool``, except under CI, where a missing tool is a failure."""
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (apt-get install {tool})")
        pytest.skip(f"{tool} is not installed")


def decode(x: np.ndarray, decoder: DtmfDecoder | None = None, *, flush: bool = True) -> list[Output]:
    decoder = decoder or DtmfDecoder()
    out = decoder.feed(x.astype(np.float32), T0)
    return out + decoder.flush(T0 + timedelta(seconds=x.size / decoder.rate)) if flush else out


def digits(x: np.ndarray, **options: Any) -> list[str]:
    return [o.detail["digits"] for o in decode(x, DtmfDecoder(**options)) if isinstance(o, Decoded)]


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1, signal_power: float = 0.35**2) -> np.ndarray:
    """``x`` plus white noise over the whole band, ``snr_db`` below the DTMF pair's power."""
    rng = np.random.default_rng(seed)
    return (x + rng.normal(0, np.sqrt(signal_power / 10 ** (snr_db / 10)), x.size)).astype(np.float32)


# --- digits and sequences ----------------------------------------------------------------------


@pytest.mark.parametrize("key", list(KEYS))
def test_every_digit(key: str) -> None:
    assert digits(dtmf_tones(key, lead_s=0.1, tail_s=0.1)) == [key]


def test_sequence_is_one_status_event_at_the_first_digit() -> None:
    x = dtmf_tones("*1234#", lead_s=0.5, tail_s=0.2)
    [event] = decode(x)
    assert isinstance(event, Decoded)
    assert event.kind is Kind.STATUS and event.unit is None
    assert event.detail["protocol"] == "dtmf" and event.detail["digits"] == "*1234#"
    assert event.detail["offset_s"] == pytest.approx(0.5, abs=0.006)
    assert abs((event.time - T0).total_seconds() - 0.5) < 0.006


def test_interdigit_timeout_splits_sequences_without_flush() -> None:
    first = dtmf_tones("*12#", lead_s=0.1)
    second = dtmf_tones("*911*34#", lead_s=1.5, tail_s=1.2)
    out = decode(np.concatenate([first, second]), flush=False)  # silence alone ends each sequence
    assert [o.detail["digits"] for o in out if isinstance(o, Decoded)] == ["*12#", "*911*34#"]
    times = [o.detail["offset_s"] for o in out if isinstance(o, Decoded)]
    assert times[1] == pytest.approx(first.size / RATE + 1.5, abs=0.006)


def test_interdigit_option_joins_or_splits() -> None:
    x = np.concatenate([dtmf_tones("12"), np.zeros(int(0.6 * RATE), np.float32), dtmf_tones("34")])
    assert digits(x, interdigit_s=1.0) == ["1234"]
    assert digits(x, interdigit_s=0.3) == ["12", "34"]


def test_pending_sequence_waits_for_the_timeout_or_flush() -> None:
    decoder = DtmfDecoder(interdigit_s=2.0)
    assert decode(dtmf_tones("55", tail_s=0.5), decoder, flush=False) == []
    [event] = decoder.flush(T0)
    assert isinstance(event, Decoded) and event.detail["digits"] == "55"


def test_repeated_digit_needs_a_pause() -> None:
    assert digits(dtmf_tones("999", tone_s=0.05, pause_s=0.05)) == ["999"]


def test_long_held_key_is_one_digit() -> None:
    assert digits(dtmf_tones("7", tone_s=2.5)) == ["7"]


def test_unknown_option_and_bad_timeout_are_refused() -> None:
    with pytest.raises(TypeError):
        DtmfDecoder(colour="red")
    with pytest.raises(ValueError, match="interdigit_s"):
        DtmfDecoder(interdigit_s=0)
    with pytest.raises(ValueError, match="not 12345"):
        DtmfDecoder(rate=12345)


def test_runs_at_16000_hz() -> None:
    assert digits(dtmf_tones("*0#", 16000, lead_s=0.1)) == []  # fed at 8000 Hz it is another signal
    decoder = DtmfDecoder(rate=16000)
    out = decode(dtmf_tones("*0#", 16000, lead_s=0.1), decoder)
    assert [o.detail["digits"] for o in out if isinstance(o, Decoded)] == ["*0#"]


# --- ITU-T Q.24 acceptance, each case on its own ---------------------------------------------------

SEQ = "159#*0AD"


def test_q24_accepts_plus_1_5_percent() -> None:
    assert digits(dtmf_tones(SEQ, freq_error=0.015, lead_s=0.1)) == [SEQ]


def test_q24_accepts_minus_1_5_percent() -> None:
    assert digits(dtmf_tones(SEQ, freq_error=-0.015, lead_s=0.1)) == [SEQ]


def test_q24_rejects_plus_3_5_percent() -> None:
    assert digits(dtmf_tones(SEQ, freq_error=0.035, lead_s=0.1)) == []


def test_q24_rejects_minus_3_5_percent() -> None:
    assert digits(dtmf_tones(SEQ, freq_error=-0.035, lead_s=0.1)) == []


def test_q24_accepts_40_ms_tones() -> None:
    assert digits(dtmf_tones(SEQ, tone_s=0.040, pause_s=0.040, lead_s=0.1)) == [SEQ]


def test_q24_rejects_20_ms_tones() -> None:
    assert digits(dtmf_tones(SEQ, tone_s=0.020, pause_s=0.050, lead_s=0.1)) == []


def test_q24_rejects_10_ms_tones() -> None:
    assert digits(dtmf_tones(SEQ, tone_s=0.010, pause_s=0.050, lead_s=0.1)) == []


@pytest.mark.parametrize("offset_ms", [0.0, 1.3, 2.5, 3.7])
def test_q24_duration_holds_at_any_frame_alignment(offset_ms: float) -> None:
    lead = 0.1 + offset_ms / 1000
    assert digits(dtmf_tones(SEQ, tone_s=0.040, pause_s=0.040, lead_s=lead)) == [SEQ]
    assert digits(dtmf_tones(SEQ, tone_s=0.020, pause_s=0.050, lead_s=lead)) == []


def test_q24_pause_of_40_ms_separates_digits() -> None:
    assert digits(dtmf_tones("88", tone_s=0.06, pause_s=0.040, lead_s=0.1)) == ["88"]


def test_q24_interruption_of_20_ms_is_not_a_pause() -> None:
    assert digits(dtmf_tones("88", tone_s=0.06, pause_s=0.020, lead_s=0.1)) == ["8"]


def test_q24_accepts_forward_twist_of_4_db() -> None:
    assert digits(dtmf_tones(SEQ, twist_db=4.0, lead_s=0.1)) == [SEQ]


def test_q24_accepts_reverse_twist_of_8_db() -> None:
    assert digits(dtmf_tones(SEQ, twist_db=-8.0, lead_s=0.1)) == [SEQ]


def test_q24_rejects_forward_twist_beyond_limit() -> None:
    assert digits(dtmf_tones(SEQ, twist_db=6.5, lead_s=0.1)) == []


def test_q24_rejects_reverse_twist_beyond_limit() -> None:
    assert digits(dtmf_tones(SEQ, twist_db=-10.5, lead_s=0.1)) == []


def test_single_tone_is_not_a_digit() -> None:
    t = np.arange(RATE) / RATE
    for f in (697.0, 941.0, 1209.0, 1633.0):
        assert digits((0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)) == []


def test_tone_with_harmonics_is_not_a_digit() -> None:
    """A buzzy source (a square-ish wave) at a keypad pair's frequencies is rejected by the harmonic check."""
    t = np.arange(RATE // 2) / RATE
    x = sum(0.3 / k * (np.sin(2 * np.pi * 697 * k * t) + np.sin(2 * np.pi * 1209 * k * t)) for k in (1, 2, 3))
    assert digits(np.asarray(x, dtype=np.float32)) == []


def test_level_threshold() -> None:
    assert digits(dtmf_tones("123", level=0.01, lead_s=0.1)) == ["123"]  # -40 dBFS per tone
    assert digits(dtmf_tones("123", level=0.001, lead_s=0.1)) == []  # -60 dBFS: below the floor


# --- noise, radio audio ----------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [30, 20, 15, 10, 6, 5, 3])
def test_decodes_in_white_noise(snr_db: float) -> None:
    code = "*1234567890#"
    x = with_noise(dtmf_tones(code, tone_s=0.06, pause_s=0.06, lead_s=0.3, tail_s=0.3), snr_db, seed=int(snr_db))
    assert digits(x) == [code]


def test_sequences_in_3_db_noise() -> None:
    """Thirty sequences at 3 dB SNR, 1 s apart: every one decoded, nothing else."""
    rng = np.random.default_rng(3)
    codes = ["".join(rng.choice(list(KEYS), int(rng.integers(3, 8)))) for _ in range(30)]
    x = np.concatenate([dtmf_tones(code, tail_s=1.0) for code in codes])
    assert digits(with_noise(x, 3, seed=5)) == codes


@pytest.mark.parametrize("seed", range(3))
def test_noise_alone_gives_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert digits(rng.normal(0, 0.3, 10 * RATE).astype(np.float32)) == []


def test_decodes_through_a_radio_passband_with_ctcss(tmp_path: Path) -> None:
    """Band-limited to 300-3000 Hz by sox (a radio's audio path), with a loud 88.5 Hz CTCSS tone beside."""
    need("sox")
    code = "*4711#"
    x = dtmf_tones(code, lead_s=0.3, tail_s=0.3)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    wavfile.write(src, RATE, x)
    subprocess.run(["sox", str(src), "-b", "32", "-e", "floating-point", str(dst), "sinc", "300-3000"], check=True)
    _, y = wavfile.read(dst)
    t = np.arange(y.size) / RATE
    y = y + 0.2 * np.sin(2 * np.pi * 88.5 * t)
    assert digits(with_noise(y.astype(np.float32), 15)) == [code]


# --- any split, garbage ------------------------------------------------------------------------

SIGNAL = with_noise(np.concatenate([dtmf_tones("*12#", lead_s=0.2), dtmf_tones("7A", lead_s=1.2, tail_s=0.1)]), 20)
WHOLE = decode(SIGNAL)


def test_whole_signal_reference() -> None:
    assert [o.detail["digits"] for o in WHOLE if isinstance(o, Decoded)] == ["*12#", "7A"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, SIGNAL.size), max_size=40))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    assert feed_split(DtmfDecoder(), SIGNAL, cuts, T0) == WHOLE


def test_sample_sized_and_odd_blocks_give_the_same_events() -> None:
    assert feed_split(DtmfDecoder(), SIGNAL, list(range(0, SIGNAL.size, 7)), T0) == WHOLE
    assert feed_split(DtmfDecoder(), SIGNAL, [*range(4000), 9000, 9001], T0) == WHOLE


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, st.integers(0, 3000), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_garbage_never_raises(block: np.ndarray) -> None:
    decoder = DtmfDecoder()
    out = decoder.feed(block, T0) + decoder.feed(block[::-1].copy(), T0) + decoder.flush(T0)
    assert all(isinstance(o, Decoded | Rejected) for o in out)


def test_nan_block_is_rejected_and_time_goes_on() -> None:
    decoder = DtmfDecoder()
    x = dtmf_tones("*5#", lead_s=0.1)
    bad = np.full(800, np.nan, dtype=np.float32)
    out = decoder.feed(bad, T0) + decoder.feed(x, T0 + timedelta(seconds=0.1)) + decoder.flush(T0)
    rejected = [o for o in out if isinstance(o, Rejected)]
    decoded = [o for o in out if isinstance(o, Decoded)]
    assert len(rejected) == 1 and "NaN" in rejected[0].reason
    assert [d.detail["digits"] for d in decoded] == ["*5#"]
    assert decoded[0].detail["offset_s"] == pytest.approx(0.2, abs=0.006)  # the NaN block counted as time


def test_clipped_overdriven_audio_still_decodes() -> None:
    assert digits(np.clip(dtmf_tones("*31#", level=0.6) * 1.3, -1, 1)) == ["*31#"]


def test_empty_blocks_and_flush_before_feed() -> None:
    decoder = DtmfDecoder()
    assert decoder.flush(T0) == []
    assert decoder.feed(np.zeros(0, np.float32), T0) == []


# --- one channel, several decoders ---------------------------------------------------------------


def test_dtmf_and_selcall_on_one_channel_hear_what_each_hears_alone() -> None:
    """Fed the same blocks one after the other (as the audio driver does), the two decoders share their
    spectra; what each reports must not change, however the blocks are cut."""
    from drivers.audio.selcall import SelcallDecoder, selcall_tones

    x = with_noise(np.concatenate([dtmf_tones("*12#", lead_s=0.2), selcall_tones("12345", lead_s=0.4, tail_s=1.2)]), 15)
    alone = feed_split(DtmfDecoder(), x, [], T0), feed_split(SelcallDecoder(), x, [], T0)
    assert [o.detail["digits"] for o in alone[0] if isinstance(o, Decoded)] == ["*12#"]
    assert [o.detail["digits"] for o in alone[1] if isinstance(o, Decoded)] == ["12345"]
    for step in (160, 800, 1237):
        dtmf, selcall = DtmfDecoder(), SelcallDecoder()
        together: tuple[list[Output], list[Output]] = ([], [])
        for i in range(0, x.size, step):
            at, block = T0 + timedelta(seconds=i / RATE), x[i : i + step]  # one array for both, as the driver
            together[0].extend(dtmf.feed(block, at))
            together[1].extend(selcall.feed(block, at))
        end = T0 + timedelta(seconds=x.size / RATE)
        assert (together[0] + dtmf.flush(end), together[1] + selcall.flush(end)) == alone


# --- talk-off -----------------------------------------------------------------------------


def test_speech_gives_no_digits(speech: dict[str, np.ndarray]) -> None:
    total = sum(x.size for x in speech.values()) / RATE
    assert total >= 30
    for voice, x in speech.items():
        for gain in (0.3, 1.0, 3.0):  # quiet, normal, overdriven into clipping
            assert digits(np.clip(gain * x, -1, 1)) == [], f"talk-off on {voice} at gain {gain}"


def test_speech_under_white_noise_gives_no_digits(speech: dict[str, np.ndarray]) -> None:
    """A voice on a noisy channel: the noise floor must not make a lone formant look like a clean pair."""
    rng = np.random.default_rng(11)
    for voice, x in speech.items():
        for gain, noise in ((0.3, 0.02), (1.0, 0.05), (1.0, 0.2), (3.0, 0.1)):
            noisy = np.clip(gain * x, -1, 1) + rng.normal(0, noise, x.size)
            assert digits(noisy.astype(np.float32)) == [], f"talk-off on {voice} at gain {gain}, noise {noise}"


def test_speech_over_a_sequence_does_not_invent_digits(speech: dict[str, np.ndarray]) -> None:
    """Speech mixed under a sequence may hide digits but must never add any."""
    x = speech["en"][: 3 * RATE] * 0.1
    seq = dtmf_tones("*2580#", lead_s=0.5)
    mix = x.copy()
    mix[: seq.size] += seq
    found = "".join(digits(mix))
    assert set(found) <= set("*2580#")


def test_music_gives_no_digits(music: np.ndarray) -> None:
    for gain in (0.3, 1.0):
        assert digits(gain * music) == []
