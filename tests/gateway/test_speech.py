"""Spoken announcements from espeak-ng: Mandarin and English come out as speech of a plausible length at
the level asked, the streamed WAV is read to its end, and what cannot be spoken says why."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest

from gateway.speech import SpeechError, speak, wav_samples


@pytest.fixture(autouse=True)
def _espeak() -> None:
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI"):
            pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed")


def voiced_s(x: np.ndarray, rate: int) -> float:
    """Seconds of 20 ms frames with speech energy (over -40 dBFS)."""
    n = rate // 50
    frames = x[: x.size // n * n].reshape(-1, n)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.count_nonzero(rms > 0.01) * 0.02)


@pytest.mark.parametrize(("text", "voice", "low", "high"), [
    ("案件一二三四，占道经营，请在五分钟内前往文一路。", "cmn", 4.0, 14.0),
    ("Case one two three four, street stall at Wenyi Road, accept within five minutes.", "en", 3.0, 9.0),
])
def test_an_announcement_is_speech_of_about_its_length_at_the_level_asked(
    text: str, voice: str, low: float, high: float
) -> None:
    x, rate = speak(text, voice, wpm=150, level=0.5)
    assert rate == 22050 and x.dtype == np.float32
    assert abs(float(np.max(np.abs(x))) - 0.5) < 1e-3
    assert low < x.size / rate < high
    assert voiced_s(x, rate) > 0.5 * x.size / rate  # mostly speech, not silence


def test_slower_speech_takes_longer() -> None:
    fast, _ = speak("Unit one zero zero one, radio check", "en", wpm=220)
    slow, _ = speak("Unit one zero zero one, radio check", "en", wpm=110)
    assert slow.size > 1.5 * fast.size


def test_text_that_looks_like_an_option_is_spoken_not_obeyed() -> None:
    x, rate = speak("--help -w /tmp/x.wav", "en")
    assert x.size / rate > 0.5


@pytest.mark.parametrize(("text", "voice", "why"), [
    ("", "en", "empty"), ("   ", "cmn", "empty"), ("hello", "xx-nothing", "does not exist"),
    ("hello", "-w", "espeak-ng voice name"), ("hello", "en\n", "espeak-ng voice name"),
    ("x" * 2001, "en", "at most 2000"),
])
def test_what_cannot_be_spoken_says_why(text: str, voice: str, why: str) -> None:
    with pytest.raises(SpeechError, match=why):
        speak(text, voice)


def test_a_streamed_wav_is_read_to_its_end_whatever_its_length_fields_say() -> None:
    pcm = (np.arange(1000) - 500).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 0x7FFFFFFF) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
    x, rate = wav_samples(header + fmt + b"data" + struct.pack("<I", 0x7FFFF000) + pcm)
    assert rate == 22050 and x.size == 1000 and x[0] == pytest.approx(-500 / 32768)
    with pytest.raises(SpeechError, match="no WAV"):
        wav_samples(b"garbage")
    with pytest.raises(SpeechError, match="PCM mono 16 bit"):
        wav_samples(header + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 22050, 88200, 4, 16) + b"data")
