"""The report benchmark runs (small): a year of cases made inside SQLite and PostgreSQL alike, every report
checked equal on both by the benchmark itself before it is timed, its table written. Not a timing test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_report_bench_checks_both_databases_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    proc = subprocess.run([sys.executable, "-m", "bench.report_bench", "--small", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr  # it exits with an error when SQLite and PostgreSQL disagree
    rows = out.read_text().splitlines()
    assert rows[0].startswith("20,000 cases over a year (") and "Every report equal on both databases." in rows[0]
    assert rows[2] == "| --since | --by | SQLite (WAL) | PostgreSQL (local) |"
    assert [tuple(c.strip() for c in row.split("|")[1:3]) for row in rows[4:]] == [
        (window, by) for window in ("7d", "30d", "365d") for by in ("kind", "department", "unit", "camera", "day")]
