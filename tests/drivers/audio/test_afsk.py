"""AFSK1200 audio -> APRS events, on audio made by Dire Wolf's gen_packets: every APRS position format
at every supported rate, the gen_packets noise sweep beside Dire Wolf's own atest, any split of the
audio into blocks, and garbage that must never raise."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import wave
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter
from support import afsk_audio

from drivers.audio import afsk
from drivers.audio.afsk import Afsk1200Decoder
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind

START = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)

needs_direwolf = pytest.mark.skipif(
    shutil.which("gen_packets") is None or shutil.which("atest") is None,
    reason="Dire Wolf is not installed (apt-get install direwolf)",
)

# A patrol channel: every position format APRS has, an emergency, a status, a message, a frame that
# is AX.25 but not APRS (a status saying so), and one beacon sent twice (two transmissions, two events).
PACKETS = [
    b"BG5ABC-9>APDW16,WIDE1-1:!3012.57N/12012.64E>090/010/A=000100 patrol 1",  # uncompressed
    b"BG5ABC-5>APDW16:=/5L!!<*e7>7P[",  # compressed (APRS 1.0.1 chapter 9 example)
    b"BG5ABC-7>301RU7,WIDE1-1,WIDE2-1:`0(\\lNv>/",  # Mic-E, message bits 000: emergency
    b"BG5ABC-8>S01RU7:`0(\\lNv>/",  # Mic-E, message bits 100: returning
    b"BG5XYZ-12>APDW16:@261929z3011.00N/12013.50E>180/005",  # with a timestamp
    b"BG5ABC-9>APDW16:>on patrol, gate 3",  # status
    b"BG5ABC-9>APDW16::DISPATCH :Need backup at gate 3{17",  # message
    b"N0CALL>ID:N0CALL/R",  # a station identification: AX.25 but not APRS
    b"BG5ABC-9>APDW16,WIDE1-1:!3012.57N/12012.64E>090/010/A=000100 patrol 1",  # the first, again
]
EXPECTED = [
    (Kind.BEACON, "aprs:BG5ABC-9", (30.2095, 120.2106667)),
    (Kind.BEACON, "aprs:BG5ABC-5", (49.5, -72.75)),
    (Kind.ALERT, "aprs:BG5ABC-7", (30.2095, 120.2106667)),
    (Kind.BEACON, "aprs:BG5ABC-8", (30.2095, 120.2106667)),
    (Kind.BEACON, "aprs:BG5XYZ-12", (30 + 11 / 60, 120 + 13.5 / 60)),
    (Kind.STATUS, "aprs:BG5ABC-9", None),
    (Kind.STATUS, "aprs:BG5ABC-9", None),
    (Kind.STATUS, "aprs:N0CALL", None),
    (Kind.BEACON, "aprs:BG5ABC-9", (30.2095, 120.2106667)),
]


def pcm_to_float(pcm: bytes) -> np.ndarray:
    # afsk_audio pads with bytes(rate) of silence: an odd count at 22050 and 11025 Hz.
    pcm = pcm[: len(pcm) // 2 * 2]
    return (np.frombuffer(pcm, "<i2").astype(np.float32) / 32768).astype(np.float32)


def decode(samples: np.ndarray, rate: int, blocks: Sequence[int] | None = None) -> list[Output]:
    """Feed the audio in blocks of the given sizes (cycled), or in one-second blocks."""
    decoder = Afsk1200Decoder(rate)
    out: list[Output] = []
    sizes = list(blocks) if blocks else [rate]
    pos, k = 0, 0
    while pos < samples.size:
        n = sizes[k % len(sizes)]
        out += decoder.feed(samples[pos : pos + n], START + timedelta(seconds=pos / rate))
        pos, k = pos + n, k + 1
    out += decoder.flush(START + timedelta(seconds=samples.size / rate))
    return out


def decoded(out: list[Output]) -> list[Decoded]:
    return [o for o in out if isinstance(o, Decoded)]


def summary(out: list[Output]) -> list[tuple[str, str, float, str]]:
    """What a split must not change: each frame, where it ended, and which slicer reported it."""
    return [
        (o.detail["raw"], str(o.kind), o.detail["offset_s"], o.detail["demodulator"])
        if isinstance(o, Decoded)
        else (o.raw.hex(), "rejected", 0.0, o.reason)
        for o in out
    ]


@pytest.fixture(scope="module")
def patrol_audio(tmp_path_factory: pytest.TempPathFactory) -> dict[int, np.ndarray]:
    cache: dict[int, np.ndarray] = {}
    if shutil.which("gen_packets") is None:
        pytest.skip("Dire Wolf is not installed (apt-get install direwolf)")
    for rate in Afsk1200Decoder.rates:
        cache[rate] = pcm_to_float(afsk_audio(PACKETS, tmp_path_factory.mktemp(f"afsk{rate}"), rate))
    return cache


@needs_direwolf
@pytest.mark.parametrize("rate", Afsk1200Decoder.rates)
def test_every_aprs_format_at_every_rate(patrol_audio: dict[int, np.ndarray], rate: int) -> None:
    out = decode(patrol_audio[rate], rate)
    events = decoded(out)
    assert [(e.kind, e.unit) for e in events] == [(kind, unit) for kind, unit, _ in EXPECTED]
    for event, (_, _, position) in zip(events, EXPECTED, strict=True):
        if position is None:
            assert event.position is None
        else:
            assert event.position is not None
            assert (event.position.lat, event.position.lon) == pytest.approx(position, abs=1e-5)
        assert event.detail["protocol"] == "aprs"
        assert event.detail["demodulator"]
        # The event time is the sample where the frame ended, also given as the offset in the audio.
        assert abs((event.time - START).total_seconds() - event.detail["offset_s"]) < 0.001
    assert events[0].detail["raw"] == PACKETS[0].decode()
    assert events[2].detail["mic_e_message"] == "emergency"
    assert events[3].detail["mic_e_message"] == "returning"
    assert events[6].detail["text"] == "Need backup at gate 3"
    assert [r for r in out if isinstance(r, Rejected)] == []
    assert (events[7].detail["type"], events[7].detail["raw"]) == ("unknown", "N0CALL>ID:N0CALL/R")
    offsets = [e.detail["offset_s"] for e in events]
    assert offsets == sorted(offsets)
    assert offsets[-1] - offsets[0] > 1  # the repeated beacon is a second transmission, not a duplicate


def atest_count(wav: Path) -> int:
    result = subprocess.run(["atest", str(wav)], capture_output=True, text=True, timeout=60, check=True)
    found = re.search(r"(\d+) packets? decoded in", result.stdout)
    assert found, result.stdout[-2000:]
    return int(found.group(1))


@needs_direwolf
@pytest.mark.direwolf
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_noise_sweep_beside_atest(tmp_path: Path, rate: int) -> None:
    # gen_packets -n 100: 100 frames, each with more noise than the last (Dire Wolf User Guide,
    # "gen_packets"); atest is Dire Wolf's own decoder run over the same file (default profile E+).
    wav = tmp_path / f"sweep{rate}.wav"
    subprocess.run(
        ["gen_packets", "-n", "100", "-r", str(rate), "-o", str(wav)], check=True, capture_output=True, timeout=60
    )
    theirs = atest_count(wav)
    with wave.open(str(wav)) as w:
        samples = pcm_to_float(w.readframes(w.getnframes()))
    out = decode(samples, rate)
    # The test frames ("WB2OSZ-15>TEST:,The quick brown fox ... 0001 of 0100") are "," frames, APRS's
    # "invalid data or test data": each is a status event with its text. Count them, once each.
    numbers = [re.search(r"(\d{4}) of 0100", o.detail["text"]) for o in decoded(out) if o.detail["type"] == "test"]
    ours = [int(m.group(1)) for m in numbers if m]
    assert len(ours) == len(out) == len(set(ours))  # nothing else, no duplicates
    assert len(ours) >= 0.8 * theirs, f"AFSK1200 noise sweep at {rate} Hz: ours {len(ours)}, atest {theirs}"


def noisy_patrol(samples: np.ndarray, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (samples + rng.normal(0, 0.08, samples.size)).astype(np.float32)


@needs_direwolf
@pytest.mark.parametrize(("seed", "longest", "gather"), [(1, 3000, True), (2, 3000, False), (3, 40, False)])
def test_any_split_gives_the_same_frames(
    patrol_audio: dict[int, np.ndarray], monkeypatch: pytest.MonkeyPatch, seed: int, longest: int, gather: bool
) -> None:
    rate = 22050
    audio = noisy_patrol(patrol_audio[rate][: rate * 6])
    whole = decode(audio, rate, [audio.size])
    assert len(decoded(whole)) >= 4
    if not gather:  # demodulate every block as it comes, so the splits reach every stage
        monkeypatch.setattr(afsk, "CHUNK_SECONDS", 0)
    sizes = np.random.default_rng(seed).integers(1, longest, 500).tolist()
    assert summary(decode(audio, rate, sizes)) == summary(whole)


def test_noise_and_garbage_never_raise() -> None:
    rng = np.random.default_rng(11)
    decoder = Afsk1200Decoder(22050)
    blocks = [
        rng.normal(0, 0.3, 22050 * 5),  # white noise
        np.clip(rng.normal(0, 5, 22050), -1, 1),  # clipped
        np.zeros(0),  # empty
        np.zeros(1000),  # digital silence
        np.full(1000, 1.0),  # DC
        np.full(500, np.nan),
        np.array([np.inf, -np.inf, 1e30, -1e30]),
        rng.uniform(-1, 1, 7),
        np.sin(2 * np.pi * 1200 * np.arange(22050) / 22050),  # a steady mark tone: flags never come
        np.sin(2 * np.pi * 1700 * np.arange(22050) / 22050),  # between the tones
    ]
    out: list[Output] = []
    pos = 0
    for block in blocks:
        out += decoder.feed(block.astype(np.float32), START + timedelta(seconds=pos / 22050))
        pos += block.size
    out += decoder.flush(START + timedelta(seconds=pos / 22050))
    assert decoded(out) == []


@needs_direwolf
def test_nan_between_packets_loses_nothing(patrol_audio: dict[int, np.ndarray]) -> None:
    rate = 22050
    audio = patrol_audio[rate].copy()
    # A burst of NaN (a broken driver) in the silence between the first two packets.
    silent = np.flatnonzero(np.abs(audio[: rate * 2]) < 1e-4)
    gap = silent[silent > rate // 2][:200]
    audio[gap] = np.nan
    events = decoded(decode(audio, rate))
    assert [(e.kind, e.unit) for e in events] == [(kind, unit) for kind, unit, _ in EXPECTED]


def test_options_and_rates() -> None:
    assert Afsk1200Decoder().rate == Afsk1200Decoder.rates[0]
    assert Afsk1200Decoder(fix_bits=0).rate == 22050
    with pytest.raises(ValueError, match="fix_bits"):
        Afsk1200Decoder(fix_bits=1)
    with pytest.raises(ValueError, match="runs at"):
        Afsk1200Decoder(12345)
    with pytest.raises(TypeError, match="no option"):
        Afsk1200Decoder(bogus=1)


# Filters that tilt the audio by about 6 dB/octave, as radios with and without emphasis do: the two
# tones come out 4 to 5 dB apart.
TILTS = {
    "de-emphasis": ([0.2], [1, -0.8]),  # one-pole low-pass: mark louder
    "pre-emphasis": ([1, -0.9], [1]),  # first difference: space louder
}


@needs_direwolf
@pytest.mark.parametrize("tilt", TILTS)
def test_tilted_audio_is_decoded(patrol_audio: dict[int, np.ndarray], tilt: str) -> None:
    # The slicers' space gains are there for this.
    rate = 22050
    tilted = lfilter(*TILTS[tilt], patrol_audio[rate])
    tilted = (0.5 * tilted / np.max(np.abs(tilted))).astype(np.float32)
    out = decode(tilted, rate)
    assert [(e.kind, e.unit) for e in decoded(out)] == [(kind, unit) for kind, unit, _ in EXPECTED]


@needs_direwolf
@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(1, 22050 * 6 - 1), max_size=20))
def test_hypothesis_splits(patrol_audio: dict[int, np.ndarray], cuts: list[int]) -> None:
    rate = 22050
    audio = noisy_patrol(patrol_audio[rate][: rate * 6])
    bounds = sorted({0, audio.size, *cuts})
    decoder = Afsk1200Decoder(rate)
    out: list[Output] = []
    for lo, hi in itertools.pairwise(bounds):
        out += decoder.feed(audio[lo:hi], START + timedelta(seconds=lo / rate))
    out += decoder.flush(START + timedelta(seconds=audio.size / rate))
    assert summary(out) == _whole(audio.tobytes())


_WHOLE: dict[bytes, list[tuple[str, str, float, str]]] = {}


def _whole(key: bytes) -> list[tuple[str, str, float, str]]:
    if key not in _WHOLE:
        audio = np.frombuffer(key, np.float32)
        _WHOLE[key] = summary(decode(audio, 22050, [audio.size]))
    return _WHOLE[key]
