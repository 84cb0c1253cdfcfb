"""One busy radio channel through ``pttbridge decode`` with every audio decoder on: the whole process's CPU
beside Dire Wolf's ``atest`` on the same file, and what each decoder found there.

    python -m bench.channel_bench [--quick] [--runs N] [--before DIR] [--out bench/out/channel.md]

The channel (made here, bench/out/channel/channel-22050.wav, 16-bit mono at 22050 Hz): Dire Wolf's
``gen_packets -n 100`` noise sweep, MDC-1200 emergencies, FleetSync I and II ANIs, DTMF and ZVEI1
sequences, DMR voice calls (the DMR bench's signal, discriminator audio resampled from 48 kHz), and
espeak-ng speech, one after the other with two seconds of receiver hiss (-45 dBFS) between them and a
minute of it at the end, as a squelch-open channel sounds between calls. Every signal is this
project's encoder's or Dire Wolf's; the bursts and sequences carry noise at 10 dB SNR.

Speed: CPU seconds (user + system, from the kernel's accounting of the child) of the whole process,
``pttbridge decode FILE -d NAMES`` (Python start, imports, reading the file, every decoder; each tree's
bytecode written before, as an installed package has it), over the audio's duration; the same for
``atest`` on the same file (AFSK1200 only). ``--before DIR`` also runs the ``pttbridge.py`` of another
source tree (a checkout of an earlier commit), alternating the two, so that a shared machine's load
falls on both alike; each figure is the median of ``--runs`` runs, with the
lowest and highest. Counts: events per decoder (and AFSK1200 frames for atest), from each run's output.
Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.audio_bench import read_wav, speech_corpus, write_wav  # noqa: E402
from drivers.audio import dtmf, fleetsync, mdc1200, selcall  # noqa: E402
from drivers.audio.dmr import encoder, layer2, modem  # noqa: E402
from drivers.audio.source import Resampler  # noqa: E402

OUT = ROOT / "bench" / "out"
RATE = 22050
FIVE = ("dtmf", "selcall", "afsk1200", "mdc1200", "fleetsync")
EVERY = (*FIVE, "dmr")
HISS_DBFS = -45.0
PACKAGES = ("pttbridge.py", "drivers", "gateway", "config")  # what ``pttbridge decode`` imports of a tree


def _hiss(rng: np.random.Generator, seconds: float) -> np.ndarray:
    return rng.normal(0, 10 ** (HISS_DBFS / 20), int(seconds * RATE)).astype(np.float32)


def _noisy(rng: np.random.Generator, x: np.ndarray, snr_db: float = 10.0) -> np.ndarray:
    active = np.abs(x) > 1e-6
    power = float(np.mean(x[active] ** 2)) if active.any() else 0.0
    return (x + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.size)).astype(np.float32)


def _bursts(rng: np.random.Generator, count: int, make: Callable[[int], np.ndarray]) -> np.ndarray:
    parts = []
    for _ in range(count):
        parts += [make(int(rng.integers(1000, 5000))), np.zeros(int(0.8 * RATE), np.float32)]
    return _noisy(rng, np.concatenate(parts))


def _digits(rng: np.random.Generator, count: int, make: Callable[[str], np.ndarray], alphabet: str,
            length: int) -> np.ndarray:
    parts = []
    for _ in range(count):
        parts += [make("".join(rng.choice(list(alphabet), size=length))), np.zeros(RATE, np.float32)]
    return _noisy(rng, np.concatenate(parts))


def _dmr(rng: np.random.Generator, count: int) -> np.ndarray:
    bursts: list[encoder.Burst] = []
    for i in range(count):
        source, target = (int(v) for v in rng.integers(1, 16_776_415, 2))
        lc = layer2.group_call(source, target) if i % 2 == 0 else layer2.private_call(source, target)
        bursts += encoder.voice_call(lc, slot=1 + i % 2, superframes=5, color_code=1)
    freq = modem.frequency(encoder.repeater_stream(bursts, lead_slots=8, tail_slots=8), rate=48000)
    x = modem.to_audio(modem.through_receiver(freq, 20.0, rng, rate=48000), level=0.5)
    res = Resampler(48000, RATE)
    return np.concatenate((res.feed(x), res.flush())).astype(np.float32)


def make_channel(path: Path, *, scale: int = 1) -> float:
    """Write the channel's recording; its length in seconds."""
    rng = np.random.default_rng(17)
    afsk = path.with_name(f"{path.stem}-afsk.wav")
    subprocess.run(["gen_packets", "-n", str(100 // scale), "-r", str(RATE), "-o", str(afsk)], check=True,
                   capture_output=True)
    packets, _ = read_wav(afsk)
    parts = [
        packets,
        _bursts(rng, 40 // scale, lambda u: mdc1200.encode(mdc1200.emergency(u), rate=RATE)),
        _bursts(rng, 40 // scale, lambda u: fleetsync.encode(fleetsync.ani(100, u), rate=RATE, version=1)),
        _bursts(rng, 20 // scale, lambda u: fleetsync.encode(fleetsync.ani(100, u), rate=RATE, version=2)),
        _digits(rng, 40 // scale, lambda d: dtmf.dtmf_tones(d, RATE), "0123456789*#", 5),
        _digits(rng, 40 // scale, lambda d: selcall.selcall_tones(d, "ZVEI1", RATE), "0123456789", 5),
        _dmr(rng, 20 // scale),
    ]
    speech = speech_corpus(RATE) if scale == 1 else None
    if speech is not None:
        parts.append(speech * 0.5)
    joined: list[np.ndarray] = []
    for part in parts:
        joined += [_hiss(rng, 2.0), part.astype(np.float32)]
    joined.append(_hiss(rng, 60.0 / scale))
    x = np.concatenate(joined)
    write_wav(path, x, RATE)
    return x.size / RATE


@dataclass
class Run:
    cpu: list[float] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def run_cpu(args: Sequence[str]) -> tuple[float, str]:
    """``args`` to its end: (CPU seconds of that process alone, its stdout)."""
    before = os.times()
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system), out


def compile_tree(tree: Path) -> None:
    """Write the tree's bytecode first, as an installed package has it: where the environment says not
    to write it (PYTHONDONTWRITEBYTECODE), every run would compile the modules it imports again."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(tree / p) for p in PACKAGES)], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def pttbridge(tree: Path, wav: Path, names: Sequence[str]) -> tuple[float, Counter[str]]:
    cpu, out = run_cpu([sys.executable, str(tree / "pttbridge.py"), "decode", "-d", ",".join(names), str(wav)])
    counts: Counter[str] = Counter()
    for line in out.splitlines():
        event = json.loads(line)
        detail = event.get("detail") or {}
        protocol = str(detail.get("protocol", "?"))
        counts[_decoder_of(protocol)] += 1
    return cpu, counts


def _decoder_of(protocol: str) -> str:
    if protocol in ("zvei1", "zvei2", "zvei3", "ccir", "eea", "eia", "pzvei", "dzvei"):
        return "selcall"
    if protocol in ("aprs", "ax25", "afsk1200"):
        return "afsk1200"
    return protocol


def atest(wav: Path) -> tuple[float, Counter[str]]:
    cpu, out = run_cpu(["atest", str(wav)])
    m = re.search(r"(\d+) packets decoded in", out)
    return cpu, Counter({"afsk1200": int(m.group(1)) if m else 0})


def _cell(run: Run, seconds: float) -> str:
    speeds = sorted(seconds / c for c in run.cpu)
    return f"{statistics.median(speeds):,.0f}x ({speeds[0]:,.0f}-{speeds[-1]:,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a channel a tenth as long, one run (CI)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another source tree to run beside this one, alternating")
    ap.add_argument("--alone", default=",".join(EVERY), help="the decoders also timed one at a time")
    ap.add_argument("--out", type=Path, default=OUT / "channel.md")
    args = ap.parse_args()
    scale, runs = (10, 1) if args.quick else (1, args.runs)
    folder = OUT / "channel"
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"channel-{RATE}{'-quick' if args.quick else ''}.wav"
    seconds = make_channel(wav, scale=scale)
    trees = {"pttbridge": ROOT} | ({"pttbridge (before)": args.before} if args.before else {})
    for tree in trees.values():
        compile_tree(tree)
    cases: list[tuple[str, str, Callable[[], tuple[float, Counter[str]]]]] = []
    for label, tree in trees.items():
        alone = [n for n in args.alone.split(",") if n]
        for names in (EVERY, FIVE, *((n,) for n in alone)):
            what = ("every decoder (" + ", ".join(names) + ")" if names == EVERY else
                    "the five of issue 17 (" + ", ".join(names) + ")" if names == FIVE else names[0] + " alone")
            cases.append((label, what, partial(pttbridge, tree, wav, names)))
    if shutil.which("atest"):
        cases.append(("atest", "AFSK1200 (Dire Wolf, default modem)", lambda: atest(wav)))
    results = {(label, what): Run() for label, what, _ in cases}
    for i in range(runs):
        for label, what, go in cases:
            cpu, counts = go()
            results[label, what].cpu.append(cpu)
            results[label, what].counts = counts
            print(f"run {i + 1}/{runs}: {label}, {what}: {seconds / cpu:,.0f}x, {dict(counts)}", file=sys.stderr,
                  flush=True)
    rows = [f"| program | decoders | x-realtime, whole process (median, lowest-highest of {runs}) | found |",
            "| --- | --- | --- | --- |"]
    for (label, what), run in results.items():
        found = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
        rows.append(f"| {label} | {what} | {_cell(run, seconds)} | {found} |")
    table = (f"One channel, {seconds / 60:.1f} min at {RATE} Hz, "
             f"{time.strftime('%Y-%m-%d')}:\n\n" + "\n".join(rows) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
