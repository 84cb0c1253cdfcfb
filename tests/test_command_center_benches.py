"""The command centre's speed benches run (small, once, so that they cannot rot): the bridge beside a bare
paho subscriber, the scale bench with many gateways, the console under load. No timing is asserted; what
each says it measured is: events stored, every one exactly once, messages seen on the console."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.mosquitto,
              pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")]


def bench(tmp_path: Path, name: str, *options: str) -> list[list[str]]:
    """Run ``bench.NAME --out FILE OPTIONS``; the rows of its Markdown table, cell by cell."""
    out = tmp_path / f"{name}.md"
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--out", str(out), *options], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [[c.strip() for c in line.split("|")[1:-1]] for line in out.read_text().splitlines()
            if line.startswith("|") and not line.startswith("| ---")]


def test_the_bridge_bench_stores_the_stream_beside_a_bare_subscriber(tmp_path: Path) -> None:
    rows = {r[0]: r[1:] for r in bench(tmp_path, "bridge_bench", "--quick")}
    for what in ("bridge ingest, SQLite (WAL, synchronous=FULL)", "bridge ingest, PostgreSQL 15 (local, fsync on)",
                 "2 bridge processes, one shared subscription ($share, MQTT 5), PostgreSQL"):
        stored = re.fullmatch(r"([\d,]+) events/s, (\d+)% of raw \(runs: ([\d,]+) \((\d+)%\)\)", rows[what][0])
        assert stored is not None and int(stored[1].replace(",", "")) > 0, rows[what]
        assert stored[1] == stored[3] and stored[2] == stored[4], rows[what]  # one round: its run is the median
    assert re.fullmatch(r"bare paho QoS 1 subscriber: ([\d,]+) msg/s \(runs: \1\)",
                        rows["bridge ingest, SQLite (WAL, synchronous=FULL)"][1])
    assert re.fullmatch(r"p50 \d+ ms, p99 \d+ ms", rows["emergency frame on pty -> row in the console"][0])


def test_the_scale_bench_stores_every_event_exactly_once(tmp_path: Path) -> None:
    [header, row] = bench(tmp_path, "scale_bench", "--quick", "--bridges", "1")
    cells = dict(zip(header, row, strict=True))
    assert cells["bridges"] == "1"
    assert cells["exactly once"].startswith("yes")
    assert int(cells["events stored by each"].replace(",", "")) == 3000 + 500 * 5  # saturating + paced runs
    assert float(cells["bridge CPU s per 1,000 events"]) > 0


def test_the_console_bench_sees_the_load_and_times_keys(tmp_path: Path) -> None:
    rows = {r[0]: r[1:] for r in bench(tmp_path, "console_bench", "--quick")}
    received, sent = (int(n.replace(",", "")) for n in rows["messages received / published"][0].split(" / "))
    assert 0 < received <= sent
    assert rows["messages received / published"][1] == "1,000 units in the table"
    assert re.fullmatch(r"p50 \d+ ms, p99 \d+ ms", rows["input latency (key -> frame with its effect, 1/s)"][0])


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_ingest_bench_stores_what_it_hands_the_core(tmp_path: Path, database: str) -> None:
    [header, *rows] = bench(tmp_path, "ingest_bench", "--quick", "--database", database)
    assert header == ["beacons per batch", "events stored", "CPU per event", "wall per event", "CPU per alert"]
    assert [r[0] for r in rows] == ["25", "100"]
    for row in rows:
        assert row[1] == "1,000 of 1,000"
        assert float(row[2].removesuffix(" ms")) > 0
        assert float(row[4].removesuffix(" ms")) > 0
