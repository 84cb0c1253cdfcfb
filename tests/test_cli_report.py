"""`pttbridge report` as a supervisor meets it: the table, --json, --csv, every --by, a new user's first run
with nothing stored yet, and bad input (a --since it cannot read, an unknown --by, a database it cannot
open), each refused with a message that names what is wrong."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from report_cases import build_site

from bridge.store import Store

ROOT = Path(__file__).parents[1]


def run(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PTTBRIDGE_DATABASE_URL"}
    environ |= {"PYTHONPATH": str(ROOT), "PTTBRIDGE_DATA": str(data), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pttbridge", "report", *args], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder of the default configuration, its bridge.sqlite holding the hand-built cases."""
    folder = tmp_path_factory.mktemp("data")
    store = Store.open(f"sqlite:///{folder / 'bridge.sqlite'}")
    build_site(store, datetime.now(UTC))
    store.close()
    return folder


def test_help_explains_the_figures() -> None:
    out = subprocess.run([sys.executable, "-m", "pttbridge", "report", "--help"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=60)
    assert out.returncode == 0
    for words in ("--since", "--by", "kind,department,unit,camera,day", "--json", "--csv", "90th percentile",
                  "accept_s", "valid-case rate", "pttbridge up"):
        assert words in " ".join(out.stdout.split()), words


def test_a_new_user_with_nothing_stored_gets_an_empty_table(tmp_path: Path) -> None:
    out = run(data=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Cases by kind" in out.stdout and "valid-case rate" in out.stdout
    assert f"no cases yet: {tmp_path / 'bridge.sqlite'} does not exist" in out.stderr
    assert not (tmp_path / "bridge.sqlite").exists()  # reading leaves nothing behind
    assert "alembic" not in out.stderr


def test_after_pttbridge_up_the_demo_case_is_reported(tmp_path: Path) -> None:
    """A new user's first evening: `pttbridge up` (its demo case: a camera's street stall, sent to an officer's
    radio, answered, verified), then `pttbridge report` with no options, reading the same database."""
    environ = {k: v for k, v in os.environ.items() if k != "PTTBRIDGE_DATABASE_URL"}
    environ |= {"PYTHONPATH": str(ROOT), "PTTBRIDGE_DATA": str(tmp_path)}
    up = subprocess.Popen([sys.executable, "-m", "pttbridge", "up", "--headless", "--speed", "4"], cwd=ROOT,
                          env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            out = run("--json", data=tmp_path)
            report = json.loads(out.stdout) if out.returncode == 0 and out.stdout else {}
            if any(g["key"] == "street_stall" and g["handled"] for g in report.get("groups", [])) \
                    and report["verified"]["total"]["valid"]:
                break
        else:
            raise AssertionError(f"the demo's case never reached the report: {report}")
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(60)
    [stall] = [g for g in report["groups"] if g["key"] == "street_stall"]
    assert stall["opened"] == stall["accepted"] == stall["arrived"] == stall["handled"] == 1
    assert stall["accept"]["within_share"] == 1.0 and stall["accept"]["median_s"] > 0
    assert [v["key"] for v in report["verified"]["categories"]] == ["street_stall"]
    table = run(data=tmp_path)
    assert table.returncode == 0 and "street_stall" in table.stdout and "Cases by kind" in table.stdout


def test_the_table_by_kind(data: Path) -> None:
    out = run(data=data)
    assert out.returncode == 0, out.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.stdout.splitlines() if line.startswith("│")}
    # opened, accepted, arrived, handled, to accept p50 / p90, in accept_s, ...
    assert rows["street_stall"][:6] == ["5", "3", "2", "2", "3m20s/6m00s", "40%"]
    assert rows["noise"][:6] == ["4", "3", "2", "2", "1m40s/2m44s", "67%"]
    assert rows["all"][0] == "9"
    assert rows["category street_stall"] == ["2", "1", "67%", "1"]
    assert rows["camera dome-3"] == ["1", "1", "50%", "0"]
    assert "not timed: 2 incidents of a kind with no [case_kinds] entry (alert 2)" in " ".join(out.stdout.split())


@pytest.mark.parametrize(("by", "keys"), [
    ("kind", {"noise", "street_stall"}),
    ("department", {"police", "urban-management"}),
    ("unit", {"", "mdc:200", "mdc:201", "mdc:202", "mdc:209", "fleetsync:100-1001"}),
    ("camera", {"", "dome-3", "cam-9"}),
])
def test_json_by_each_grouping(data: Path, by: str, keys: set[str]) -> None:
    out = run("--by", by, "--json", data=data)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["by"] == by
    assert {g["key"] for g in report["groups"]} == keys
    assert sum(g["opened"] for g in report["groups"]) == report["total"]["opened"] == 9
    assert report["total"]["overdue_now"] >= 3
    assert report["verified"]["total"]["valid_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["untimed"] == {"alert": 2}


def test_csv_by_day(data: Path) -> None:
    out = run("--by", "day", "--csv", "--since", "3d", data=data)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["by"] for r in rows[:-1]] == ["day"] * (len(rows) - 1) and rows[-1]["by"] == "all"
    assert len(rows) >= 1 + 4 + 1  # the old overdue part's day, every day of the window, all
    assert sum(int(r["opened"]) for r in rows[:-1]) == int(rows[-1]["opened"]) == 9
    assert rows[-1]["accept_median_s"] == "140.0" and rows[-1]["accept_within_share"] == "0.5"
    assert rows[-1]["valid_rate"] == "0.6667"


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last tuesday"], "--since: expected a time ago (30m, 2h, 7d) or an ISO time"),
    (["--since", "2999-01-01"], "--since: '2999-01-01' is in the future"),
    (["--since", "99999999999999d"], "--since: '99999999999999d' is further back than the calendar goes"),
    (["--by", "shift"], "argument --by: invalid choice: 'shift'"),
    (["--json", "--csv"], "argument --csv: not allowed with argument --json"),
])
def test_bad_options_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    out = run(*args, data=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert out.stdout == ""


def test_a_database_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    (tmp_path / "bridge.sqlite").write_bytes(b"this is not a database" * 100)
    out = run(data=tmp_path)
    assert out.returncode == 1
    assert f"database sqlite:///{tmp_path / 'bridge.sqlite'}" in out.stderr
    assert "data_dir" in out.stderr and "file is not a database" in out.stderr
    config = tmp_path / "center.toml"
    config.write_text('[bridge]\ndatabase_url = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n')
    out = run("-c", str(config), data=tmp_path)
    assert out.returncode == 1
    assert f"{config}: bridge.database_url" in out.stderr and "127.0.0.1" in out.stderr
    out = run(data=tmp_path, env={"PTTBRIDGE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    assert "(PTTBRIDGE_DATABASE_URL)" in out.stderr
    (tmp_path / "broken.toml").write_text("[bridge]\ndatabase_url = 5\n")
    out = run("-c", str(tmp_path / "broken.toml"), data=tmp_path)
    assert out.returncode == 1 and "configuration error" in out.stderr and "bridge.database_url" in out.stderr
