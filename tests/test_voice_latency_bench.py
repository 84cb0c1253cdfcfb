"""The mouth-to-ear bench runs (a few bursts, once, so that it cannot rot): every burst is found at both
ends in both directions, and the talk key keys PTT. No latency is asserted (bench/, README Benchmarks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.mosquitto
@pytest.mark.skipif(shutil.which("mosquitto") is None or shutil.which("pulseaudio") is None,
                    reason="needs mosquitto and PulseAudio")
def test_the_voice_latency_bench_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "latency.md"
    proc = subprocess.run([sys.executable, "-m", "bench.voice_latency_bench", "--bursts", "4", "--presses", "2",
                           "--phase", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r.split("|")[1].strip(): r.split("|") for r in out.read_text().splitlines() if r.startswith("| ")}
    assert rows["mouth-to-ear, radio receive -> console speaker"][2].strip() == "4/4"
    assert rows["mouth-to-ear, console microphone -> radio transmit"][2].strip() == "4/4"
    assert rows["access time, talk key -> PTT keyed"][2].strip() == "2"
    assert "per listened channel" in out.read_text()
    parts = [r.split("|") for r in out.read_text().splitlines() if r.startswith(("| receive |", "| transmit |"))]
    assert [r[1].strip() for r in parts] == ["receive"] * 3 + ["transmit"] * 3  # where the time goes
    assert all(int(r[3]) >= 1 for r in parts)
