"""Report benchmark: `pttbridge report` over a year of cases, on SQLite and on PostgreSQL.

    python -m bench.report_bench [--cases 1000000] [--runs 5] [--small] [--out FILE]

The year: N cases opened evenly over 365 days (a few seconds of jitter each), 8 kinds, 4 of them found
by 50 cameras (verdict valid 70 %, false detection 20 %, not given 10 %); each case one department's part
(of 5), 3 in 10 a second, assisting; 200 units; accepted 20 s to 7 min after opening, there 1 to 16 min
later, handled 5 to 55 min after that; 3 % of the parts never accepted, 5 % stopped after accepting, 7 %
after arriving (closed with their case); the cases of the last two hours still running. Limits 5, 15 and
60 min, doubled or tripled for some kinds. The rows are made inside each database by one INSERT ... SELECT
over a row number, with the same integer hash in both, so both hold the very same year; the report of
each grouping is checked equal on both (to the millisecond) before anything is timed.

Timed: ``Store.case_report`` (every query of one report: the window's settled days from their
summaries, the rest of it read live, overdue now, the valid-case rates, counted and ranked) for --since
7d, 30d and 365d, grouped by kind, department, unit, camera and day, each ``--runs`` times (wall time, a
warm cache: the report a supervisor runs twice, the days already summarised); the median with the lowest
and the highest. Beside it, once each, the live reading (``live=True``: every part of the window from the
indexes, as before the summaries), which each summarised report is checked equal to; and the first
report of the year, which summarises its 365 days. Last, the cost of the summaries to the case loop's
writes: single-part updates of running parts, each its own transaction, with the triggers that forget a
changed day and without them (dropped for this, then made again), in three turns. PostgreSQL runs on this
machine (the tests' server, fsync on). Writes bench/out/report.md (or --out) and prints it.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import Engine, text  # noqa: E402
from support import Postgres, create_database  # noqa: E402

from bridge.report import BY, as_json  # noqa: E402
from bridge.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out"
YEAR_S = 365 * 86400
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(seconds=YEAR_S)
KINDS = ("street_stall", "illegal_parking", "litter", "obstruction", "noise", "alert", "fight", "lost_child")
CAMERA_KINDS = 4  # the first four are found by cameras
DEPARTMENTS = ("police", "urban-management", "sanitation", "traffic", "fire")
WINDOWS = (("7d", 7), ("30d", 30), ("365d", 365))


def _hash(salt: int) -> str:
    """A well-mixed 16-bit number from the row number ``i`` (Knuth's multiplicative hash, its high bits)."""
    return f"(((i * 2654435761 + {salt * 40503 + 12345}) % 4294967296) / 65536)"


def _pick(salt: int, names: tuple[str, ...], first: int = 0) -> str:
    h = _hash(salt)
    return "CASE " + " ".join(f"WHEN ({h} + {first}) % {len(names)} = {k} THEN '{n}'"
                              for k, n in enumerate(names)) + " END"


def fill(engine: Engine, n: int) -> None:
    """N cases and their parts, made by the database itself (the same rows on SQLite and PostgreSQL)."""
    pg = engine.dialect.name == "postgresql"
    epoch = int(START.timestamp())

    def ts(seconds: str) -> str:
        if pg:
            return f"to_timestamp({epoch} + ({seconds}))"
        return f"strftime('%Y-%m-%d %H:%M:%S', {epoch} + ({seconds}), 'unixepoch') || '.000000'"

    rows = f"generate_series(1::bigint, {n}) AS g(i)" if pg else "seq"
    with_seq = "" if pg else f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) "
    opened = f"(i * {YEAR_S} / {n} - {_hash(1)} % 60)"
    camera_case = f"({_hash(2)} % {len(KINDS)} < {CAMERA_KINDS})"
    verdict = (f"CASE WHEN NOT {camera_case} THEN NULL WHEN {_hash(3)} % 10 < 7 THEN 'valid' "
               f"WHEN {_hash(3)} % 10 < 9 THEN 'false_detection' END")
    running = f"({opened} > {YEAR_S - 7200})"
    incidents = (
        f"{with_seq}SELECT i, NULL, 'camera', 'cam', CASE WHEN {running} THEN 'acknowledged' ELSE 'resolved' END, "
        f"{ts(opened)}, 'e' || i, 'e' || i, {ts(opened)}, 1, {ts(opened)}, {_pick(2, KINDS)}, "
        f"CASE WHEN {camera_case} THEN 'camera' ELSE 'dispatcher' END, 'lead', "
        f"CASE WHEN {camera_case} THEN 'cam-' || ({_hash(4)} % 50) END, {verdict} FROM {rows}")
    with engine.begin() as c:
        c.execute(text("INSERT INTO incidents (id, unit, gateway, channel, state, opened_at, first_event_id, "
                       "last_event_id, last_alert_at, alert_count, updated_at, category, source, flow, camera, "
                       f"verdict) {incidents}"))
    for second in (False, True):
        k = 10 if second else 0  # the assisting part's own hashes
        accept = f"(20 + {_hash(11 + k)} % 400)"
        arrive = f"({accept} + 60 + {_hash(12 + k)} % 900)"
        handle = f"({arrive} + 300 + {_hash(13 + k)} % 3000)"
        reach = f"({_hash(14 + k)} % 100)"  # <3 never accepted, <8 accepted only, <15 arrived only, else handled
        scale = f"(1 + {_hash(2)} % {len(KINDS)} % 3)"  # some kinds have longer limits
        state = (f"CASE WHEN {running} THEN CASE WHEN {reach} < 3 THEN 'dispatched' WHEN {reach} < 8 THEN "
                 f"'accepted' WHEN {reach} < 15 THEN 'arrived' ELSE 'handled' END WHEN {reach} < 15 THEN 'closed' "
                 "ELSE 'handled' END")

        def step(offset: str, reached: int, k_: str = reach) -> str:
            return f"CASE WHEN {k_} >= {reached} THEN {ts(f'{opened} + {offset}')} END"

        parts = (
            f"{with_seq}SELECT i, {_pick(2, KINDS)}, {_pick(5, DEPARTMENTS, 1 if second else 0)}, "
            f"'{'assist' if second else 'lead'}', {state}, 'mdc:' || (2000 + {_hash(6 + k)} % 200), {ts(opened)}, "
            f"{step(accept, 3)}, {step(arrive, 8)}, {step(handle, 15)}, "
            f"{ts(f'{opened} + 300 * {scale}')}, {ts(f'{opened} + 900 * {scale}')}, "
            f"{ts(f'{opened} + 3600 * {scale}')}, "
            f"CASE WHEN {reach} >= 15 THEN {ts(f'{opened} + {handle}')} ELSE {ts(f'{opened} + 5000')} END "
            f"FROM {rows}" + (f" WHERE {_hash(7)} % 10 < 3" if second else ""))
        with engine.begin() as c:
            c.execute(text("INSERT INTO case_parts (case_id, kind, department, role, state, unit, opened_at, "
                           "accepted_at, arrived_at, handled_at, accept_due, arrive_due, resolve_due, updated_at) "
                           f"{parts}"))
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
        if pg:
            c.execute(text("SELECT setval('incidents_id_seq', (SELECT max(id) FROM incidents))"))


