"""Audio benchmark: our DTMF, 5-tone and AFSK1200 decoders beside multimon-ng and Dire Wolf's atest,
on the same generated corpora.

    python -m bench.audio_bench [--quick]

Corpora (made here, in bench/out/audio/):
- AFSK1200: ``gen_packets -n 100 -r RATE`` (100 APRS packets with rising noise) at 22050, 44100, 48000 Hz.
- DTMF: sequences of random digits (70 ms tones, 70 ms gaps, 1 s between sequences) at 8000 Hz with
  white noise at 20, 15, 10, 6 and 3 dB SNR (signal power over noise power in the full band).
- 5-tone: ZVEI1, CCIR and EEA sequences of 5 digits (a repeated digit sent as the repeat tone) at the
  same SNRs.
- Talk-off: speech from espeak-ng (English and Chinese voices) at 8000 Hz: every detection is false.

Counts: AFSK frames (FCS-valid) per file; DTMF and 5-tone sequences decoded exactly, and false
detections (sequences or digits that were not sent); x-realtime of each decoder alone and of all three
on one channel (the 22050 Hz AFSK recording, DTMF and 5-tone resampled to 8000 Hz as the gateway
does), on one core, in 20 ms and 100 ms blocks. A speed is CPU time (``time.process_time``), the best of
three runs: the other processes of a shared machine only ever slow a run down. The tone tables below are
this benchmark's own, from the standards, so that it does not test our encoder against our decoder.
Writes bench/out/audio.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as pttbridge runs its decoders (pttbridge.py)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from drivers.audio.source import Resampler  # noqa: E402
from drivers.base import Output, Rejected  # noqa: E402
from drivers.registry import audio_decoder_class, create_audio_decoder  # noqa: E402
from gateway.events import Decoded  # noqa: E402

OUT = ROOT / "bench" / "out"
CORPUS = OUT / "audio"
SNRS = (20, 15, 10, 6, 3)
RNG = np.random.default_rng(1200)

DTMF_LOW = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770,
            "7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
DTMF_HIGH = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
             "3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}
# 5-tone tables: digit 0-9, then the repeat tone (multimon-ng's tables agree).
SELCALL = {
    "ZVEI1": ((2400, 1060, 1160, 1270, 1400, 1530, 1670, 1830, 2000, 2200, 2600), 0.070),
    "CCIR": ((1981, 1124, 1197, 1275, 1358, 1446, 1540, 1640, 1747, 1860, 2110), 0.100),
    "EEA": ((1981, 1124, 1197, 1275, 1358, 1446, 1540, 1640, 1747, 1860, 2110), 0.040),
}


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM: ``samples`` (frames,) for mono, or (frames, channels) interleaved."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768, w.getframerate()


def tone(freqs: tuple[float, ...], seconds: float, rate: int, amp: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mixed: np.ndarray = np.sum([amp * np.sin(2 * np.pi * f * t) for f in freqs], axis=0).astype(np.float32)
    return mixed


def with_noise(signal: np.ndarray, snr_db: float, active: np.ndarray) -> np.ndarray:
    """White noise at ``snr_db`` below the power of the signal where it is on (``active``)."""
    power = float(np.mean(signal[active] ** 2))
    noise = RNG.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), signal.size).astype(np.float32)
    return signal + noise


def dtmf_corpus(count: int, rate: int = 8000) -> tuple[np.ndarray, np.ndarray, list[str]]:
    parts: list[np.ndarray] = []
    sent: list[str] = []
    for _ in range(count):
        digits = "".join(RNG.choice(list("0123456789*#ABCD"), size=int(RNG.integers(3, 8))))
        sent.append(digits)
        for d in digits:
            parts += [tone((DTMF_LOW[d], DTMF_HIGH[d]), 0.07, rate), np.zeros(int(0.07 * rate), np.float32)]
        parts.append(np.zeros(rate, np.float32))
    signal = np.concatenate(parts)
    return signal, np.abs(signal) > 1e-6, sent


def selcall_corpus(standard: str, count: int, rate: int = 8000) -> tuple[np.ndarray, np.ndarray, list[str]]:
    freqs, seconds = SELCALL[standard]
    parts, sent = [np.zeros(rate // 2, np.float32)], []
    for _ in range(count):
        digits = "".join(str(d) for d in RNG.integers(0, 10, size=5))
        sent.append(digits)
        previous = None  # the digit the last tone stood for; None after a repeat tone
        for d in digits:
            repeat = d == previous  # a digit equal to the one before is the repeat tone ("22" = 2 E,
            f = freqs[10] if repeat else freqs[int(d)]  # "222" = 2 E 2)
            parts.append(tone((f,), seconds, rate, 0.5))
            previous = None if repeat else d
        parts.append(np.zeros(rate, np.float32))
    signal = np.concatenate(parts)
    return signal, np.abs(signal) > 1e-6, sent


def speech_corpus(rate: int = 8000) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    text = ("Unit seven to dispatch, we are at the crossing of Wensan Road and Xixi Road, two vehicles, "
            "no injuries, requesting a tow truck and traffic control. Copy that, unit seven, stand by. ") * 4
    chinese = "七号车呼叫指挥中心，我们在文三路和西溪路交叉口，两辆车相撞，没有人员受伤，请求拖车和交通管制。" * 4
    chunks = []
    for voice, words in (("en", text), ("en-us", text), ("cmn", chinese), ("en+f3", text)):
        raw = subprocess.run(["espeak-ng", "-v", voice, "--stdout", words], capture_output=True, check=True).stdout
        pcm = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r",
                              str(rate), "-"], input=raw, capture_output=True, check=True).stdout
        chunks.append(np.frombuffer(pcm, "<i2").astype(np.float32) / 32768)
    return np.concatenate(chunks)


# --- ours ------------------------------------------------------------------------------------


def ours(names: list[str], samples: np.ndarray, rate: int, options: dict[str, dict[str, Any]] | None = None, *,
         native: bool = True, block_s: float = 0.02, runs: int = 1) -> tuple[list[Decoded], list[Rejected], float]:
    """Run decoders over a recording in 20 ms blocks, at the recording's rate where a decoder runs at it,
    else resampled to the decoder's own rate as the audio driver does. Returns (events, rejected, CPU
    seconds, the least of ``runs`` runs). An AFSK1200 frame is counted whether it is an event (every UI
    frame is, gen_packets' "," test frames too) or rejected (a connected-mode frame)."""
    if runs > 1:
        results = [ours(names, samples, rate, options, native=native, block_s=block_s) for _ in range(runs)]
        return results[0][0], results[0][1], min(r[2] for r in results)
    decoders = [create_audio_decoder(n, rate if native and rate in audio_decoder_class(n).rates else None,
                                     (options or {}).get(n)) for n in names]
    resamplers = {d.rate: Resampler(rate, d.rate) for d in decoders}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Output] = []
    block = max(1, int(rate * block_s))
    t0 = time.process_time()
    for i in range(0, samples.size, block):
        at = start + timedelta(seconds=i / rate)
        chunk = {r: res.feed(samples[i : i + block]) for r, res in resamplers.items()}
        for d in decoders:
            out += d.feed(chunk[d.rate], at)
    for d in decoders:
        out += d.flush(datetime.max.replace(tzinfo=UTC))
    cpu = time.process_time() - t0
    return [o for o in out if isinstance(o, Decoded)], [o for o in out if isinstance(o, Rejected)], cpu


