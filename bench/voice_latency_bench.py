"""Live voice, mouth to ear: how late a sound arrives at the other end, and how soon the talk key keys PTT.

The method is NISTIR 8206's (NIST PSCR, "Mission Critical Voice QoE Mouth-to-Ear Latency Measurement
Methods"): a known audio burst played in at one end, the audio recorded at both ends on one clock, the
two recordings aligned. Here both ends are channels of one PulseAudio null sink (stereo), so the
recording cannot drift: for the receive direction the left channel is the radio's receive audio (the
gateway captures it through a remap source) and the right one the console's speaker (a remap sink);
for the transmit direction the left channel is the dispatcher's microphone (the console captures it) and
the right one the radio's transmit audio (the gateway plays into it). A 1 kHz tone burst of 200 ms
every second; a burst's latency is the time between its onsets (the envelope crossing half its peak) in
the two channels.

    radio receive -> gateway (capture, voice detection, Opus, MQTT QoS 0) -> Mosquitto -> console (jitter
    buffer, Opus, speaker): every burst is a talk spurt of its own (the gateway's hang_ms is 500 ms), as
    a radio's transmissions are, so each starts with the console's playout delay set anew.
    console microphone -> console (Opus, MQTT) -> Mosquitto -> gateway (jitter buffer, transmit audio): one
    long transmission, the dispatcher holding the floor while the bursts are said.

Access time: the console's talk key pressed (``k`` in the headless console) to PTT keyed (RTS raised at
an RFC 2217 device server, seen from this process), ``--presses`` times.

CPU per listened channel at the console: this process's CPU time while the console (its voice link
alone) plays one continuously busy channel, less while it listens to none, over ``--phase`` seconds;
the gateway runs in a process of its own.

Where the time goes: the console's voice link (in this process) notes when a talk spurt's first frame
arrives and when the player takes it, when the microphone hands over the block with a burst's first loud
sample and when the frame holding it is sent; the recording's onsets are put on the same clock (its reads),
and each burst's latency is split at those points.

The peers: 3GPP TS 22.179 (MCPTT) sets 300 ms mouth-to-ear (KPI 3) and 300 ms access time (KPI 1).

Writes bench/out/voice_latency.md and prints it.
``python -m bench.voice_latency_bench [--bursts 200] [--presses 30] [--phase 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import DeviceServer, Mosquitto, PulseNullSink, wait_until  # noqa: E402

from config.schema import MqttConfig, load_config  # noqa: E402
from gateway.voice import RATE  # noqa: E402

OUT = ROOT / "bench" / "out"
GW = "bench-latency"
CHANNEL = "patrol-1"
BURST_S, PERIOD_S, TONE_HZ = 0.2, 1.0, 1000.0
SPEAKER, MICROPHONE = "pttbridge_speaker", "pttbridge_mic"


def progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the sound: two stereo probes on one PulseAudio daemon --------------------------------------------------


def wire_pulse(pulse: PulseNullSink, work: Path) -> None:
    """probe_rx: left = the radio's receive audio (source ``rx_left``), right = the console's speaker (sink
    ``ear``). probe_tx: left = the console's microphone (source ``mic_left``), right = the radio's transmit
    audio (sink ``tx_right``). ALSA names the console's two for PortAudio."""
    def load(*args: str) -> None:
        subprocess.run(["pactl", "load-module", *args], check=True, capture_output=True)

    for probe, left_source, right_sink in (("probe_rx", "rx_left", "ear"), ("probe_tx", "mic_left", "tx_right")):
        load("module-null-sink", f"sink_name={probe}", f"rate={RATE}", "channels=2",
             "channel_map=front-left,front-right")
        load("module-remap-source", f"source_name={left_source}", f"master={probe}.monitor", "channels=1",
             "master_channel_map=front-left", "channel_map=mono", "remix=no")
        load("module-remap-sink", f"sink_name={right_sink}", f"master={probe}", "channels=1",
             "master_channel_map=front-right", "channel_map=mono", "remix=no")
    (work / "xdg" / "alsa").mkdir(parents=True, exist_ok=True)
    (work / "xdg" / "alsa" / "asoundrc").write_text(
        f'pcm.{SPEAKER} {{\n  type pulse\n  device "ear"\n}}\n'
        f'pcm.{MICROPHONE} {{\n  type pulse\n  device "mic_left"\n}}\n')
    os.environ["XDG_CONFIG_HOME"] = str(work / "xdg")
    PulseNullSink._restart_portaudio()