def timed(store: Store, since: datetime, by: str, runs: int, live: bool = False) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        store.case_report(since, by, END, live=live)
        out.append(time.perf_counter() - t)
    return out


def part_triggers(dialect: str) -> tuple[list[str], list[str]]:
    """How to drop and to create again the triggers on case_parts that forget a changed day (migration 0011)."""
    migration = importlib.import_module("bridge.migrations.versions.0011_report_days")
    create = [q for q in (migration._postgresql() if dialect == "postgresql" else migration._sqlite())
              if q.startswith("CREATE TRIGGER") and " ON case_parts " in q]
    drop = [f"DROP TRIGGER {q.split()[2]}" + (" ON case_parts" if dialect == "postgresql" else "") for q in create]
    return drop, create


def writes(store: Store, n: int) -> tuple[float, float]:
    """Milliseconds per single-part update of a running part (one transaction each, as the case loop
    writes), median over ``n`` with the triggers and ``n`` without, three turns of each."""
    engine = store.engine.execution_options(pttbridge_write=True)  # SQLite: BEGIN IMMEDIATE, as the store writes
    with engine.connect() as c:
        ids = list(c.execute(text("SELECT id FROM case_parts WHERE state IN ('new', 'dispatched', 'accepted', "
                                  "'arrived') ORDER BY id LIMIT 50")).scalars())

    def run(count: int) -> list[float]:
        times = []
        for i in range(count):
            t = time.perf_counter()
            with engine.begin() as c:
                c.execute(text("UPDATE case_parts SET updated_at = updated_at, escalated = :e WHERE id = :id"),
                          {"e": f"accept{i % 2}", "id": ids[i % len(ids)]})
            times.append(time.perf_counter() - t)
        return times

    drop, create = part_triggers(engine.dialect.name)
    with_triggers: list[float] = []
    without: list[float] = []
    for _ in range(3):  # in turns, so that a passing load (autovacuum after the fill) weighs on both alike
        with_triggers += run(n // 3)
        with engine.begin() as c:
            for q in drop:
                c.execute(text(q))
        without += run(n // 3)
        with engine.begin() as c:
            for q in create:
                c.execute(text(q))
    return statistics.median(with_triggers) * 1000, statistics.median(without) * 1000


def cell(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    if len(ms) == 1:
        return f"{ms[0]:.0f} ms"
    return f"{statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1_000_000, help="cases in the year (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each report (default 5)")
    ap.add_argument("--small", action="store_true", help="20,000 cases, one run each: a smoke run")
    ap.add_argument("--out", type=Path, default=OUT / "report.md", help="where the table goes")
    args = ap.parse_args()
    n, runs = (20_000, 1) if args.small else (args.cases, args.runs)
    results: dict[str, dict[tuple[str, str], list[float]]] = {}
    live: dict[str, dict[tuple[str, str], list[float]]] = {}
    stored: dict[str, tuple[int, float]] = {}
    first: dict[str, float] = {}
    written: dict[str, tuple[float, float]] = {}
    answers: dict[str, dict[tuple[str, str], object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pg = Postgres(durable=True)
        pg.start()
        try:
            for name, url in (("SQLite", f"sqlite:///{Path(tmp) / 'report.sqlite'}"),
                              ("PostgreSQL", create_database(pg.url(), "report_bench"))):
                store = Store.open(url, clock=lambda: END)
                try:
                    print(f"... {name}: filling {n:,} cases", file=sys.stderr, flush=True)
                    t = time.perf_counter()
                    fill(store.engine, n)
                    with store.engine.connect() as c:
                        parts = int(c.execute(text("SELECT count(*) FROM case_parts")).scalar_one())
                    stored[name] = (parts, time.perf_counter() - t)
                    first[name] = timed(store, END - timedelta(days=365), "kind", 1)[0]  # summarises the year
                    print(f"    first 365d report: {first[name] * 1000:.0f} ms", file=sys.stderr, flush=True)
                    answers[name] = {}
                    results[name] = {}
                    live[name] = {}
                    for window, days in WINDOWS:
                        for by in BY:
                            since = END - timedelta(days=days)
                            answers[name][window, by] = as_json(store.case_report(since, by, END))
                            t = time.perf_counter()
                            reference = as_json(store.case_report(since, by, END, live=True))
                            live[name][window, by] = [time.perf_counter() - t]
                            if reference != answers[name][window, by]:
                                sys.exit(f"{name}: the summarised report of {window} by {by} is not the live one")
                            results[name][window, by] = timed(store, since, by, runs)
                            print(f"    {window} by {by}: {cell(results[name][window, by])}, live "
                                  f"{cell(live[name][window, by])}", file=sys.stderr, flush=True)
                    written[name] = writes(store, 50 if args.small else 500)
                finally:
                    store.close()
        finally:
            pg.stop()
    differ = [key for key in answers["SQLite"] if answers["SQLite"][key] != answers["PostgreSQL"][key]]
    if differ:
        sys.exit(f"SQLite and PostgreSQL disagree on {differ}")
    table = [f"{n:,} cases over a year ({stored['SQLite'][0]:,} department parts); `Store.case_report`, wall time, "
             f"median of {runs} (lowest-highest), days summarised; live: every part read, one run; machine: "
             f"{platform.machine()}, 2 cores shared; filled in {stored['SQLite'][1]:.0f} s (SQLite) and "
             f"{stored['PostgreSQL'][1]:.0f} s (PostgreSQL); the first report of the year, summarising it: "
             f"{first['SQLite']:.1f} s (SQLite), {first['PostgreSQL']:.1f} s (PostgreSQL). Every report equal "
             "on both databases and to the live one.", "",
             "| --since | --by | SQLite (WAL) | SQLite live | PostgreSQL (local) | PostgreSQL live |",
             "| --- | --- | --- | --- | --- | --- |"]
    for window, _ in WINDOWS:
        for by in BY:
            table.append(f"| {window} | {by} | {cell(results['SQLite'][window, by])} | "
                         f"{cell(live['SQLite'][window, by])} | {cell(results['PostgreSQL'][window, by])} | "
                         f"{cell(live['PostgreSQL'][window, by])} |")
    table += ["", "Single-part update of a running part, one transaction each (median): "
              + "; ".join(f"{name} {w:.2f} ms with the triggers, {wo:.2f} ms without" for name, (w, wo)
                          in written.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
