"""The audio speed benches run (at a tiny size, once, so that they cannot rot): one channel through
``pttbridge decode`` beside atest, and one gateway process on several audio channels. No timing is
asserted; what each decoder found on the tiny channel is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("gen_packets") is None, reason="needs Dire Wolf's gen_packets")
def test_the_channel_bench_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "channel.md"
    proc = subprocess.run([sys.executable, "-m", "bench.channel_bench", "--quick", "--alone", "afsk1200",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {r.split("|")[2].strip(): r.split("|") for r in out.read_text().splitlines() if r.startswith("| pttbridge")}
    every = rows["every decoder (dtmf, selcall, afsk1200, mdc1200, fleetsync, dmr)"]
    found = dict(item.split() for item in every[4].strip().split(", "))
    # The quick channel holds 4 MDC-1200 bursts, 4 + 2 FleetSync, 4 DTMF and 4 ZVEI1 sequences, 2 DMR calls.
    assert {k: v for k, v in found.items() if k != "afsk1200"} == {
        "mdc1200": "4", "fleetsync": "6", "dtmf": "4", "selcall": "4", "dmr": "2"}
    assert int(found["afsk1200"]) > 0
    assert rows["afsk1200 alone"][4].strip() == f"afsk1200 {found['afsk1200']}"


@pytest.mark.mosquitto
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")
def test_the_gateway_audio_bench_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "gateway.md"
    proc = subprocess.run([sys.executable, "-m", "bench.gateway_audio_bench", "--quick", "--workers", "0,2",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for line, workers in zip(out.read_text().splitlines()[2:], ("0", "2"), strict=True):
        row = line.split("|")
        assert row[1].strip() == "4 x 22050 Hz"
        assert row[3].strip() == "20 ms, 100"  # a sound card's blocks, gathered as the default configuration does
        assert row[4].strip() == workers
        assert float(row[5]) > 0  # it ran its decoders ...
        assert 0 < float(row[6]) <= float(row[5]) + 0.01  # (the gateway's own process: all of it without workers)
        assert int(row[8]) > 0  # ... and they stored events
        p50, p99, worst = (float(v) for v in row[9].strip().removesuffix(" s").split(" / "))
        assert 0 <= p50 <= p99 <= worst < 60  # each some time after its audio was heard, in this run


@pytest.mark.mosquitto
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")
def test_the_gateway_audio_bench_puts_channels_on_the_inputs_of_cards(tmp_path: Path) -> None:
    out = tmp_path / "gateway.md"
    proc = subprocess.run([sys.executable, "-m", "bench.gateway_audio_bench", "--quick", "--inputs", "2",
                           "--decoders", "dtmf,mdc1200", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    row = out.read_text().splitlines()[2].split("|")
    assert row[1].strip() == "4 x 22050 Hz (2 cards of 2 inputs)"
    assert float(row[5]) > 0 and int(row[8]) > 0  # the cards' radios decoded and stored events