class Probe:
    """A stereo recording of a probe's monitor (both ends on one clock) and its stimulus on the left."""

    def __init__(self, probe: str) -> None:
        self.probe = probe
        self.proc = subprocess.Popen(
            ["parec", f"--device={probe}.monitor", f"--rate={RATE}", "--channels=2", "--format=float32le",
             "--latency-msec=10"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._chunks: list[bytes] = []
        self._reads: list[tuple[float, int]] = []  # (time.monotonic at the read, stereo samples read so far)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        got = 0
        while chunk := self.proc.stdout.read1(65536):  # type: ignore[attr-defined]
            now = time.monotonic()
            got += len(chunk)
            with self._lock:
                self._chunks.append(chunk)
                self._reads.append((now, got // 8))

    def zero(self) -> float:
        """time.monotonic of the recording's sample 0: the earliest any read allows (a read comes after
        its samples were captured, never before), so a sample's time is this + index / RATE, late by
        parec's capture delay at most (its 10 ms latency)."""
        with self._lock:
            reads = list(self._reads)
        return min(t - n / RATE for t, n in reads)

    def play_left(self, mono: np.ndarray) -> subprocess.Popen[bytes]:
        stereo = np.stack([mono, np.zeros_like(mono)], 1).astype("<f4")
        player = subprocess.Popen(
            ["pacat", "--playback", f"--device={self.probe}", f"--rate={RATE}", "--channels=2",
             "--format=float32le", "--latency-msec=20"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def feed() -> None:
            assert player.stdin is not None
            try:
                player.stdin.write(stereo.tobytes())
                player.stdin.close()
            except BrokenPipeError:  # stopped before the end
                pass

        threading.Thread(target=feed, daemon=True).start()
        return player

    def stereo(self) -> np.ndarray:
        with self._lock:
            data = b"".join(self._chunks)
        return np.frombuffer(data[: len(data) // 8 * 8], "<f4").reshape(-1, 2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def bursts(n: int, lead_s: float = 0.5) -> np.ndarray:
    t = np.arange(int(BURST_S * RATE)) / RATE
    tone = (0.4 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.002).astype(np.float32)  # 2 ms edges: no click
    x = np.zeros(int((lead_s + n * PERIOD_S + 1.0) * RATE), np.float32)
    for i in range(n):
        at = int((lead_s + i * PERIOD_S) * RATE)
        x[at: at + len(tone)] = tone * ramp
    return x


def onsets(x: np.ndarray) -> np.ndarray:
    """Sample indices where a burst starts: the 1 ms envelope crossing half the bursts' level, at least
    0.8 of a period after the last start (a burst with a hole in it is still one burst)."""
    win = RATE // 1000
    env = np.convolve(np.abs(x), np.ones(win) / win, "same")
    level = np.percentile(env[env > 0.02], 90) if np.any(env > 0.02) else 1.0
    above = np.flatnonzero(env > level / 2)
    if not len(above):
        return above
    starts = [above[0]]
    for i in above[1:]:
        if i - starts[-1] > PERIOD_S * RATE * 0.8:
            starts.append(i)
    return np.asarray(starts)


def latencies(stereo: np.ndarray) -> np.ndarray:
    """Per burst, ms from its onset on the left to its onset on the right (unmatched bursts left out)."""
    return np.asarray([(right - left) * 1000 / RATE for left, right in matched(stereo)])


def matched(stereo: np.ndarray) -> list[tuple[int, int]]:
    """(left onset, right onset) sample indices of every burst found at both ends."""
    left, right = onsets(stereo[:, 0]), onsets(stereo[:, 1])
    out = []
    for at in left:
        later = right[(right > at) & (right < at + PERIOD_S * RATE * 0.9)]
        if len(later):
            out.append((int(at), int(later[0])))
    return out


class Stages:
    """When (time.monotonic) the console's voice link met each burst, to split a burst's latency in parts:
    the first frame of a talk spurt received (``arrived``) and taken by the player for the speaker
    (``played``); the microphone's block that holds a burst's first loud sample handed over (``heard``),
    and every frame sent (``sent``: the first after ``heard`` holds that sample)."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.played: list[float] = []
        self.heard: list[float] = []
        self.sent: list[float] = []
        self.buffer = ""

    @staticmethod
    def split(probe: Probe, stereo: np.ndarray, marks: list[list[float]]) -> list[np.ndarray]:
        """Per burst found at both ends and at every mark: ms from the left onset to the first mark, from
        each mark to the next, and from the last mark to the right onset."""
        zero = probe.zero()
        parts: list[list[float]] = [[] for _ in range(len(marks) + 1)]
        for left, right in matched(stereo):
            t_left, t_right = zero + left / RATE, zero + right / RATE
            points = [t_left]
            for times in marks:
                # The onset's time may be late by parec's delay: a first mark up to 20 ms before it counts.
                after = [t for t in times if points[-1] - (0.02 if len(points) == 1 else 0.0) <= t < t_right]
                if not after:
                    break
                points.append(after[0])
            else:
                points.append(t_right)
                for i, part in enumerate(parts):
                    part.append((points[i + 1] - points[i]) * 1000)
        return [np.asarray(p) for p in parts]


def timed_link(cfg: MqttConfig, stages: Stages) -> Any:
    """The console's voice link, noting in ``stages`` when it meets each burst (nothing else changed)."""
    from console.voice import JitterBuffer
    from console.voice_link import VoiceLink, _Listened, _Talk
    from gateway.voice import VoiceFrame

    class TimedBuffer(JitterBuffer):
        def push(self, frame: VoiceFrame, now: float) -> str | None:
            if frame.start:
                stages.arrived.append(now)
            return super().push(frame, now)

        def next_frame(self, now: float) -> Any:
            slot = super().next_frame(now)
            if isinstance(slot, VoiceFrame) and slot.start:
                stages.played.append(now)
            return slot

    class TimedBlocks(queue.Queue[np.ndarray | None]):
        def put_nowait(self, item: np.ndarray | None) -> None:
            if item is not None and np.max(np.abs(item)) > 0.13:  # past a burst's onset (half its envelope)
                stages.heard.append(time.monotonic())
            super().put_nowait(item)

    class TimedLink(VoiceLink):
        def listen(self, gateway: str, channel: str, *, auto: str | None = None) -> None:
            super().listen(gateway, channel, auto=auto)
            with self._lock:
                held = self.listened[(gateway, channel)]
                self.listened[(gateway, channel)] = _Listened(held.view, TimedBuffer(), held.decoder, held.lease)

        def _send(self, talk: _Talk, frame: VoiceFrame) -> None:
            super()._send(talk, frame)
            stages.sent.append(time.monotonic())

        def _capture(self, talk: _Talk) -> None:
            talk.blocks = TimedBlocks(maxsize=talk.blocks.maxsize)
            super()._capture(talk)

    return TimedLink(cfg, "bench-desk", lambda: "bench", lambda _m: None, speaker=SPEAKER, microphone=MICROPHONE)


# --- the programs -------------------------------------------------------------------------------------------


def configuration(work: Path, broker: Mosquitto, server: DeviceServer) -> Path:
    cfg = work / "pttbridge.toml"
    cfg.write_text(f"""
data_dir = "{work / 'data'}"

[gateway]
name = "{GW}"
outbox = "{work / 'outbox.sqlite'}"

[mqtt]
url = "{broker.url}"

[bridge]
database_url = "sqlite:///{work / 'bridge.sqlite'}"

[console]
name = "bench-desk"
operator = "bench"
audio_device = "{SPEAKER}"
microphone = "{MICROPHONE}"

[[channels]]
name = "{CHANNEL}"
[[channels.drivers]]
type = "audio"
device = "pulse"
rate = {RATE}
decoders = []
[channels.voice]
silence_ms = 2000
[channels.transmit]
device = "pulse"
rate = {RATE}
lead_in_ms = 100
tail_ms = 100
timeout_s = 300
[channels.transmit.ptt]
method = "serial"
port = "{server.url}"
line = "rts"
""")
    return cfg


def start_gateway(cfg: Path, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PULSE_SOURCE": "rx_left", "PULSE_SINK": "tx_right"}
    log = (work / "gateway.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "pttbridge", "gateway", "-c", str(cfg)], cwd=ROOT, env=env,
                            stdout=log, stderr=log)


def pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def receive_latency(link: object, stages: Stages, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    from console.voice_link import VoiceLink

    assert isinstance(link, VoiceLink)
    probe = Probe("probe_rx")
    link.listen(GW, CHANNEL)
    wait_until(lambda: (v := link.views.get((GW, CHANNEL))) is not None and v.state is not None
               and v.state.listeners >= 1, 15, "the gateway's lease")
    time.sleep(1.0)
    progress(f"receive: {n} bursts, {n * PERIOD_S:.0f} s")
    probe.play_left(bursts(n)).wait()
    time.sleep(1.0)
    probe.stop()
    buffer = link.listened[(GW, CHANNEL)].buffer
    stages.buffer = (f"the console's jitter buffer at the end: jitter estimate {buffer.jitter_ms:.1f} ms, target "
                     f"{buffer.target_ms:.0f} ms; {buffer.stats.played} frames played, {buffer.stats.concealed} "
                     f"concealed, {buffer.stats.late} late")
    link.unlisten(GW, CHANNEL)
    stereo = probe.stereo()
    return latencies(stereo), Stages.split(probe, stereo, [stages.arrived, stages.played])


def transmit_latency(link: object, stages: Stages, server: DeviceServer, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    from console.voice_link import VoiceLink

    assert isinstance(link, VoiceLink)
    probe = Probe("probe_tx")
    link.press(GW, CHANNEL)
    wait_until(lambda: link.talk is not None and link.talk.floor.phase == "talking", 10, "the floor")
    wait_until(lambda: server.rts()[-1:] == ["RTS 1"], 10, "PTT keyed")
    time.sleep(1.0)
    progress(f"transmit: {n} bursts, {n * PERIOD_S:.0f} s")
    probe.play_left(bursts(n)).wait()
    time.sleep(1.0)
    link.release()
    wait_until(lambda: server.rts()[-1:] == ["RTS 0"], 10, "PTT released")
    probe.stop()
    stereo = probe.stereo()
    return latencies(stereo), Stages.split(probe, stereo, [stages.heard, stages.sent])


def access_times(cfg: Path, server: DeviceServer, presses: int) -> np.ndarray:
    """The headless console: ``k`` pressed, until RTS rises at the device server (ms)."""
    from console.app import TALK_REPEAT_S, DispatchApp

    config = load_config(cfg)
    notes: list[str] = []

    class Console(DispatchApp):
        def notify(self, message: str, *a: Any, **k: Any) -> None:
            notes.append(message)
            super().notify(message, *a, **k)

    app = Console(config)
    logging.disable(logging.WARNING)  # no bridge runs here: the console's database reads fail, and say so
    out: list[float] = []

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            # The channel's row shown in the voice panel, which the talk key acts on (the link knows of the
            # channel a refresh before the panel does).
            while app.dispatch.voice.selected is None or not app.voice.connected:
                await pilot.pause(0.05)
            await pilot.press("c")
            for _ in range(presses):
                keyed = server.rts().count("RTS 1")
                pressed = time.monotonic()
                await pilot.press("k")
                while server.rts().count("RTS 1") == keyed:
                    if time.monotonic() - pressed > 10:
                        raise RuntimeError(f"PTT not keyed 10 s after the talk key; the console says {notes}; "
                                           f"the device server saw {server.lines[-6:]}")
                    await pilot.pause(0.005)
                out.append(([t for t, line in server.lines if line == "RTS 1"][-1] - pressed) * 1000)
                await pilot.pause(TALK_REPEAT_S + 0.2)  # a press sooner is taken for the key's auto-repeat
                await pilot.press("k")
                while server.rts()[-1:] != ["RTS 0"] or app.voice.talk is not None:
                    await pilot.pause(0.02)
                await pilot.pause(TALK_REPEAT_S + 0.2)

    asyncio.run(scenario())
    return np.asarray(out)


def console_cpu(link: object, probe_rx: str, phase: float) -> tuple[float, float]:
    """This process's share of a core: listening to nothing, then to one channel busy throughout."""
    from console.voice_link import VoiceLink

    assert isinstance(link, VoiceLink)
    noise = (0.2 * np.random.default_rng(1).standard_normal(int((2 * phase + 6) * RATE))).astype(np.float32)
    probe = Probe(probe_rx)
    player = probe.play_left(noise)
    time.sleep(1.0)
    before, t0 = time.process_time(), time.monotonic()
    time.sleep(phase)
    idle = (time.process_time() - before) / (time.monotonic() - t0)
    link.listen(GW, CHANNEL)
    wait_until(lambda: (held := link.listened.get((GW, CHANNEL))) is not None and held.buffer.stats.played > 50, 15,
               "the channel playing")
    before, t0 = time.process_time(), time.monotonic()
    time.sleep(phase)
    listening = (time.process_time() - before) / (time.monotonic() - t0)
    link.unlisten(GW, CHANNEL)
    player.kill()
    probe.stop()
    return idle, listening


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bursts", type=int, default=200, help="tone bursts per direction")
    ap.add_argument("--presses", type=int, default=30, help="talk key presses for the access time")
    ap.add_argument("--phase", type=float, default=10.0, help="seconds of each CPU phase")
    ap.add_argument("--out", type=Path, default=OUT / "voice_latency.md", help="where the table is written")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pttbridge-latency-"))
    broker = Mosquitto(work)
    broker.start()
    server = DeviceServer()
    pulse = PulseNullSink(work, sink="bench_idle")
    pulse.start()
    wire_pulse(pulse, work)
    cfg = configuration(work, broker, server)
    gateway = start_gateway(cfg, work)
    stages = Stages()
    link = timed_link(MqttConfig(url=broker.url), stages)
    link.start()
    try:
        wait_until(lambda: (GW, CHANNEL) in link.views, 60, "the gateway's voice state")
        rx, rx_parts = receive_latency(link, stages, args.bursts)
        tx, tx_parts = transmit_latency(link, stages, server, args.bursts)
        progress(f"console CPU: 2 x {args.phase:g} s")
        idle, listening = console_cpu(link, "probe_rx", args.phase)
        link.stop()
        progress(f"access time: {args.presses} presses")
        access = access_times(cfg, server, args.presses)
    finally:
        gateway.terminate()
        gateway.wait(20)
        server.stop()
        pulse.stop()
        broker.stop()
    cpu = platform.processor() or platform.machine()
    lines = [
        f"Live voice latency, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({cpu}), "
        f"`python -m bench.voice_latency_bench --bursts {args.bursts} --presses {args.presses}`",
        "",
        "| measure | n | p50 | p95 | max | 3GPP TS 22.179 |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| mouth-to-ear, radio receive -> console speaker | {len(rx)}/{args.bursts} | {pct(rx, 50):.0f} ms | "
        f"{pct(rx, 95):.0f} ms | {np.max(rx) if len(rx) else float('nan'):.0f} ms | 300 ms (KPI 3) |",
        f"| mouth-to-ear, console microphone -> radio transmit | {len(tx)}/{args.bursts} | {pct(tx, 50):.0f} ms | "
        f"{pct(tx, 95):.0f} ms | {np.max(tx) if len(tx) else float('nan'):.0f} ms | 300 ms (KPI 3) |",
        f"| access time, talk key -> PTT keyed | {len(access)} | {pct(access, 50):.0f} ms | {pct(access, 95):.0f} ms | "
        f"{np.max(access) if len(access) else float('nan'):.0f} ms | 300 ms (KPI 1) |",
        "",
        f"Console CPU (one process, its voice link): {idle * 100:.1f} % of a core listening to nothing, "
        f"{listening * 100:.1f} % listening to one busy channel: {(listening - idle) * 100:.1f} % per listened "
        f"channel.",
        "",
        "Where the time goes (each part's p50 / p95, of the bursts seen at every point; the points are times "
        "the console's voice link noted, the recording's onsets mapped onto the same clock, late by parec's "
        "capture delay, under 10 ms):",
        "",
        "| path | part | n | p50 | p95 |",
        "| --- | --- | --- | --- | --- |",
        *[f"| receive | {what} | {len(x)} | {pct(x, 50):.0f} ms | {pct(x, 95):.0f} ms |" for what, x in zip(
            ("radio onset -> first frame at the console (capture, 20 ms framing, Opus, MQTT)",
             "first frame held by the jitter buffer until the player takes it",
             "taken by the player -> heard (the speaker's buffers)"), rx_parts, strict=True)],
        *[f"| transmit | {what} | {len(x)} | {pct(x, 50):.0f} ms | {pct(x, 95):.0f} ms |" for what, x in zip(
            ("microphone onset -> its block handed to the console (the microphone's buffers)",
             "-> the frame holding it sent (the rest of the 20 ms frame, Opus)",
             "-> radio transmit audio (MQTT, the gateway's jitter buffer, the transmit device's buffers)"),
            tx_parts, strict=True)],
        "",
        f"Receive: {stages.buffer}.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
