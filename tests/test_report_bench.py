"""The report benchmark runs (small): a year of cases made inside SQLite and PostgreSQL alike, every report
checked equal on both and to the live reading by the benchmark itself before it is timed, its table written,
the write cost of the summaries' triggers measured. Not a timing test."""

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
    assert rows[0].startswith("20,000 cases over a year (")
    assert "Every report equal on both databases and to the live one." in rows[0]
    assert rows[2] == "| --since | --by | SQLite (WAL) | SQLite live | PostgreSQL (local) | PostgreSQL live |"
    assert rows[-1].startswith("Single-part update of a running part") and "PostgreSQL" in rows[-1]
    assert [tuple(c.strip() for c in row.split("|")[1:3]) for row in rows[4:-2]] == [
        (window, by) for window in ("7d", "30d", "365d") for by in ("kind", "department", "unit", "camera", "day")]
