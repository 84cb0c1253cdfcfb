"""The audio driver's handling of blocks: a sound card delivers 20 ms at a time, the decoders get them
gathered to ``decode_ms``, the live voice tap gets each as it comes. What is decoded, and when it is said
to have been heard, must not depend on how the audio was gathered, including the last piece of a
recording that ends before a whole piece is held."""

from __future__ import annotations

import os
import signal
import threading
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from support import read_recording, recording, wait_until

from config.schema import AudioDriverConfig
from drivers.audio.driver import AudioDriver
from drivers.audio.workers import DecodePool
from drivers.base import Output
from drivers.io import DriverContext
from gateway.events import Decoded

DATA = Path(__file__).parents[2] / "data"


class Tap:
    """A live listener: what it hears, block by block."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.rates: set[int] = set()

    def feed(self, block: np.ndarray, start: datetime, rate: int) -> None:
        self.blocks.append(block.copy())
        self.rates.add(rate)


def heard(path: Path, decoders: list[str], decode_ms: int, tap: Tap | None = None,
          options: dict[str, dict[str, str]] | None = None,
          pool: DecodePool | None = None) -> list[tuple[str, str | None, str, str]]:
    """What the driver decodes from the recording, replayed in 20 ms blocks as a sound card gives them:
    (kind, unit, detail, time to the millisecond) of each event."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
    out: list[Output] = []
    lock = threading.Lock()

    def sink(outputs: list[Output]) -> None:
        with lock:
            out.extend(outputs)

    driver = AudioDriver("audio:test", f"wav:{path}?blocksize={rate // 50}", rate=rate, channels=1, realtime=False)
    config = AudioDriverConfig.model_validate({"type": "audio", "device": str(path), "decoders": decoders,
                                               "decode_ms": decode_ms, "options": options or {}})
    driver.attach(config, DriverContext("ch", "channels[0].drivers[0]", sink,
                                        take_tap=(lambda: tap) if tap is not None else lambda: None,
                                        decode_pool=pool))
    driver.start()
    try:
        wait_until(lambda: driver.snapshot()["state"] == "ended", 60, "the recording to end")
    finally:
        driver.stop()
    with lock:
        return [(str(o.kind), o.unit, repr(sorted(o.detail.items())), o.time.isoformat(timespec="milliseconds"))
                for o in out if isinstance(o, Decoded)]


@pytest.mark.parametrize("decode_ms", [100, 1000])
def test_gathered_blocks_decode_as_each_block_does(tmp_path: Path, decode_ms: int) -> None:
    wav = recording(tmp_path / "patrol.wav")
    tones = {"selcall": {"standard": "ZVEI1"}}
    each = heard(wav, ["dtmf", "selcall"], 0, options=tones)
    assert [(kind, unit) for kind, unit, _, _ in each] == [("status", None), ("ptt", "zvei1:12345")]
    assert heard(wav, ["dtmf", "selcall"], decode_ms, options=tones) == each


def test_gathered_blocks_of_off_air_packets_decode_as_each_block_does() -> None:
    wav = DATA / "afsk1200" / "satrec_swiatowid-ax25_48k.wav"
    each = heard(wav, ["afsk1200"], 0)
    assert len(each) >= 1
    assert heard(wav, ["afsk1200"], 250) == each


def test_a_recording_ending_inside_a_piece_is_decoded_to_its_end(tmp_path: Path) -> None:
    """The 5-tone ID ends 0.3 s before the recording does: less than the second the decoders wait for,
    so only the audio held when the recording ended has it."""
    samples, rate = read_recording(recording(tmp_path / "patrol.wav"))
    short = tmp_path / "short.wav"
    with wave.open(str(short), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples[: samples.size - int(1.7 * rate)] * 32767).astype("<i2").tobytes())
    got = heard(short, ["dtmf", "selcall"], 1000, options={"selcall": {"standard": "ZVEI1"}})
    assert [(kind, unit) for kind, unit, _, _ in got] == [("status", None), ("ptt", "zvei1:12345")]


