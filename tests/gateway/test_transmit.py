"""The transmitter: PTT keyed through a real serial device server (RFC 2217) whose lines are watched from
the other side, audio played into a WAV file or a real PortAudio device (PulseAudio null sink)."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import numpy as np
from support import DeviceServer, PulseNullSink, free_port, wait_until

from drivers.audio.playback import DeviceOutput, WavOutput
from drivers.ptt import SerialPtt, VoxPtt
from gateway.transmit import Transmitter


def tone(seconds: float, rate: int = 8000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 1000 * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def test_a_send_keys_ptt_around_the_lead_in_the_audio_and_the_tail(tmp_path: Path, device_server: DeviceServer) -> None:
    ptt = SerialPtt(device_server.url, "rts")
    tx = Transmitter("patrol-1/tx", WavOutput(tmp_path / "tx.wav", 8000), ptt, lead_in_s=0.3, tail_s=0.2)
    try:
        report = tx.send(tone(0.5), 8000, "a test tone")
        assert report.result == "sent" and report.reason == ""
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"] and "RTS 1" in device_server.rts(), 5, "RTS")
        assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]  # opened released, keyed, released
        keyed = next(t for t, text in device_server.lines if text == "RTS 1")
        released = [t for t, text in device_server.lines if text == "RTS 0"][-1]
        assert released - keyed >= 0.45  # lead-in and tail at least (a WAV file takes no time to play)
        with wave.open(str(tmp_path / "tx.wav")) as w:
            assert w.getnframes() == 4000 and w.getframerate() == 8000
        assert tx.snapshot()["sent"] == 1 and not tx.keyed
    finally:
        tx.close()


def test_two_sends_never_overlap_and_a_third_that_waits_too_long_is_busy(
    tmp_path: Path, device_server: DeviceServer
) -> None:
    tx = Transmitter("patrol-1/tx", WavOutput(tmp_path / "tx.wav"), SerialPtt(device_server.url), lead_in_s=0.6,
                     tail_s=0.0, busy_wait_s=2.0)
    reports: list[str] = []
    threads = [threading.Thread(target=lambda: reports.append(tx.send(tone(0.1), 8000).result)) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert reports == ["sent", "sent"]
        wait_until(lambda: device_server.rts().count("RTS 0") >= 3, 5, "both released")
        assert device_server.rts()[1:] == ["RTS 1", "RTS 0", "RTS 1", "RTS 0"]  # one after the other

        impatient = Transmitter("patrol-1/tx", WavOutput(tmp_path / "tx2.wav"), VoxPtt(), lead_in_s=1.0,
                                busy_wait_s=0.1)
        first = threading.Thread(target=impatient.send, args=(tone(0.1), 8000))
        first.start()
        wait_until(lambda: impatient.keyed, 5, "the first send to key the radio")  # and hold it, for 1 s
        report = impatient.send(tone(0.1), 8000)
        first.join(5)
        assert report.result == "busy" and "still transmitting" in report.reason
    finally:
        tx.close()


def test_a_ptt_that_cannot_be_keyed_fails_with_the_reason(tmp_path: Path) -> None:
    url = f"rfc2217://127.0.0.1:{free_port()}"  # nobody listens
    tx = Transmitter("patrol-1/tx", WavOutput(tmp_path / "tx.wav"), SerialPtt(url), lead_in_s=0.0)
    report = tx.send(tone(0.1), 8000)
    assert report.result == "failed" and url in report.reason
    assert not (tmp_path / "tx.wav").exists()  # nothing was played with the radio unkeyed


def test_a_stuck_transmission_is_cut_off_and_ptt_released(
    device_server: DeviceServer, pulse_null_sink: PulseNullSink
) -> None:
    """Ten seconds of audio into a real sound device, with a one-second timeout."""
    output = DeviceOutput(pulse_null_sink.device, 48000)
    tx = Transmitter("patrol-1/tx", output, SerialPtt(device_server.url), lead_in_s=0.1, tail_s=0.1, timeout_s=1.0)
    try:
        began = time.monotonic()
        report = tx.send(tone(10.0, 48000), 48000)
        took = time.monotonic() - began
        assert report.result == "timeout" and "PTT released" in report.reason
        assert 0.9 < report.keyed_s < 3.0 and took < 4.0
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
    finally:
        tx.close()


def test_audio_played_into_a_device_comes_out_of_it(pulse_null_sink: PulseNullSink, tmp_path: Path) -> None:
    """What the transmitter plays is heard on the null sink's monitor, at the right frequency."""
    from drivers.audio.source import DeviceSource

    source = DeviceSource(pulse_null_sink.device, 48000)
    heard: list[np.ndarray] = []
    stop = threading.Event()

    def capture() -> None:
        for block, _ in source.blocks():
            heard.append(block[:, 0].copy())
            if stop.is_set():
                return

    reader = threading.Thread(target=capture, daemon=True)
    reader.start()
    tx = Transmitter("patrol-1/tx", DeviceOutput(pulse_null_sink.device, 48000), VoxPtt(), lead_in_s=0.0)

    def played_out() -> bool:
        """The tone was heard, and what is heard now is quiet again: it is over."""
        blocks = list(heard)
        loud = sum(int(np.count_nonzero(np.abs(b) > 0.1)) for b in blocks)
        return loud > 0.5 * 48000 * 0.6 and bool(blocks) and float(np.max(np.abs(blocks[-1]), initial=0.0)) < 0.1

    try:
        assert tx.send(tone(1.0, 8000), 8000).result == "sent"  # resampled to the device's rate on the way
        # Played is not yet heard: the sink's monitor gives it back a little later.
        wait_until(played_out, 5, "the tone heard to its end")
    finally:
        stop.set()
        source.close()
        reader.join(3)
    x = np.concatenate(heard)
    loud = x[np.abs(x) > 0.1]
    assert len(loud) > 0.5 * 48000 * 0.6  # most of the second came through
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 48000 / len(x) - 1000) < 5
