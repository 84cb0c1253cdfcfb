"""Audio sources, resampling, level metering and channel splitting, on signals made here (numpy, sox) and
through a real PortAudio device: a private PulseAudio null sink's monitor."""

from __future__ import annotations

import ctypes.util
import io
import itertools
import math
import os
import shutil
import subprocess
import sys
import threading
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import wavfile
from scipy.signal import resample_poly
from support import PulseNullSink, peak_frequency, tone, wait_until

from drivers.audio.source import (
    FILE_EPOCH,
    AudioSourceError,
    ChannelSplitter,
    DeviceSource,
    LevelMeter,
    RawSource,
    Resampler,
    WavSource,
    list_devices,
    load_sounddevice,
    open_source,
)


def rms_db(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))))


def read_all(source: WavSource | RawSource) -> np.ndarray:
    with source:
        return np.concatenate([b for b, _ in source.blocks()])


def need_sox() -> None:
    if shutil.which("sox") is None:
        if os.environ.get("CI"):
            pytest.fail("sox is not installed (apt-get install sox)")
        pytest.skip("sox is not installed")


# --- WAV files -------------------------------------------------------------------------------------

SOX_FORMATS = {
    "u8": ["-b", "8", "-e", "unsigned-integer"],
    "s16": ["-b", "16", "-e", "signed-integer"],
    "s24": ["-b", "24", "-e", "signed-integer"],
    "s32": ["-b", "32", "-e", "signed-integer"],
    "f32": ["-b", "32", "-e", "floating-point"],
}


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fmt", list(SOX_FORMATS))
def test_wav_tone_reads_back_at_its_level_and_frequency(tmp_path: Path, fmt: str, channels: int, rate: int) -> None:
    """sox writes a 0.5 s tone at half scale (1 kHz left, 1.5 kHz right); we read the same tone back."""
    need_sox()
    path = tmp_path / f"tone-{fmt}-{channels}-{rate}.wav"
    synth = ["sine", "1000"] + (["sine", "1500"] if channels == 2 else [])
    subprocess.run(["sox", "-D", "-n", "-r", str(rate), "-c", str(channels), *SOX_FORMATS[fmt], str(path),
                    "synth", "0.5", *synth, "vol", "0.5"], check=True)
    source = WavSource(path, blocksize=1000)
    assert (source.rate, source.channels, source.frames) == (rate, channels, rate // 2)
    x = read_all(source)
    assert x.dtype == np.float32 and x.shape == (rate // 2, channels)
    for c, freq in enumerate([1000, 1500][:channels]):
        assert abs(peak_frequency(x[:, c], rate) - freq) < 1.0
        assert abs(rms_db(x[:, c]) - 20 * math.log10(0.5 / math.sqrt(2))) < 0.1  # -9.03 dBFS
        assert 0.49 < np.max(np.abs(x[:, c])) <= 0.51


def test_wav_blocks_are_timed_from_the_start_of_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    wavfile.write(path, 8000, tone(1000, 1.0, 8000))  # scipy writes plain IEEE float (tag 3), not extensible
    starts = [t for _, t in WavSource(path, blocksize=3000).blocks()]
    assert starts == [FILE_EPOCH + timedelta(seconds=s) for s in (0, 0.375, 0.75)]
    given_start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert next(WavSource(path, start=given_start).blocks())[1] == given_start


def test_wav_16_bit_from_the_stdlib_and_full_scale(tmp_path: Path) -> None:
    path = tmp_path / "w.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.array([-32768, 0, 32767, 16384], "<i2").tobytes())
    assert read_all(WavSource(path))[:, 0].tolist() == [-1.0, 0.0, 32767 / 32768, 0.5]


def test_not_a_wav_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3 not a wav at all")
    with pytest.raises(AudioSourceError, match="not a WAV file"):
        WavSource(path)
    with pytest.raises(AudioSourceError, match="cannot open"):
        WavSource(tmp_path / "missing.wav")


# --- raw PCM and addresses -------------------------------------------------------------------------


def test_raw_pcm_on_stdin_in_any_block_size() -> None:
    pcm = (tone(1000, 0.5, 8000, channels=2) * 32767).astype("<i2").tobytes() + b"\x01"  # a torn last frame
    source = RawSource(io.BytesIO(pcm), 8000, 2, blocksize=333)
    x = read_all(source)
    assert x.shape == (4000, 2)
    assert abs(peak_frequency(x[:, 1], 8000) - 1000) < 1.0


@pytest.mark.parametrize(("fmt", "dtype"), [("u8", "u1"), ("s16be", ">i2"), ("s32le", "<i4"), ("f32le", "<f4")])
def test_raw_sample_formats(fmt: str, dtype: str) -> None:
    x = tone(440, 0.1, 8000)
    scale = {"u1": 127, ">i2": 32767, "<i4": 2**31 - 1, "<f4": 1}[dtype]
    data = (x * scale + (128 if dtype == "u1" else 0)).astype(dtype).tobytes()
    y = read_all(RawSource(io.BytesIO(data), 8000, 1, fmt))[:, 0]
    assert np.max(np.abs(y - x)) < 1.5 / 128


def test_open_source_by_address(tmp_path: Path) -> None:
    path = tmp_path / "a b.wav"
    wavfile.write(path, 22050, tone(1000, 0.1, 22050))
    for spec in (str(path), f"wav:{path}", f"file://{str(path).replace(' ', '%20')}"):
        with open_source(spec) as source:
            assert isinstance(source, WavSource) and source.rate == 22050
    raw = open_source("-?rate=8000&channels=2&format=s16le", stdin=io.BytesIO(bytes(8)))
    assert isinstance(raw, RawSource) and (raw.rate, raw.channels) == (8000, 2)
    assert isinstance(open_source("stdin:", rate=16000, stdin=io.BytesIO()), RawSource)
    with pytest.raises(AudioSourceError, match="needs a rate"):
        open_source("-", stdin=io.BytesIO())
    with pytest.raises(AudioSourceError, match="unknown option colour"):
        open_source(f"{path}?colour=red")


# --- resampling ------------------------------------------------------------------------------------


def resample(x: np.ndarray, a: int, b: int, block: int = 1000) -> np.ndarray:
    r = Resampler(a, b)
    return np.concatenate([*(r.feed(x[i : i + block]) for i in range(0, len(x), block)), r.flush()])


@pytest.mark.parametrize(("a", "b", "freqs"), [
    (44100, 8000, [300, 1000, 2000, 3000]),
    (48000, 22050, [300, 1000, 4000, 8000]),
    (8000, 48000, [300, 1000, 2000, 3000]),
])
def test_resampler_keeps_tones_in_band(a: int, b: int, freqs: list[int]) -> None:
    for freq in freqs:
        y = resample(tone(freq, 1.0, a), a, b)
        assert len(y) == b
        steady = y[b // 10 : -b // 10]
        assert abs(peak_frequency(steady, b) - freq) < 1.0
        assert abs(rms_db(steady) - rms_db(tone(freq, 1.0, a))) < 0.5, f"{freq} Hz"


def test_resampler_suppresses_aliasing() -> None:
    """6 kHz is above the 4 kHz Nyquist frequency of 8000 Hz: it must not come back as a 2 kHz tone."""
    y = resample(tone(6000, 1.0, 44100), 44100, 8000)
    assert rms_db(y[800:-800]) - rms_db(tone(6000, 1.0, 44100)) < -40


def test_resampler_equals_resample_poly_of_the_whole_signal() -> None:
    x = np.random.default_rng(7).standard_normal(30000)
    for a, b in [(44100, 8000), (48000, 22050), (8000, 48000), (11025, 8000)]:
        r = Resampler(a, b)
        assert np.max(np.abs(resample(x, a, b, 777) - resample_poly(x, r.up, r.down))) < 1e-5


def test_resampler_at_equal_rates_passes_through() -> None:
    x = tone(1000, 0.1, 8000)
    r = Resampler(8000, 8000)
    assert np.array_equal(r.feed(x), x) and len(r.flush()) == 0


NOISE = np.random.default_rng(3).uniform(-1, 1, 6000)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([(44100, 8000), (48000, 22050), (8000, 48000)]),
       st.lists(st.integers(0, len(NOISE)), max_size=12))
def test_resampler_gives_the_same_output_however_the_input_is_cut(rates: tuple[int, int], cuts: list[int]) -> None:
    a, b = rates
    whole = resample(NOISE, a, b, len(NOISE))
    r = Resampler(a, b)
    bounds = [0, *sorted(cuts), len(NOISE)]
    pieces = [r.feed(NOISE[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
    split = np.concatenate([*pieces, r.flush()])
    assert split.shape == whole.shape
    assert np.max(np.abs(split - whole)) < 1e-6


# --- levels and channels ---------------------------------------------------------------------------


def test_level_meter_reads_a_full_scale_sine_as_minus_3_dbfs() -> None:
    meter = LevelMeter(8000, 2, window_s=0.5)
    block = np.stack([tone(1000, 1.0, 8000, amplitude=1.0), tone(1000, 1.0, 8000, amplitude=0.1)], axis=1)
    for i in range(0, 8000, 700):
        meter.feed(block[i : i + 700])
    left, right = meter.as_dict()["channels"]
    assert left["rms_dbfs"] == pytest.approx(-3.01, abs=0.01)
    assert left["peak_dbfs"] == pytest.approx(0.0, abs=0.01)
    assert right["rms_dbfs"] == pytest.approx(-23.01, abs=0.01)
    assert right["peak_dbfs"] == pytest.approx(-20.0, abs=0.01)
    assert right["clipped"] == 0


def test_level_meter_counts_clipped_samples_and_reads_silence() -> None:
    meter = LevelMeter(8000, window_s=1.0)
    driven = np.clip(tone(50, 1.0, 8000, amplitude=2.0), -1, 1)  # an input driven 6 dB into clipping
    meter.feed(driven)
    level = meter.as_dict()["channels"][0]
    assert level["clipped"] == int(np.sum(np.abs(driven) >= 0.999)) > 2000
    meter.feed(np.zeros(8000, np.float32))
    level = meter.as_dict()["channels"][0]
    assert (level["rms_dbfs"], level["peak_dbfs"], level["clipped"]) == (-120.0, -120.0, 0)
    assert level["clipped_total"] > 2000


def test_level_meter_reads_what_it_has_not_measured_yet() -> None:
    # Blocks are measured a tenth of a second at a time; a reading before then still includes them, as
    # they were when fed (the caller may reuse its block).
    meter = LevelMeter(8000, window_s=1.0)
    block = tone(1000, 0.02, 8000, amplitude=0.5)
    meter.feed(block)
    block[:] = 1.0
    level = meter.as_dict()["channels"][0]
    assert level["rms_dbfs"] == pytest.approx(-9.03, abs=0.05) and level["peak_dbfs"] == pytest.approx(-6.02, abs=0.05)
    assert level["clipped_total"] == 0
    for _ in range(60):  # 1.2 s more in 20 ms blocks: a whole window, then part of the next
        meter.feed(block)
    level = meter.as_dict()["channels"][0]
    # The first window: the sine's 160 samples (mean square 0.125), then 7,840 at full scale.
    assert level["rms_dbfs"] == pytest.approx(10 * math.log10((160 * 0.125 + 7840) / 8000), abs=0.01)
    assert (level["peak_dbfs"], level["clipped"]) == (0.0, 8000 - 160)
    assert level["clipped_total"] == 60 * 160


def test_channel_splitter_gives_each_radio_its_input() -> None:
    block = np.arange(12, dtype=np.float32).reshape(3, 4)
    left, fourth = ChannelSplitter(4, [0, 3]).split(block)
    assert left.tolist() == [0, 4, 8] and fourth.tolist() == [3, 7, 11] and fourth.flags.c_contiguous
    with pytest.raises(ValueError, match="out of range"):
        ChannelSplitter(2, [2])


# --- devices ---------------------------------------------------------------------------------------


def test_unknown_device_lists_the_input_devices_that_exist() -> None:
    try:
        inputs = [d for d in list_devices() if d["inputs"] > 0]
    except AudioSourceError as exc:
        pytest.skip(str(exc))
    with pytest.raises(AudioSourceError, match="no input device matches 'no-such-card'") as err:
        DeviceSource("no-such-card")
    for d in inputs:
        assert f"{d['index']}: {d['name']}" in str(err.value)
    with pytest.raises(AudioSourceError, match="no input device with index 999; input devices:"):
        DeviceSource(999)


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """sounddevice raises OSError at import when libportaudio2 is absent; we say which package to install."""
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(AudioSourceError, match=r"apt-get install libportaudio2"):
        load_sounddevice()


def capture(sink: PulseNullSink, signal: np.ndarray, rate: int, channels: int = 1) -> tuple[np.ndarray, list[datetime]]:
    """Play ``signal`` into the sink while capturing its monitor through PortAudio; the captured blocks."""
    blocks: list[np.ndarray] = []
    starts: list[datetime] = []
    with DeviceSource(sink.device, rate, channels, blocksize=480) as source:

        def collect() -> None:
            for block, start in source.blocks():
                blocks.append(block)
                starts.append(start)

        def frames() -> int:
            return sum(len(b) for b in list(blocks))

        def loud_from() -> int | None:
            """Where the signal begins in what was captured (None: not yet)."""
            at = 0
            for b in list(blocks):
                hits = np.flatnonzero(np.abs(b).max(axis=1) > 0.001)
                if hits.size:
                    return at + int(hits[0])
                at += len(b)
            return None

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        wait_until(lambda: frames() > 0, 5, "the capture to run")  # before the first sample is played
        sink.play(signal, rate)
        sink.wait()
        # Played out is not yet captured (the monitor gives it back a little later): until the whole signal
        # and a tenth of a second after it are in.
        wait_until(lambda: (at := loud_from()) is not None and frames() >= at + len(signal) + rate // 10, 5,
                   "the whole signal captured")
    reader.join(5)
    return np.concatenate(blocks), starts


def test_live_capture_from_a_pulseaudio_null_sink(pulse_null_sink: PulseNullSink) -> None:
    rate = 48000
    before = datetime.now(UTC)
    x, starts = capture(pulse_null_sink, tone(1000, 1.0, rate, amplitude=0.5), rate)
    loud = x[np.abs(x[:, 0]) > 0.01, 0]
    assert len(loud) > 0.8 * rate, "the tone was not captured"
    heard = x[np.flatnonzero(np.abs(x[:, 0]) > 0.01)[0] :][rate // 10 : rate // 10 + rate // 2, 0]
    assert abs(peak_frequency(heard, rate) - 1000) < 2
    meter = LevelMeter(rate, window_s=0.5)
    meter.feed(heard)
    assert meter.as_dict()["channels"][0]["rms_dbfs"] == pytest.approx(-9.03, abs=0.5)
    assert before - timedelta(seconds=1) < starts[0] < starts[-1] <= datetime.now(UTC)


def test_a_reader_that_falls_behind_costs_counted_blocks_never_the_card(pulse_null_sink: PulseNullSink) -> None:
    # Nobody reads for a while: PortAudio's thread goes on, the queue keeps its first 4 blocks, the rest are
    # counted as dropped; then what was kept is read, newer blocks follow, and closing ends the reading.
    source = DeviceSource(pulse_null_sink.device, 48000, blocksize=480, queue_blocks=4)
    with source:
        wait_until(lambda: source.dropped >= 10, 10, "blocks dropped while nobody reads")
        blocks = source.blocks()
        kept = [next(blocks) for _ in range(4)]
        starts = [start for _, start in kept]
        assert starts == sorted(starts) and all(len(block) == 480 for block, _ in kept)
        _, later_start = next(blocks)
        assert later_start - starts[-1] >= timedelta(milliseconds=100)  # after the gap the drops left
        source.close()
        assert list(blocks) == []


@pytest.mark.parametrize("pulse_null_sink", [2], indirect=True)
def test_live_capture_of_two_radios_on_one_interface(pulse_null_sink: PulseNullSink) -> None:
    """A DTMF-like dual tone on the left input and a 5-tone-like 1060 Hz on the right, split and resampled."""
    rate = 48000
    left = tone(697, 1.0, rate, 0.25) + tone(1209, 1.0, rate, 0.25)
    x, _ = capture(pulse_null_sink, np.stack([left, tone(1060, 1.0, rate, 0.5)], axis=1), rate, channels=2)
    first = np.flatnonzero(np.abs(x).max(axis=1) > 0.01)[0]
    x = x[first + rate // 10 : first + rate // 10 + rate // 2]
    mono = ChannelSplitter(2).split(x)
    r = Resampler(rate, 8000)
    right8k = np.concatenate([r.feed(mono[1]), r.flush()])
    assert abs(peak_frequency(right8k[200:-200], 8000) - 1060) < 2
    spectrum = np.abs(np.fft.rfft(mono[0] * np.hanning(len(mono[0]))))
    freqs = np.fft.rfftfreq(len(mono[0]), 1 / rate)
    top_two = sorted(freqs[np.argsort(spectrum)[-20:]])
    assert any(abs(f - 697) < 5 for f in top_two) and any(abs(f - 1209) < 5 for f in top_two)
    assert abs(rms_db(mono[1]) - rms_db(tone(1060, 1.0, rate, 0.5))) < 0.5