def test_the_live_tap_gets_every_block_as_it_comes(tmp_path: Path) -> None:
    wav = recording(tmp_path / "patrol.wav")
    samples, rate = read_recording(wav)
    tap = Tap()
    heard(wav, ["dtmf"], 1000, tap=tap)
    assert {b.size for b in tap.blocks[:-1]} == {rate // 50}  # 20 ms each, not a second's worth
    assert tap.rates == {rate}  # as the device gives it: the voice stream resamples what it sends
    np.testing.assert_allclose(np.concatenate(tap.blocks), samples, atol=1e-4)


def test_decoders_in_worker_processes_say_what_they_say_in_the_drivers_thread(tmp_path: Path) -> None:
    """``[gateway] decode_workers``: each radio's decoders in a worker process, the same events."""
    wav = recording(tmp_path / "patrol.wav")
    tones = {"selcall": {"standard": "ZVEI1"}}
    off_air = DATA / "afsk1200" / "satrec_swiatowid-ax25_48k.wav"
    pool = DecodePool(2)
    try:
        assert heard(wav, ["dtmf", "selcall"], 100, options=tones, pool=pool) == heard(wav, ["dtmf", "selcall"], 100,
                                                                                         options=tones)
        assert heard(off_air, ["afsk1200"], 100, pool=pool) == heard(off_air, ["afsk1200"], 100)
        assert len(pool.pids) == 2  # one radio each
        assert pool.radios() == [0, 0]  # each driver, stopped, took its decoders out of its worker
    finally:
        pool.close()
    assert pool.pids == []


def test_a_decoding_worker_killed_is_started_again_and_decoding_goes_on(tmp_path: Path) -> None:
    """A worker killed while its radio listens: the driver reports the lost piece as a device error,
    reopens, and the worker started again decodes what comes next."""
    _, rate = read_recording(recording(tmp_path / "patrol.wav"))
    pool = DecodePool(1)
    events: list[Output] = []
    driver = AudioDriver("audio:test", f"wav:{tmp_path / 'patrol.wav'}?blocksize={rate // 50}", rate=rate,
                         channels=1, realtime=True, loop=True)
    config = AudioDriverConfig.model_validate({"type": "audio", "device": "x", "decoders": ["dtmf"]})
    driver.attach(config, DriverContext("ch", "channels[0].drivers[0]", events.extend, decode_pool=pool))
    driver.start()
    try:
        wait_until(lambda: len(pool.pids) == 1, 10, "the worker to start")
        [first] = pool.pids
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: pool.pids and pool.pids != [first], 20, "another worker")
        assert [w["starts"] for w in pool.snapshot()] == [2]  # what the gateway's health shows
        before = len(events)
        wait_until(lambda: any(isinstance(e, Decoded) and e.detail.get("digits") == "*911*1234#"
                               for e in events[before:]), 30, "the DTMF code decoded after the restart")
        assert driver.snapshot()["reconnects"] >= 1
    finally:
        driver.stop()
        pool.close()


def test_a_frozen_decoding_worker_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    """A worker that stops answering (SIGSTOP: as a decoder stuck in a loop looks from outside) while its
    radio's driver waits on it: stopping kills it, and the driver's thread ends."""
    _, rate = read_recording(recording(tmp_path / "patrol.wav"))
    pool = DecodePool(1)
    driver = AudioDriver("audio:test", f"wav:{tmp_path / 'patrol.wav'}?blocksize={rate // 50}", rate=rate,
                         channels=1, realtime=True, loop=True)
    config = AudioDriverConfig.model_validate({"type": "audio", "device": "x", "decoders": ["dtmf"]})
    driver.attach(config, DriverContext("ch", "channels[0].drivers[0]", lambda _: None, decode_pool=pool))
    driver.start()
    try:
        wait_until(lambda: len(pool.pids) == 1, 10, "the worker to start")
        [pid] = pool.pids
        os.kill(pid, signal.SIGSTOP)
        driver.request_stop()
        pool.close()  # as the gateway does after its drivers: within the wait for a piece in progress
        driver.stop()
        assert not driver._thread.is_alive()
        assert pool.pids == [] and not Path(f"/proc/{pid}").exists()  # killed and reaped
    finally:
        driver.stop()
        pool.close()
