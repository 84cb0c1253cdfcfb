"""Benchmark of the data-burst decoders: MDC-1200 and FleetSync, in white noise and on speech.

    python -m bench.signalling_bench [--quick]

No packaged peer decodes MDC-1200 or FleetSync (multimon-ng has neither), so the table gives ours alone:
for each SNR (burst power over white noise in the full band, as bench/audio_bench.py measures it), how
many of N bursts decode to exactly the packet sent, how many decodes are wrong (another unit or opcode:
the dangerous kind), and the x-realtime of the decoder on one core in 20 ms blocks. Talk-off: minutes
of espeak-ng speech and of white noise, where every decode is false. Writes bench/out/signalling.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as pttbridge runs its decoders (pttbridge.py)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.audio_bench import speech_corpus  # noqa: E402
from drivers.audio import fleetsync, mdc1200  # noqa: E402
from drivers.audio.base import AudioDecoder  # noqa: E402
from gateway.events import Decoded  # noqa: E402

OUT = ROOT / "bench" / "out"
RNG = np.random.default_rng(1200)
SNRS = (20, 10, 6, 3, 0, -3)
START = datetime(2026, 1, 1, tzinfo=UTC)


def corpus(make: Callable[[int], np.ndarray], count: int, rate: int,
           gap_s: float = 0.6) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``count`` bursts for random units, ``gap_s`` of silence between them."""
    parts, units = [np.zeros(int(gap_s * rate), np.float32)], []
    for _ in range(count):
        unit = int(RNG.integers(1000, 5000))
        units.append(unit)
        parts += [make(unit), np.zeros(int(gap_s * rate), np.float32)]
    x = np.concatenate(parts)
    return x, np.abs(x) > 1e-6, units


def noisy(x: np.ndarray, active: np.ndarray, snr_db: float) -> np.ndarray:
    power = float(np.mean(x[active] ** 2))
    return (x + RNG.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.size)).astype(np.float32)


def run(decoder: AudioDecoder, x: np.ndarray, block_s: float = 0.02) -> tuple[list[Decoded], float]:
    n = max(1, int(block_s * decoder.rate))
    began = time.process_time()
    out = []
    for i in range(0, x.size, n):
        out += decoder.feed(x[i:i + n], START)
    out += decoder.flush(START)
    return [d for d in out if isinstance(d, Decoded)], time.process_time() - began


CASES: dict[str, tuple[Callable[[int, int], np.ndarray], Callable[[int], AudioDecoder], Callable[[int], str]]] = {
    "MDC-1200 emergency": (
        lambda unit, rate: mdc1200.encode(mdc1200.emergency(unit), rate=rate),
        lambda rate: mdc1200.Mdc1200Decoder(rate),
        lambda unit: f"mdc:{unit:04X}",
    ),
    "FleetSync I ANI, 1200 bps": (
        lambda unit, rate: fleetsync.encode(fleetsync.ani(100, unit), rate=rate, version=1),
        lambda rate: fleetsync.FleetSyncDecoder(rate),
        lambda unit: f"fleetsync:100-{unit}",
    ),
    "FleetSync II ANI, 2400 bps": (
        lambda unit, rate: fleetsync.encode(fleetsync.ani(100, unit), rate=rate, version=2),
        lambda rate: fleetsync.FleetSyncDecoder(rate),
        lambda unit: f"fleetsync:100-{unit}",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 bursts per SNR instead of 100")
    ap.add_argument("--rate", type=int, default=8000, help="sample rate of the corpora (default 8000)")
    args = ap.parse_args()
    count, rate = (20 if args.quick else 100), args.rate
    rows = ["| decoder | SNR | decoded exactly | wrong | x-realtime (20 ms blocks) |",
            "| --- | --- | --- | --- | --- |"]
    for name, (make, decoder_for, unit_of) in CASES.items():
        x, active, units = corpus(lambda u, make=make: make(u, rate), count, rate)  # type: ignore[misc]
        for snr in SNRS:
            decoded, cpu = run(decoder_for(rate), noisy(x, active, snr))
            sent = [unit_of(u) for u in units]
            got = [d.unit for d in decoded]
            exact = sum(1 for u in sent if u in got)
            wrong = sum(1 for u in got if u not in sent)
            rows.append(f"| {name} | {snr} dB | {exact}/{count} | {wrong} | {x.size / rate / cpu:.0f}x |")
            print(rows[-1], flush=True)
    talk = speech_corpus(rate)
    hiss = RNG.normal(0, 0.1, 120 * rate).astype(np.float32)
    for label, audio in (("3.5 min of speech (en, en-us, cmn, en+f3)", talk), ("2 min of white noise", hiss)):
        if audio is None:
            rows.append(f"| talk-off: {label} | - | espeak-ng or sox missing | | |")
            continue
        falses = {name: len(run(decoder_for(rate), audio)[0]) for name, (_, decoder_for, _) in CASES.items()
                  if "II" not in name}  # one FleetSync decoder hears both codings
        rows.append(f"| talk-off: {label} | - | - | " + ", ".join(f"{k.split()[0]} {v}" for k, v in falses.items())
                    + " false | |")
        print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "signalling.md").write_text("\n".join(rows) + "\n")
    print(f"wrote {OUT / 'signalling.md'}")


if __name__ == "__main__":
    main()
