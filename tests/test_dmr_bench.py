"""The DMR benchmark runs (at a tiny size): both decoders on the same file, its table written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_dmr_bench_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "dmr.md"
    proc = subprocess.run([sys.executable, "-m", "bench.dmr_bench", "--calls", "2", "--cnr", "99,12", "--no-talk-off",
                           "--no-speed", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = out.read_text().splitlines()
    assert rows[0].startswith("| C/N (12.5 kHz) | pttbridge: calls |")
    clean = rows[2].split("|")
    assert clean[1].strip() == "clean" and clean[2].strip() == "2/2" and clean[3].strip() == "0"
    if shutil.which("dsdccx"):
        assert clean[4].strip() == "2/2"  # dsdcc reads this project's signals the same way
