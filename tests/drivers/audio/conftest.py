"""Signals shared by the audio decoder tests: speech from espeak-ng in several voices, at 8000 Hz."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

#: Voices and what they say: English (two accents) and Mandarin, over 30 s in all. The texts are radio
#: traffic full of numbers, the speech most likely to be keyed up beside DTMF and selcall.
SPEECH = {
    "en": "The quick brown fox jumps over the lazy dog. Unit seven, please respond to the incident on the "
    "highway near exit twelve. Dispatch, this is car one two three four, we are on scene. Copy that, stand by "
    "for further instructions. One two three four five six seven eight nine zero.",
    "en-us": "Control, this is patrol nine, requesting backup at the corner of Fifth and Main. Say again, your "
    "signal is weak and broken. Roger, ambulance is on the way, estimated arrival eight minutes. Oh, hello? "
    "Hmmmm. Eeeee. Aaaaah. Whistle and hum, beep beep, ring ring.",
    "cmn": "今天天气很好，我们去公园散步吧。请大家注意安全，车辆马上就要出发了。一二三四五六七八九十。"
    "警察局报告，三号车辆在高速公路上，请立即回复。收到，收到，请再说一遍。",
}


def need(tool: str) -> None:
    """Skip without ``tool``, except under CI, where a missing tool is a failure."""
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (apt-get install {tool})")
        pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Each voice's speech as float32 samples at 8000 Hz, normalised to a peak of 0.9."""
    need("espeak-ng")
    out: dict[str, np.ndarray] = {}
    folder: Path = tmp_path_factory.mktemp("speech")
    for voice, text in SPEECH.items():
        wav = folder / f"{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        rate, data = wavfile.read(wav)
        x = data.astype(np.float64) / 32768.0
        g = np.gcd(8000, rate)
        x = resample_poly(x, 8000 // g, rate // g)
        out[voice] = (0.9 * x / np.max(np.abs(x))).astype(np.float32)
    return out


@pytest.fixture(scope="session")
def music() -> np.ndarray:
    """20 s of synthetic music at 8000 Hz: two voices of harmonic-rich notes (a reed-like 1/k spectrum)
    on an equal-tempered scale, with vibrato, chords and silences, from a fixed seed."""
    rate, rng = 8000, np.random.default_rng(42)
    out: list[np.ndarray] = []
    for _ in range(80):
        n = int(rng.uniform(0.1, 0.4) * rate)
        t = np.arange(n) / rate
        note = np.zeros(n)
        for _voice in range(int(rng.integers(1, 3))):
            f0 = 220 * 2 ** (int(rng.integers(-5, 20)) / 12)
            vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
            phase = 2 * np.pi * f0 * np.cumsum(vibrato) / rate
            note += sum(np.sin(k * phase) / k for k in range(1, 8) if k * f0 < 3800)
        envelope = np.minimum(1, np.minimum(t, t[::-1]) / 0.02)
        out.append(note * envelope)
        if rng.random() < 0.2:
            out.append(np.zeros(int(0.1 * rate)))
    x = np.concatenate(out)
    tune: np.ndarray = (0.8 * x / np.max(np.abs(x))).astype(np.float32)
    return tune
