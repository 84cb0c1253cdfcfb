"""Benchmark of the DMR decoder against dsdcc (the Debian package's ``dsdccx``) on the same files.

    python -m bench.dmr_bench [--quick] [--calls N] [--cnr 30,20,...] [--out bench/out/dmr.md]

Signals: this project's encoder (voice calls with random 24-bit source and target IDs on both slots of
a repeater's outbound channel: LC headers, superframes with the embedded LC, terminators), shaped and
FM-modulated as a radio does (RRC 0.2, +-1944/+-648 Hz), with white noise added at the given
carrier-to-noise ratio in the 12.5 kHz channel, filtered and discriminated as a receiver does, at
48 kHz (what dsdccx reads). Per C/N: calls whose source and target each decoder reported (pttbridge:
a ``ptt`` event; dsdcc: its ``-M`` status lines, ``SSSSSSSS>GTTTTTTTT``), and wrong pairs (a source
or target that was not sent), counted apart. Talk-off: espeak-ng speech and white noise through the
DMR decoder, MDC-1200 and AFSK1200 bursts through it, and DMR through the MDC-1200, FleetSync and
AFSK1200 decoders: every decode there is false. Speed: x-realtime of each decoder on one core in 20 ms
blocks. Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as pttbridge runs its decoders (pttbridge.py)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from drivers.audio import afsk, fleetsync, mdc1200  # noqa: E402
from drivers.audio.base import AudioDecoder  # noqa: E402
from drivers.audio.dmr import encoder, layer2, modem  # noqa: E402
from drivers.audio.dmr.decoder import DmrDecoder  # noqa: E402
from gateway.events import Decoded, Kind  # noqa: E402

OUT = ROOT / "bench" / "out"
RATE = 48000
CNRS = (30, 20, 16, 14, 12, 10, 8, 7, 6, 5, 4, 3)
START = datetime(2026, 1, 1, tzinfo=UTC)
LINE = re.compile(r"S([12]): \S+ \S+ (\d{8})>([GU])(\d{8})")

Pair = tuple[int, int]  # (source, target)


def calls(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, list[Pair]]:
    """A repeater's transmission with ``count`` calls alternating between the slots: (frequency in Hz,
    carrier on, what was sent)."""
    bursts: list[encoder.Burst] = []
    sent: list[Pair] = []
    for i in range(count):
        source, target = (int(v) for v in rng.integers(1, 16_776_415, 2))
        lc = layer2.group_call(source, target) if i % 2 == 0 else layer2.private_call(source, target)
        sent.append((source, target))
        bursts += encoder.voice_call(lc, slot=1 + i % 2, superframes=5, color_code=1)
    freq = modem.frequency(encoder.repeater_stream(bursts, lead_slots=8, tail_slots=8), rate=RATE)
    return freq, np.ones(freq.size, bool), sent


def received(freq: np.ndarray, cnr: float | None, rng: np.random.Generator) -> np.ndarray:
    """Discriminator audio as a sound card records it (16-bit, clipped): both decoders get the same."""
    x = modem.to_audio(modem.through_receiver(freq, cnr, rng, rate=RATE), level=0.5)
    return (np.round(np.clip(x, -1, 32767 / 32768) * 32768) / 32768).astype(np.float32)


def run(decoder: AudioDecoder, x: np.ndarray, block_s: float = 0.02) -> tuple[list[Decoded], float]:
    n = max(1, int(block_s * decoder.rate))
    began = time.process_time()
    out = []
    for i in range(0, x.size, n):
        out += decoder.feed(x[i:i + n], START)
    out += decoder.flush(START)
    return [d for d in out if isinstance(d, Decoded)], time.process_time() - began


def ours(x: np.ndarray, rate: int = RATE) -> tuple[set[Pair], float]:
    """Our decoder at ``rate`` (the 48 kHz audio resampled to it, as the audio driver does)."""
    events, cpu = run(DmrDecoder(rate), x if rate == RATE else _resample(x, RATE, rate))
    return {(int(e.detail["source_id"]), int(e.detail["target_id"])) for e in events if e.kind == Kind.PTT}, cpu


def dsdcc(x: np.ndarray, workdir: Path) -> tuple[set[Pair], float] | None:
    """dsdccx on the same audio, as 16-bit 48 kHz raw samples; the pairs its status lines show."""
    exe = shutil.which("dsdccx")
    if exe is None:
        return None
    raw, msg = workdir / "in.raw", workdir / "status.txt"
    np.round(x * 32768).astype("<i2").tofile(raw)
    msg.unlink(missing_ok=True)
    began = time.perf_counter()
    subprocess.run([exe, "-i", str(raw), "-fr", "-T3", "-n", "-M", str(msg), "-m", "0.1"], cwd=workdir,
                   capture_output=True, timeout=600, check=False)
    spent = time.perf_counter() - began
    pairs = set()
    for line in msg.read_text(errors="replace").splitlines() if msg.exists() else []:
        for _, source, _, target in LINE.findall(line):
            pairs.add((int(source), int(target)))
    return pairs, spent


def sweep(cnrs: list[float], count: int, seed: int, rows: list[str], rate: int = RATE) -> None:
    rng = np.random.default_rng(seed)
    freq, _, sent = calls(rng, count)
    truth = set(sent)
    with tempfile.TemporaryDirectory() as tmp:
        for cnr in cnrs:
            x = received(freq, None if cnr >= 99 else cnr, np.random.default_rng(seed + int(cnr * 10)))
            got, cpu = ours(x, rate)
            peer = dsdcc(x, Path(tmp))
            ok, wrong = len(got & truth), len(got - truth)
            speed = f"{x.size / RATE / cpu:.0f}x" if cpu else "-"
            if peer is None:
                peer_cells = "dsdccx missing | -"
            else:
                pgot, _ = peer
                peer_cells = f"{len(pgot & truth)}/{count} | {len(pgot - truth)}"
            label = "clean" if cnr >= 99 else f"{cnr:g} dB"
            rows.append(f"| {label} | {ok}/{count} | {wrong} | {peer_cells} | {speed} |")
            print(rows[-1], flush=True)


def speech(rate: int) -> np.ndarray | None:
    from bench.audio_bench import speech_corpus

    return speech_corpus(rate)


def talk_off(rows: list[str], seconds_noise: float) -> None:
    rng = np.random.default_rng(7)
    cases: list[tuple[str, np.ndarray | None]] = [
        ("espeak-ng speech (en, en-us, cmn, en+f3)", speech(RATE)),
        (f"{seconds_noise:g} s of white noise", rng.normal(0, 0.2, int(seconds_noise * RATE)).astype(np.float32)),
        ("discriminator noise, no carrier", received(np.zeros(int(seconds_noise * RATE)), -10, rng)),
        ("20 MDC-1200 emergencies", np.concatenate([mdc1200.encode(mdc1200.emergency(0x1000 + i), rate=RATE,
                                                                  lead_s=0.2, tail_s=0.2) for i in range(20)])),
        ("Dire Wolf gen_packets -n 20 (AFSK1200)", afsk_packets(RATE)),
    ]
    for label, audio in cases:
        if audio is None:
            rows.append(f"| talk-off: {label} | espeak-ng or sox missing | | |")
            continue
        events, _ = run(DmrDecoder(RATE), audio)
        rows.append(f"| talk-off: {label} ({audio.size / RATE:.0f} s) | dmr: {len(events)} false | | |")
        print(rows[-1], flush=True)
    freq, _, _ = calls(rng, 6)
    x = received(freq, None, rng)
    others = {"mdc1200": mdc1200.Mdc1200Decoder(RATE), "fleetsync": fleetsync.FleetSyncDecoder(),
              "afsk1200": afsk.Afsk1200Decoder()}
    falses = []
    for name, dec in others.items():
        y = x if dec.rate == RATE else _resample(x, RATE, dec.rate)
        falses.append(f"{name}: {len(run(dec, y)[0])}")
    rows.append(f"| talk-off: 6 DMR calls ({x.size / RATE:.0f} s) into the analogue decoders | "
                + ", ".join(falses) + " false | | |")
    print(rows[-1], flush=True)


def afsk_packets(rate: int) -> np.ndarray | None:
    if shutil.which("gen_packets") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "afsk.wav"
        subprocess.run(["gen_packets", "-n", "20", "-r", str(rate), "-o", str(wav)], capture_output=True, check=True)
        from drivers.audio.source import WavSource

        with WavSource(str(wav)) as source:
            return np.concatenate([b[:, 0] for b, _ in source.blocks()]).astype(np.float32)


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    from drivers.audio.source import Resampler

    r = Resampler(src, dst)
    return np.concatenate((r.feed(x), r.flush())).astype(np.float32)


def speed(rows: list[str]) -> None:
    rng = np.random.default_rng(3)
    freq, _, _ = calls(rng, 8)
    x = received(freq, 20, rng)
    rows.append("")
    rows.append("| decoder | rate | x-realtime (one core, 20 ms blocks) |")
    rows.append("| --- | --- | --- |")
    for dec in (DmrDecoder(48000), DmrDecoder(16000), mdc1200.Mdc1200Decoder(8000), fleetsync.FleetSyncDecoder(),
                afsk.Afsk1200Decoder()):
        y = x if dec.rate == RATE else _resample(x, RATE, dec.rate)
        _, cpu = run(dec, y)
        rows.append(f"| {dec.name} | {dec.rate} | {y.size / dec.rate / cpu:.0f}x |")
        print(rows[-1], flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 calls per C/N instead of 40, shorter talk-off")
    ap.add_argument("--calls", type=int, help="calls per C/N")
    ap.add_argument("--cnr", help="comma-separated C/N values in dB (99 = no noise)")
    ap.add_argument("--no-talk-off", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--rate", type=int, default=RATE,
                    help="the rate our decoder runs at, the audio resampled to it (default 48000)")
    ap.add_argument("--out", type=Path, default=OUT / "dmr.md")
    args = ap.parse_args(argv)
    count = args.calls or (20 if args.quick else 40)
    cnrs = [float(v) for v in args.cnr.split(",")] if args.cnr else [99.0, *CNRS]
    rows = ["| C/N (12.5 kHz) | pttbridge: calls | pttbridge: wrong | dsdcc: calls | dsdcc: wrong | x-realtime |",
            "| --- | --- | --- | --- | --- | --- |"]
    sweep(cnrs, count, 18, rows, args.rate)
    if not args.no_talk_off:
        talk_off(rows, 30 if args.quick else 120)
    if not args.no_speed:
        speed(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(rows) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
