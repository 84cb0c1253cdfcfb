"""Transmission recording: where each received transmission starts and ends, on audio the tests make."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.recorder import CallEnded, CallRecorder, CallStarted

RATE = 8000
T0 = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def quiet(seconds: float, level: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * RATE)) * level).astype(np.float32)


def voice(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """A vowel-like sound: a 150 Hz buzz with harmonics, syllables at 4 Hz."""
    t = np.arange(round(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (amplitude * buzz * syllables / 3).astype(np.float32)


def run(recorder: CallRecorder, x: np.ndarray, cuts: list[int] | None = None) -> list[CallStarted | CallEnded]:
    out: list[CallStarted | CallEnded] = []
    edges = [0, *sorted(cuts or []), len(x)]
    for a, b in itertools.pairwise(edges):
        out += recorder.feed(x[a:b], T0 + timedelta(seconds=a / RATE))
    return out + recorder.flush(T0)


def ended(marks: list[CallStarted | CallEnded]) -> list[CallEnded]:
    return [m for m in marks if isinstance(m, CallEnded)]


def test_two_transmissions_are_two_calls_with_their_start_and_length() -> None:
    x = np.concatenate([quiet(1.0), voice(2.0), quiet(2.0), voice(3.5), quiet(2.0)])
    marks = run(CallRecorder(RATE), x)
    calls = ended(marks)
    assert [type(m).__name__ for m in marks] == ["CallStarted", "CallEnded", "CallStarted", "CallEnded"]
    assert [round((c.time - T0).total_seconds(), 2) for c in calls] == [1.0, 5.0]
    assert [c.duration_s for c in calls] == [pytest.approx(2.0, abs=0.03), pytest.approx(3.5, abs=0.03)]
    # The start and the end mark one call: the id is made when it starts.
    assert marks[0].call_id == marks[1].call_id != marks[2].call_id


def test_the_clip_holds_the_pre_roll_the_transmission_and_the_hang() -> None:
    x = np.concatenate([quiet(1.0), voice(2.0), quiet(2.0)])
    (call,) = ended(run(CallRecorder(RATE, pre_roll_s=0.3, hang_s=0.8), x))
    assert call.clip_start == call.time - timedelta(seconds=0.3)
    assert len(call.samples) / RATE == pytest.approx(0.3 + 2.0 + 0.8, abs=0.03)
    offset = round((call.time - call.clip_start).total_seconds() * RATE)
    np.testing.assert_array_equal(call.samples[offset:offset + 100], x[RATE:RATE + 100])


def test_steady_receiver_noise_is_no_transmission_but_speech_over_it_is() -> None:
    hiss = quiet(12.0, level=0.02, seed=3)  # an open squelch: -34 dBFS of noise, above the -40 dBFS threshold
    assert ended(run(CallRecorder(RATE), hiss)) == []
    x = hiss.copy()
    x[5 * RATE:7 * RATE] = voice(2.0) + 0.2 * x[5 * RATE:7 * RATE]  # a carrier quiets the FM noise
    (call,) = ended(run(CallRecorder(RATE), x))
    assert (call.time - T0).total_seconds() == pytest.approx(5.0, abs=0.05)


def test_a_click_is_marked_short() -> None:
    x = np.concatenate([quiet(1.0), voice(0.1), quiet(2.0)])
    (call,) = ended(run(CallRecorder(RATE, min_s=0.3), x))
    assert call.short and call.duration_s == pytest.approx(0.1, abs=0.03)


def test_a_transmission_longer_than_max_s_is_cut_into_calls() -> None:
    x = np.concatenate([quiet(0.5), voice(5.0), quiet(1.5)])
    calls = ended(run(CallRecorder(RATE, max_s=2.0), x))
    assert [c.cut for c in calls] == [True, True, False]
    assert sum(c.duration_s for c in calls) == pytest.approx(5.0, abs=0.05)


def test_cor_marks_the_transmission_whatever_the_audio() -> None:
    rec = CallRecorder(RATE, detect="cor", hang_s=0.2, pre_roll_s=0.0)
    out = rec.feed(quiet(1.0), T0)
    rec.carrier(True)
    out += rec.feed(quiet(2.0, level=0.001), T0 + timedelta(seconds=1))  # near silence: the relay says it is a call
    rec.carrier(False)
    out += rec.feed(quiet(1.0), T0 + timedelta(seconds=3))
    (call,) = ended(out)
    assert (call.time - T0).total_seconds() == pytest.approx(1.0)
    assert call.duration_s == pytest.approx(2.0, abs=0.03)


def test_an_open_call_ends_where_the_recording_does() -> None:
    rec = CallRecorder(RATE)
    out = rec.feed(np.concatenate([quiet(1.0), voice(1.0)]), T0)
    assert [type(m) for m in out] == [CallStarted]
    (call,) = ended(rec.flush(T0))
    assert call.duration_s == pytest.approx(1.0, abs=0.03)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="detect"):
        CallRecorder(RATE, detect="squelch")


X = np.concatenate([quiet(0.7, 0.01, 5), voice(1.3), quiet(1.1, 0.01, 6), voice(0.9), quiet(1.0, 0.01, 7)])
WHOLE = [(type(m).__name__, m.time, getattr(m, "duration_s", None)) for m in run(CallRecorder(RATE), X)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, len(X) - 1), max_size=12))
def test_any_cut_of_the_audio_gives_the_same_calls(cuts: list[int]) -> None:
    marks = run(CallRecorder(RATE), X, cuts)
    assert [(type(m).__name__, m.time, getattr(m, "duration_s", None)) for m in marks] == WHOLE
    whole = ended(run(CallRecorder(RATE), X))
    for a, b in zip(ended(marks), whole, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)
