"""One gateway process listening to many audio channels with every decoder on: its CPU over a minute.

    python -m bench.gateway_audio_bench [--channels 64] [--seconds 60] [--decoders dtmf,...]
                                        [--block-ms 20] [--decode-ms 0,100] [--workers 0,2] [--inputs 8]
                                        [--quick]

Each channel replays, in real time and looped, its own slice of the busy channel of
:mod:`bench.channel_bench` (22050 Hz, the slices start 9 s apart, so the channels are not in step), as
a sound card's input would arrive, in ``--block-ms`` blocks (20 ms, as PortAudio gives them):
``pttbridge gateway`` with one ``type = "audio"`` table per channel (``device = "wav:...?blocksize=N"``,
``loop = true``; with ``--inputs N``, N channels to a card: one N-channel file of N slices, each
table on its ``input``), a real Mosquitto on a free local port, the outbox on disk. One run per ``--decode-ms``
value (the tables' ``decode_ms``: how much audio is gathered for the decoders) and ``--workers`` value
(``[gateway] decode_workers``: the processes the decoders run in; their CPU is counted with the gateway's).
After a warm-up the process's CPU (user + system, from /proc/PID/stat) is read over ``--seconds`` of
wall time: CPU seconds per second is the number of cores it keeps busy (this machine has 2), and of
those the gateway's own process (its drivers' threads, without the workers). Events
stored in the outbox over the whole run are counted too, and how long after its audio each was stored
(the outbox's clock less the event's time, which is the audio's): bounded where the gateway keeps up with
real time, growing as the slice plays where it does not. Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.audio_bench import read_wav, write_wav  # noqa: E402
from bench.channel_bench import EVERY, RATE, make_channel  # noqa: E402

OUT = ROOT / "bench" / "out"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads, from /proc (utime and stime, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (its decoding workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):  # a process that ended meanwhile
            continue
    return found


def tree_cpu(pid: int, workers: list[int]) -> float:
    """CPU of the gateway and its workers (those alive now and those read before: a worker is not restarted
    in this bench)."""
    total = cpu_seconds(pid)
    for child in workers:
        try:
            total += cpu_seconds(child)
        except OSError:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slices(folder: Path, channels: int, seconds: float, *, quick: bool, inputs: int = 1) -> list[Path]:
    """One slice of the busy channel per channel, 9 s apart (wrapping round), ``inputs`` channels to a file
    (an interface's inputs, interleaved as its driver reads them)."""
    whole = OUT / "channel" / f"channel-{RATE}{'-quick' if quick else ''}.wav"
    if not whole.exists():
        whole.parent.mkdir(parents=True, exist_ok=True)
        make_channel(whole, scale=10 if quick else 1)
    x, _ = read_wav(whole)
    n = int(seconds * RATE)
    one = [np.resize(x[(i * 9 * RATE) % max(1, x.size - n):][:n], n) for i in range(channels)]
    one += [np.zeros(n, np.float32)] * (-channels % inputs)  # the last card's inputs nobody listens to
    paths = []
    for k in range(0, channels, inputs):
        paths.append(folder / f"ch{k:02d}.wav")
        write_wav(paths[-1], np.stack(one[k : k + inputs], axis=1), RATE)
    return paths


def config(work: Path, port: int, wavs: list[Path], decoders: list[str], *, block_ms: int, decode_ms: int,
           workers: int, channels: int, inputs: int) -> Path:
    lines = [f'data_dir = "{work / "data"}"', "[gateway]", 'name = "bench64"', f"decode_workers = {workers}",
             f'outbox = "{work / "data" / "outbox.sqlite"}"', "[mqtt]", f'url = "mqtt://127.0.0.1:{port}"']
    names = ", ".join(f'"{d}"' for d in decoders)
    for i in range(channels):
        lines += ["[[channels]]", f'name = "ch{i:02d}"', "[[channels.drivers]]", 'type = "audio"',
                  f'device = "wav:{wavs[i // inputs]}?blocksize={RATE * block_ms // 1000}"', f"rate = {RATE}",
                  f"channels = {inputs}", f"input = {i % inputs + 1}",
                  f"decoders = [{names}]", f"decode_ms = {decode_ms}", "loop = true"]
    path = work / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(channels: int, seconds: float, decoders: list[str], *, warmup: float, quick: bool, block_ms: int = 20,
        decode_ms: int = 100, workers: int = 0, inputs: int = 1) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        wavs = slices(work, channels, max(seconds, 10.0), quick=quick, inputs=inputs)
        port = free_port()
        broker = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        gateway = subprocess.Popen([sys.executable, str(ROOT / "pttbridge.py"), "gateway", "-c",
                                    str(config(work, port, wavs, decoders, block_ms=block_ms,
                                               decode_ms=decode_ms, workers=workers, channels=channels,
                                               inputs=inputs))], cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert gateway.stderr is not None
            for line in gateway.stderr:  # the gateway says when every driver is running
                if "running:" in line:
                    break
            # Read on to the end: a pipe nobody reads fills (64 KiB, about a minute of a busy gateway's log).
            threading.Thread(target=gateway.stderr.read, daemon=True).start()
            time.sleep(warmup)  # the drivers' first blocks and the decoders' first chunks
            pids = children(gateway.pid)  # its decoding workers, started by now
            c0, own0, t0 = tree_cpu(gateway.pid, pids), cpu_seconds(gateway.pid), time.monotonic()
            time.sleep(seconds)
            c1, own1, t1 = tree_cpu(gateway.pid, pids), cpu_seconds(gateway.pid), time.monotonic()
            alive = gateway.poll() is None
        finally:
            gateway.terminate()
            t_term = time.monotonic()
            try:
                gateway.wait(timeout=60)
                print(f"the gateway stopped {time.monotonic() - t_term:.1f} s after SIGTERM", file=sys.stderr)
            except subprocess.TimeoutExpired:  # the figures are read already; say so, and end it
                print("the gateway did not stop within 60 s of SIGTERM: killed", file=sys.stderr)
                gateway.kill()
                gateway.wait(timeout=10)
            broker.terminate()
            broker.wait(timeout=10)
        with sqlite3.connect(work / "data" / "outbox.sqlite") as db:
            kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
            stored = db.execute("SELECT created, payload FROM events WHERE kind != 'health'").fetchall()
    if not alive:
        raise RuntimeError("the gateway stopped during the measurement")
    print(f"events stored, by kind: {kinds}", file=sys.stderr)
    decoded = sum(v for k, v in kinds.items() if k != "health")
    lags = sorted(lag(created, payload) for created, payload in stored)
    return {"cores": (c1 - c0) / (t1 - t0), "own": (own1 - own0) / (t1 - t0), "seconds": t1 - t0, "events": decoded,
            "lag_p50": percentile(lags, 0.5), "lag_p99": percentile(lags, 0.99), "lag_max": lags[-1] if lags else 0.0}


def lag(created: float, payload: bytes) -> float:
    """How long after its audio was heard an event was stored: the outbox's wall-clock ``created`` less the
    event's ``time``, which is the audio's (the replay's start, each time round, plus the offset in the
    file). A gateway that keeps up stores each event a bounded time after its audio (a decoder's gathering
    and a burst's length); one that falls behind stores them later and later as the slice plays."""
    heard = datetime.fromisoformat(json.loads(payload)["time"].replace("Z", "+00:00"))
    return created - heard.timestamp()


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60.0, help="wall time over which the CPU is read")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--decoders", default=",".join(EVERY))
    ap.add_argument("--block-ms", type=int, default=20, help="the blocks the replay delivers, as a sound card's")
    ap.add_argument("--decode-ms", default="100", help="decode_ms of every channel; several (0,100) run in turn")
    ap.add_argument("--workers", default="0", help="[gateway] decode_workers; several (0,2) run in turn")
    ap.add_argument("--inputs", type=int, default=1,
                    help="channels per sound interface (8: 64 channels on eight 8-input cards, a driver thread each)")
    ap.add_argument("--quick", action="store_true", help="4 channels for 5 s (CI)")
    ap.add_argument("--out", type=Path, default=OUT / "gateway_audio.md")
    args = ap.parse_args()
    if shutil.which("mosquitto") is None:
        sys.exit("mosquitto is not installed")
    channels, seconds, warmup = (4, 5.0, 2.0) if args.quick else (args.channels, args.seconds, args.warmup)
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    table = ("| channels | decoders on each | blocks, decode_ms | decode workers | CPU over the run (cores busy, of "
             f"{os.cpu_count()}) | of which the gateway's own process | wall time read | events stored "
             "| event after its audio, p50 / p99 / max |\n"
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    for workers in (int(v) for v in args.workers.split(",")):
        for decode_ms in (int(v) for v in args.decode_ms.split(",")):
            got = run(channels, seconds, decoders, warmup=warmup, quick=args.quick, block_ms=args.block_ms,
                      decode_ms=decode_ms, workers=workers, inputs=args.inputs)
            cards = f" ({-(-channels // args.inputs)} cards of {args.inputs} inputs)" if args.inputs > 1 else ""
            table += (f"| {channels} x {RATE} Hz{cards} | {', '.join(decoders)} | {args.block_ms} ms, {decode_ms} "
                      f"| {workers} | {got['cores']:.2f} | {got['own']:.2f} | {got['seconds']:.0f} s "
                      f"| {got['events']:.0f} "
                      f"| {got['lag_p50']:.1f} / {got['lag_p99']:.1f} / {got['lag_max']:.1f} s |\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
