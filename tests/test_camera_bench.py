"""The camera benchmark runs (at a tiny size): the index, both scans and the batch of moving units, every
answer checked against the scans by the benchmark itself, its table written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_camera_bench_checks_its_answers_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "cameras.md"
    proc = subprocess.run([sys.executable, "-m", "bench.camera_bench", "--cameras", "400", "--queries", "60",
                           "--units", "25", "--runs", "1", "--scan-queries", "20", "--python-queries", "5",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr  # it exits with an error when the index and a scan disagree
    rows = out.read_text().splitlines()
    assert rows[0] == "| what | index | numpy full scan | Python full scan | mean results |"
    assert [row.split("|")[1].strip() for row in rows[2:]] == [
        "`seeing()`, queries/s", "`near(500 m)`, queries/s",
        "re-correlate 25 moving units, ms: `move_units` + `seeing_many`",
        "the same, what was loaded at start frozen out of the collector (`gc.freeze()`)",
        "the same, unit by unit: `move_unit` + `seeing` each"]
