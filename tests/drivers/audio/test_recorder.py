"""Transmission recording: where each received transmission starts and ends, on audio the tests make."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.recorder import LOOKBACK_S, CallEnded, CallRecorder, CallStarted

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


def steady(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """A digital signal's discriminator audio as the level sees it: the same loudness all along."""
    rng = np.random.default_rng(11)
    return (amplitude * np.sign(rng.standard_normal(round(seconds * RATE)))).astype(np.float32)


def bursts(start: float, end: float) -> list[tuple[float, float]]:
    """What a DMR decoder hears of one slot: a 27.5 ms burst every 60 ms."""
    return [(t, t + 0.0275) for t in np.arange(start, end - 0.0275, 0.06).tolist()]


def run_heard(recorder: CallRecorder, x: np.ndarray, heard: list[tuple[float, float]], *, late_s: float = 0.2,
              cuts: list[int] | None = None) -> list[CallStarted | CallEnded]:
    """Fed in blocks of at most 0.1 s (and at ``cuts``); a decoder says what it heard ``late_s`` after it."""
    out: list[CallStarted | CallEnded] = []
    edges = sorted({*range(0, len(x), RATE // 10), *(cuts or []), len(x)})
    todo = list(heard)
    for a, b in itertools.pairwise(edges):
        out += recorder.feed(x[a:b], T0 + timedelta(seconds=a / RATE))
        while todo and todo[0][1] + late_s <= b / RATE:
            h0, h1 = todo.pop(0)
            out += recorder.heard(T0 + timedelta(seconds=h0), T0 + timedelta(seconds=h1))
    return out + recorder.flush(T0)


def test_a_steady_signal_from_the_first_frame_is_a_call_only_where_a_decoder_heard_it() -> None:
    x = np.concatenate([steady(3.0), quiet(2.0)])
    assert ended(run(CallRecorder(RATE), x)) == []  # by its level the signal is the noise floor
    marks = run_heard(CallRecorder(RATE, pre_roll_s=0.3), x, bursts(1.0, 3.0))
    assert [type(m) for m in marks] == [CallStarted, CallEnded]
    (call,) = ended(marks)
    # Heard 0.2 s late, the call still starts where the signal was, with its pre-roll.
    assert marks[0].time == call.time and (call.time - T0).total_seconds() == pytest.approx(1.0, abs=0.02)
    assert call.duration_s == pytest.approx(2.0, abs=0.05)
    assert call.clip_start == call.time - timedelta(seconds=0.3)
    offset = round((call.clip_start - T0).total_seconds() * RATE)
    np.testing.assert_array_equal(call.samples[:100], x[offset:offset + 100])


def test_a_long_steady_transmission_lasts_as_long_as_it_is_heard() -> None:
    hiss = 0.01  # -40 dBFS between transmissions
    x = np.concatenate([quiet(1.0, hiss), steady(15.0) + quiet(15.0, hiss, 1), quiet(2.0, hiss, 2)])
    (by_level,) = ended(run(CallRecorder(RATE), x))
    assert by_level.duration_s < 8  # the floor rose to the signal and ended it
    (call,) = ended(run_heard(CallRecorder(RATE), x, bursts(1.0, 16.0)))
    assert (call.time - T0).total_seconds() == pytest.approx(1.0, abs=0.02)
    assert call.duration_s == pytest.approx(15.0, abs=0.05)


def test_a_decoder_too_late_starts_the_call_no_further_back_than_the_look_back() -> None:
    x = np.concatenate([steady(4.0), quiet(2.0)])
    (call,) = ended(run_heard(CallRecorder(RATE), x, [(0.5, 3.0)], late_s=0.0))  # said at 3.0 s: 2.5 s late
    assert (call.time - T0).total_seconds() == pytest.approx(3.0 - LOOKBACK_S, abs=0.02)
    assert call.duration_s == pytest.approx(LOOKBACK_S, abs=0.03)


def test_what_is_heard_of_a_call_that_ended_starts_another_that_never_overlaps_it() -> None:
    x = np.concatenate([steady(4.0), quiet(2.0)])
    # Said 0.5 s late with a hang of 0.1 s: the first call has ended when the second span (which began
    # inside it) is told; the second call starts where the first ended.
    calls = ended(run_heard(CallRecorder(RATE, hang_s=0.1), x, [(0.5, 1.0), (0.8, 1.4)], late_s=0.5))
    assert len(calls) == 2
    first_end = calls[0].time + timedelta(seconds=calls[0].duration_s)
    assert calls[1].time == first_end and (first_end - T0).total_seconds() == pytest.approx(1.0, abs=0.02)


HEARD_X = np.concatenate([steady(1.5), quiet(1.0), steady(2.0), quiet(1.5)])
HEARD = bursts(0.3, 1.5) + bursts(2.5, 4.5)
HEARD_WHOLE = [(type(m).__name__, m.time, getattr(m, "duration_s", None))
               for m in run_heard(CallRecorder(RATE), HEARD_X, HEARD)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, len(HEARD_X) - 1), max_size=12))
def test_any_cut_gives_the_same_calls_with_what_a_decoder_heard(cuts: list[int]) -> None:
    marks = run_heard(CallRecorder(RATE), HEARD_X, HEARD, cuts=cuts)
    assert len(HEARD_WHOLE) == 4
    assert [(type(m).__name__, m.time, getattr(m, "duration_s", None)) for m in marks] == HEARD_WHOLE


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