# --- peers -----------------------------------------------------------------------------------


def multimon(path: Path, *modes: str) -> str:
    args = ["multimon-ng", "-q", "-t", "wav"]
    for m in modes:
        args += ["-a", m]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, check=False).stdout


def multimon_dtmf(path: Path) -> str:
    return "".join(re.findall(r"^DTMF: (\S)", multimon(path, "DTMF"), re.M))


def multimon_selcall(path: Path, standard: str) -> list[str]:
    """multimon-ng prints the repeat tone as 'E'; it stands for the digit before it."""
    out = []
    for raw in re.findall(rf"^{standard}: ([0-9E]+)", multimon(path, standard), re.M):
        digits = ""
        for ch in raw:
            digits += digits[-1] if ch == "E" and digits else ch
        out.append(digits)
    return out


def atest(path: Path) -> int:
    out = subprocess.run(["atest", str(path)], capture_output=True, text=True, check=False).stdout
    m = re.search(r"(\d+) packets decoded in", out)
    return int(m.group(1)) if m else 0


def multimon_afsk(path: Path) -> int:
    return len(re.findall(r"^AFSK1200: fm ", multimon(path, "AFSK1200"), re.M))


# --- scoring ---------------------------------------------------------------------------------


def matched_digits(sent: str, got: str) -> int:
    """Longest common subsequence: digits decoded in the right order."""
    prev = [0] * (len(got) + 1)
    for a in sent:
        cur = [0]
        for j, b in enumerate(got):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def sequence_score(sent: list[str], got: list[str]) -> tuple[int, int]:
    """(sequences decoded exactly, detections that were never sent)."""
    remaining = list(sent)
    exact = false = 0
    for g in got:
        if g in remaining:
            remaining.remove(g)
            exact += 1
        else:
            false += 1
    return exact, false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller corpora, for a smoke run")
    args = ap.parse_args()
    count = 20 if args.quick else 100
    CORPUS.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []

    def say(step: str) -> None:
        print(f"... {step}", file=sys.stderr, flush=True)

    for rate in (22050, 44100, 48000):
        say(f"AFSK1200 at {rate} Hz")
        path = CORPUS / f"afsk-{rate}.wav"
        subprocess.run(["gen_packets", "-n", "100", "-r", str(rate), "-o", str(path)], check=True,
                       capture_output=True)
        samples, _ = read_wav(path)
        events, rejected, cpu = ours(["afsk1200"], samples, rate, runs=3)
        peer = f"atest: {atest(path)}"
        if rate == 22050:
            peer += f"; multimon-ng: {multimon_afsk(path)}"
        rows.append((f"AFSK1200, gen_packets -n 100, {rate} Hz", f"{len(events) + len(rejected)} frames, "
                     f"{samples.size / rate / cpu:,.0f}x realtime", peer))

    for snr in SNRS:
        say(f"DTMF at {snr} dB")
        signal, active, sent = dtmf_corpus(count)
        noisy = with_noise(signal, snr, active)
        path = CORPUS / f"dtmf-{snr}dB.wav"
        write_wav(path, noisy, 8000)
        events, _, cpu = ours(["dtmf"], noisy, 8000, runs=3 if snr == SNRS[0] else 1)
        got = [e.detail["digits"] for e in events]
        exact, false = sequence_score(sent, got)
        peer_digits = multimon_dtmf(path)
        sent_digits = "".join(sent)
        peer_ok = matched_digits(sent_digits, peer_digits)
        our_ok = matched_digits(sent_digits, "".join(got))
        rows.append((f"DTMF, {count} sequences, {snr} dB SNR",
                     f"{exact} sequences exact, {our_ok}/{len(sent_digits)} digits, "
                     f"{len(''.join(got)) - our_ok} false digits"
                     + (f", {noisy.size / 8000 / cpu:,.0f}x realtime" if snr == SNRS[0] else ""),
                     f"multimon-ng: {peer_ok}/{len(sent_digits)} digits, {len(peer_digits) - peer_ok} false digits"))

    for standard in SELCALL:
        for snr in SNRS:
            say(f"{standard} at {snr} dB")
            signal, active, sent = selcall_corpus(standard, count)
            noisy = with_noise(signal, snr, active)
            path = CORPUS / f"{standard.lower()}-{snr}dB.wav"
            write_wav(path, noisy, 8000)
            events, _, cpu = ours(["selcall"], noisy, 8000, {"selcall": {"standard": standard}})
            exact, false = sequence_score(sent, [e.detail["digits"] for e in events])
            p_exact, p_false = sequence_score(sent, multimon_selcall(path, standard))
            rows.append((f"{standard}, {count} sequences, {snr} dB SNR", f"{exact} exact, {false} false",
                         f"multimon-ng: {p_exact} exact, {p_false} false"))

    speech = speech_corpus()
    if speech is not None:
        say("talk-off")
        path = CORPUS / "speech.wav"
        write_wav(path, speech, 8000)
        minutes = speech.size / 8000 / 60
        dtmf_events, _, _ = ours(["dtmf"], speech, 8000)
        ours_false = sum(len(e.detail["digits"]) for e in dtmf_events)
        tones = 0
        for standard in SELCALL:
            events, _, _ = ours(["selcall"], speech, 8000, {"selcall": {"standard": standard}})
            tones += len(events)
        peer_dtmf = len(multimon_dtmf(path))
        peer_tones = sum(len(multimon_selcall(path, s)) for s in SELCALL)
        rows.append((f"talk-off: {minutes:.1f} min of speech (en, en-us, cmn, en+f3)",
                     f"{ours_false} false DTMF digits, {tones} false 5-tone sequences",
                     f"multimon-ng: {peer_dtmf} false DTMF digits, {peer_tones} false 5-tone sequences"))

    say("one channel: each decoder alone, then all three")
    samples, rate = read_wav(CORPUS / "afsk-22050.wav")
    # As the gateway runs them: DTMF and 5-tone resampled to 8000 Hz, AFSK1200 at 22050 Hz.
    for names in (["dtmf"], ["selcall"], ["afsk1200"], ["dtmf", "selcall", "afsk1200"]):
        speeds = []
        for block_s in (0.02, 0.1):
            _, _, cpu = ours(names, samples, rate, native=False, block_s=block_s, runs=3)
            speeds.append(f"{samples.size / rate / cpu:,.0f}x realtime in {block_s * 1000:.0f} ms blocks")
        what = "DTMF + 5-tone + AFSK1200 together" if len(names) > 1 else f"{names[0]} alone"
        rows.append((f"{what} on one 22050 Hz channel, one core", ", ".join(speeds), "-"))

    table = ["| corpus | pttbridge | peers on the same file |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "audio.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
