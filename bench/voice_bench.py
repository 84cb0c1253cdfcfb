"""Live voice at the gateway: CPU per streamed channel, and how many channels one gateway streams at once.

A real ``pttbridge gateway`` process with N channels, each replaying a recording of its own (espeak-ng
speech over a noise floor at about -35 dBFS, so that every channel is busy all the time: streaming all
the time, the worst case) through the audio driver in real time, the DTMF decoder listening as on a real
channel, against a Mosquitto on this machine. For each N the gateway's CPU time (user + system, all its
threads, from /proc) is taken over ``--phase`` seconds with nobody listening (decoded, nothing streamed)
and again with a desk holding a lease on every channel (each channel's audio Opus-encoded and published,
50 frames a second). The difference over N is the live voice's CPU per channel. A gateway "streams N
channels" when every channel delivered at least 99 % of its frames to the desk and the p99 gap between a
channel's frames stayed under 100 ms (a jitter buffer of a few frames absorbs that). The desk (this
process: one paho client parsing every frame) is timed too, since it may be the one that falls behind.

Beside it, the codec alone in this process (PyAV's libopus): microseconds per 20 ms frame to encode and
to decode, which is why PyAV was kept (its per-packet overhead is small next to 20 ms).

Writes bench/out/voice.md and prints it. ``python -m bench.voice_bench [--channels 1,8,16,32] [--phase 10]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from scipy.io import wavfile

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import Mosquitto, wait_until  # noqa: E402

from drivers.audio.source import Resampler  # noqa: E402
from gateway.voice import (  # noqa: E402
    FRAME_SAMPLES,
    RATE,
    ListenLease,
    OpusDecoder,
    OpusEncoder,
    parse_frame,
    parse_voice_topic,
    voice_topic,
)

OUT = ROOT / "bench" / "out"
PREFIX = "pttbridge/v1"
GW = "bench-voice"
TEXT = ("Patrol seven to control, I am at the corner of Wenyi Road and Xixi Road, two people need help, "
        "send an ambulance, the road is blocked by a truck, over")


def progress(what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


def corpus(work: Path) -> Path:
    wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), TEXT], check=True, capture_output=True)
    rate, data = wavfile.read(wav)
    x = data.astype(np.float64) / 32768.0
    r = Resampler(rate, RATE)
    x = np.concatenate([r.feed(x), r.flush()])
    x = 0.5 * x / np.max(np.abs(x)) + np.random.default_rng(7).normal(0, 0.018, len(x))  # noise ~ -35 dBFS
    out = work / "channel.wav"
    wavfile.write(out, RATE, (np.clip(x, -1, 1) * 32767).astype(np.int16))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Desk:
    """Leases every channel and counts each channel's frames and the gaps between them."""

    def __init__(self, port: int, channels: list[str]) -> None:
        self.channels = channels
        self.frames: dict[str, list[float]] = {c: [] for c in channels}
        self.states: set[str] = set()
        self.leasing = False
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-desk")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(voice_topic(PREFIX, GW, "+", "rx"), 0), (voice_topic(PREFIX, GW, "+", "state"), 1)])
        self.client.loop_start()
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        where = parse_voice_topic(PREFIX, msg.topic)
        if where is None:
            return
        with self._lock:
            if where[2] == "rx":
                parse_frame(msg.payload)
                self.frames[where[1]].append(time.monotonic())
            else:
                self.states.add(where[1])

    def _renew(self) -> None:
        while True:
            if self.leasing:
                for c in self.channels:
                    body = ListenLease("bench", "bench", 10).to_json()
                    self.client.publish(voice_topic(PREFIX, GW, c, "listen"), body, qos=1)
            time.sleep(3)

    def reset(self) -> None:
        with self._lock:
            for c in self.channels:
                self.frames[c] = []

    def stats(self, seconds: float) -> tuple[float, float]:
        """(worst channel's share of the frames expected, worst p99 gap in ms)."""
        with self._lock:
            shares = [len(f) / (seconds * 1000 / 20) for f in self.frames.values()]
            gaps = [float(np.percentile(np.diff(f), 99)) * 1000 if len(f) > 2 else float("inf")
                    for f in self.frames.values()]
        return min(shares), max(gaps)


