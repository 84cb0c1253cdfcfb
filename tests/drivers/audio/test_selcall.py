"""The 5-tone selcall decoder: all six standards with repeats, lengths, tone time and frequency
tolerance, one standard not mistaken for another, noise, any split of the stream, garbage, and no
talk-off on speech (espeak-ng)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import feed_split

from drivers.audio.selcall import SelcallDecoder, selcall_tones, with_repeats
from drivers.audio.selcall_standards import STANDARDS
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)
RATE = 8000
ALL = list(STANDARDS)


def decode(x: np.ndarray, decoder: SelcallDecoder) -> list[Output]:
    return decoder.feed(x.astype(np.float32), T0) + decoder.flush(T0 + timedelta(seconds=x.size / decoder.rate))


def calls(x: np.ndarray, standard: str = "ZVEI1", **options: Any) -> list[tuple[str, str | None, str]]:
    out = decode(x, SelcallDecoder(standard=standard, **options))
    return [(o.kind.value, o.unit, o.detail["digits"]) for o in out if isinstance(o, Decoded)]


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1, signal_power: float = 0.5**2 / 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (x + rng.normal(0, np.sqrt(signal_power / 10 ** (snr_db / 10)), x.size)).astype(np.float32)


def test_repeat_tone_encoding() -> None:
    assert with_repeats("12345") == "12345"
    assert with_repeats("22222") == "2E2E2"
    assert with_repeats("10090") == "10E90"


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("code", ["12345", "67890", "22222", "10090", "55123"])
def test_every_standard_decodes_calls_with_repeats(standard: str, code: str) -> None:
    x = selcall_tones(code, standard, lead_s=0.2, tail_s=0.3)
    assert calls(x, standard) == [("ptt", f"{standard.lower()}:{code}", code)]


@pytest.mark.parametrize("standard", ALL)
def test_every_tone_of_the_table(standard: str) -> None:
    """Digits 0-9 and the extra tones A-D and F all come out; E only ever repeats."""
    for code in ("01234", "56789", "ABCDF"):
        assert calls(selcall_tones(code, standard, lead_s=0.1, tail_s=0.2), standard)[0][2] == code


@pytest.mark.parametrize("standard", ALL)
def test_event_time_and_offset_are_the_first_tone(standard: str) -> None:
    x = selcall_tones("24680", standard, lead_s=0.75, tail_s=0.2)
    [event] = decode(x, SelcallDecoder(standard=standard))
    assert isinstance(event, Decoded)
    assert event.kind is Kind.PTT and event.detail["protocol"] == standard.lower()
    assert event.detail["offset_s"] == pytest.approx(0.75, abs=0.006)
    assert abs((event.time - T0).total_seconds() - 0.75) < 0.006


def test_other_lengths_are_status_codes() -> None:
    x = np.concatenate([selcall_tones("123", lead_s=0.2, tail_s=0.5), selcall_tones("1234567", tail_s=0.5)])
    assert calls(x) == [("status", None, "123"), ("status", None, "1234567")]


def test_length_option() -> None:
    x = selcall_tones("1234567", lead_s=0.2, tail_s=0.3)
    assert calls(x, length=7) == [("ptt", "zvei1:1234567", "1234567")]


def test_too_short_sequences_are_ignored() -> None:
    assert calls(selcall_tones("12", lead_s=0.2, tail_s=0.3)) == []
    assert calls(selcall_tones("12", lead_s=0.2, tail_s=0.3), min_length=2) == [("status", None, "12")]


def test_back_to_back_calls_split_at_a_gap() -> None:
    x = np.concatenate([selcall_tones("12345", lead_s=0.2), selcall_tones("54321", lead_s=0.3, tail_s=0.3)])
    assert [c[2] for c in calls(x)] == ["12345", "54321"]


def test_leading_repeat_tone_is_not_a_call() -> None:
    freqs, _ = STANDARDS["ZVEI1"]
    t = np.arange(round(0.07 * RATE)) / RATE
    e = 0.5 * np.sin(2 * np.pi * freqs[14] * t)  # E first: nothing to repeat
    x = np.concatenate([np.zeros(800), e, selcall_tones("1234"), np.zeros(2400)])
    assert calls(x) == []


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="standard"):
        SelcallDecoder(standard="ZVEI9")
    with pytest.raises(ValueError, match="length"):
        SelcallDecoder(length=0)
    with pytest.raises(ValueError, match="freq_tolerance"):
        SelcallDecoder(freq_tolerance=0.5)
    with pytest.raises(TypeError):
        SelcallDecoder(speed=3)


# --- tolerances --------------------------------------------------------------------------------


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("error", [-0.015, 0.015])
def test_accepts_1_5_percent_frequency_error(standard: str, error: float) -> None:
    assert calls(selcall_tones("13579", standard, freq_error=error, lead_s=0.1, tail_s=0.2), standard) != []


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("error", [-0.03, 0.03])
def test_rejects_3_percent_frequency_error(standard: str, error: float) -> None:
    assert calls(selcall_tones("13579", standard, freq_error=error, lead_s=0.1, tail_s=0.2), standard) == []


def test_frequency_tolerance_option() -> None:
    x = selcall_tones("13579", freq_error=0.025, lead_s=0.1, tail_s=0.2)
    assert calls(x) == []
    assert calls(x, freq_tolerance=0.03) != []


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("factor", [0.75, 1.25])
def test_accepts_tones_25_percent_off_their_time(standard: str, factor: float) -> None:
    nominal = STANDARDS[standard][1]
    x = selcall_tones("24680", standard, tone_s=nominal * factor, lead_s=0.1, tail_s=0.3)
    assert [c[2] for c in calls(x, standard)] == ["24680"]


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("factor", [0.5, 1.6])
def test_rejects_tones_far_off_their_time(standard: str, factor: float) -> None:
    nominal = STANDARDS[standard][1]
    x = selcall_tones("24680", standard, tone_s=nominal * factor, lead_s=0.1, tail_s=0.3)
    assert calls(x, standard) == []


def test_duration_tolerance_option() -> None:
    x = selcall_tones("24680", tone_s=0.07 * 1.25, lead_s=0.1, tail_s=0.3)
    assert calls(x, duration_tolerance=0.1) == []
    assert calls(x, duration_tolerance=0.35) != []


@pytest.mark.parametrize(("sent", "heard"), [("CCIR", "EEA"), ("EEA", "CCIR"), ("CCIR", "ZVEI1"), ("ZVEI1", "EIA")])
def test_one_standard_is_not_taken_for_another(sent: str, heard: str) -> None:
    assert calls(selcall_tones("12345", sent, lead_s=0.1, tail_s=0.3), heard) == []


# --- noise -------------------------------------------------------------------------------------


@pytest.mark.parametrize("standard", ALL)
@pytest.mark.parametrize("snr_db", [20, 10, 6, 3])
def test_decodes_in_white_noise(standard: str, snr_db: float) -> None:
    x = with_noise(selcall_tones("31415", standard, lead_s=0.3, tail_s=0.3), snr_db, seed=int(snr_db))
    assert [c[2] for c in calls(x, standard)] == ["31415"]


@pytest.mark.parametrize("standard", ["ZVEI1", "CCIR", "EEA"])
def test_calls_in_3_db_noise(standard: str) -> None:
    """Twenty calls at 3 dB SNR (white noise over the whole band, as the benchmark makes it): every one
    decoded, nothing else."""
    rng = np.random.default_rng(3)
    codes = ["".join(map(str, rng.integers(0, 10, 5))) for _ in range(20)]
    x = np.concatenate([selcall_tones(code, standard, lead_s=0.5, tail_s=0.5) for code in codes])
    assert [c[2] for c in calls(with_noise(x, 3, seed=4), standard)] == codes


@pytest.mark.parametrize("standard", ALL)
def test_noise_alone_gives_nothing(standard: str) -> None:
    rng = np.random.default_rng(7)
    assert calls(rng.normal(0, 0.3, 10 * RATE).astype(np.float32), standard, min_length=1) == []


# --- any split, garbage ------------------------------------------------------------------------

SIGNAL = with_noise(
    np.concatenate([selcall_tones("12233", lead_s=0.2), selcall_tones("907", lead_s=0.6, tail_s=0.3)]), 15
)
WHOLE = decode(SIGNAL, SelcallDecoder())


def test_whole_signal_reference() -> None:
    assert [o.detail["digits"] for o in WHOLE if isinstance(o, Decoded)] == ["12233", "907"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, SIGNAL.size), max_size=40))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    assert feed_split(SelcallDecoder(), SIGNAL, cuts, T0) == WHOLE


def test_small_blocks_give_the_same_events() -> None:
    assert feed_split(SelcallDecoder(), SIGNAL, list(range(0, SIGNAL.size, 5)), T0) == WHOLE


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, st.integers(0, 3000), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_garbage_never_raises(block: np.ndarray) -> None:
    decoder = SelcallDecoder(standard="EIA", min_length=1)
    out = decoder.feed(block, T0) + decoder.feed(block[::-1].copy(), T0) + decoder.flush(T0)
    assert all(isinstance(o, Decoded | Rejected) for o in out)


def test_nan_block_is_rejected_and_counts_as_time() -> None:
    decoder = SelcallDecoder()
    out = decoder.feed(np.full(400, np.inf, np.float32), T0)
    out += decoder.feed(selcall_tones("12345", lead_s=0.05, tail_s=0.3), T0 + timedelta(seconds=0.05))
    out += decoder.flush(T0)
    assert len([o for o in out if isinstance(o, Rejected)]) == 1
    [call] = [o for o in out if isinstance(o, Decoded)]
    assert call.detail["offset_s"] == pytest.approx(0.1, abs=0.006)


# --- talk-off -----------------------------------------------------------------------------


@pytest.mark.parametrize("standard", ALL)
def test_speech_gives_no_sequences(standard: str, speech: dict[str, np.ndarray]) -> None:
    assert sum(x.size for x in speech.values()) / RATE >= 30
    for voice, x in speech.items():
        for gain in (0.3, 1.0, 3.0):
            found = calls(np.clip(gain * x, -1, 1), standard, min_length=2)
            assert found == [], f"talk-off on {voice} at gain {gain}: {found}"


@pytest.mark.parametrize("standard", ALL)
def test_speech_under_white_noise_gives_no_sequences(standard: str, speech: dict[str, np.ndarray]) -> None:
    """A voice on a noisy channel: a harmonic standing alone above the noise must not make a call."""
    rng = np.random.default_rng(11)
    for voice, x in speech.items():
        for gain, noise in ((0.3, 0.02), (1.0, 0.05), (1.0, 0.2), (3.0, 0.1)):
            noisy = (np.clip(gain * x, -1, 1) + rng.normal(0, noise, x.size)).astype(np.float32)
            found = calls(noisy, standard, min_length=2)
            assert found == [], f"talk-off on {voice} at gain {gain}, noise {noise}: {found}"


@pytest.mark.parametrize("standard", ALL)
def test_music_gives_no_sequences(standard: str, music: np.ndarray) -> None:
    for gain in (0.3, 1.0):
        assert calls(gain * music, standard, min_length=2) == []