def run(n: int, wav: Path, work: Path, broker: Mosquitto, phase: float) -> dict[str, float]:
    folder = work / f"n{n}"
    folder.mkdir()
    channels = [f"ch-{i:02d}" for i in range(n)]
    # The decoders in the drivers' threads, as when this bench was first measured: its CPU is the gateway
    # process's own (decoding workers are bench/gateway_audio_bench.py's).
    lines = [f'data_dir = "{folder}"', "[gateway]", f'name = "{GW}"', "decode_workers = 0", "[mqtt]",
             f'url = "{broker.url}"']
    for c in channels:
        # A recording of its own (one audio driver, one thread, per channel), read in blocks of 1024 samples
        # (21 ms) as a sound card's capture stream is.
        (folder / f"{c}.wav").symlink_to(wav)
        lines += ["[[channels]]", f'name = "{c}"', "[[channels.drivers]]", 'type = "audio"',
                  f'device = "wav:{folder / c}.wav?blocksize=1024"', "loop = true", f"rate = {RATE}",
                  'decoders = ["dtmf"]']
    cfg = folder / "gateway.toml"
    cfg.write_text("\n".join(lines) + "\n")
    log = (folder / "gateway.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "gateway", "-c", str(cfg)], cwd=ROOT, stdout=log,
                            stderr=log)
    desk = Desk(broker.port, channels)
    try:
        wait_until(lambda: desk.states == set(channels), 60, f"{n} channels' voice state")
        time.sleep(2.0)  # the drivers settle (every recording playing)
        before = cpu_seconds(proc.pid)
        time.sleep(phase)
        idle = (cpu_seconds(proc.pid) - before) / phase
        desk.leasing = True
        wait_until(lambda: all(len(f) > 10 for f in desk.frames.values()), 30, "frames from every channel")
        desk.reset()
        before, ours = cpu_seconds(proc.pid), time.process_time()
        time.sleep(phase)
        streaming = (cpu_seconds(proc.pid) - before) / phase
        desk_cpu = (time.process_time() - ours) / phase
        share, gap = desk.stats(phase)
    finally:
        desk.client.loop_stop()
        desk.client.disconnect()
        proc.terminate()
        proc.wait(20)
    return {"idle": idle, "streaming": streaming, "share": share, "gap_ms": gap, "desk": desk_cpu}


def codec_cost() -> tuple[float, float]:
    enc, dec = OpusEncoder(), OpusDecoder()
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE * 10) / RATE)).astype(np.float32)
    blocks = [x[i:i + FRAME_SAMPLES] for i in range(0, len(x), FRAME_SAMPLES)]
    t0 = time.perf_counter()
    packets = [enc.encode(b) for b in blocks]
    t1 = time.perf_counter()
    for p in packets:
        dec.decode(p)
    t2 = time.perf_counter()
    return (t1 - t0) / len(blocks) * 1e6, (t2 - t1) / len(blocks) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="1,4,8,16,24,32", help="channel counts to try, comma-separated")
    ap.add_argument("--phase", type=float, default=10.0, help="seconds measured per phase")
    args = ap.parse_args()
    counts = [int(c) for c in args.channels.split(",")]
    enc_us, dec_us = codec_cost()
    rows = []
    with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
        work = Path(tmp)
        wav = corpus(work)
        broker = Mosquitto(work, persistent=False)
        broker.start()
        try:
            for n in counts:
                progress(f"{n} channels")
                r = run(n, wav, work, broker, args.phase)
                ok = r["share"] >= 0.99 and r["gap_ms"] < 100
                rows.append((n, r, ok))
                if not ok:
                    break
        finally:
            broker.stop()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    table = [f"Machine: {os.cpu_count()} cores, {cpu}; Python {sys.version.split()[0]}; each phase {args.phase:g} s.",
             "", f"PyAV libopus, 20 ms mono 48 kHz at 24 kbit/s: encode {enc_us:.0f} µs, decode {dec_us:.0f} µs "
             f"a frame ({enc_us / 200:.2f} % and {dec_us / 200:.2f} % of one core per stream).", "",
             "| channels | gateway CPU, decoding only | gateway CPU, streaming every channel | voice CPU per channel "
             "| worst channel's frames delivered | worst p99 gap between frames | streams them all | desk's CPU |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for n, r, ok in rows:
        per = (r["streaming"] - r["idle"]) / n
        table.append(f"| {n} | {r['idle'] * 100:.1f} % | {r['streaming'] * 100:.1f} % | {per * 100:.2f} % "
                     f"| {r['share'] * 100:.1f} % | {r['gap_ms']:.0f} ms | {'yes' if ok else 'no'} "
                     f"| {r['desk'] * 100:.0f} % |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "voice.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
