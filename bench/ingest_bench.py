"""The bridge's own cost per event, without MQTT: ``BridgeCore.handle`` fed batches in process.

    python -m bench.ingest_bench [--quick] [--batch 25,100] [--profile FILE]

A stream of the scale bench's shape (as the load generator's: 200 gateways, 5,000 units wandering a city, 1
alert in 100; here each alert comes from a unit drawn at random, so some join an open incident, and the events
are 1 ms apart on a timeline of their own) encoded as gateways publish it, handed to a started ``Bridge``'s
core in batches of the size given, as the ingest thread would (alerts in batches of their own), on a durable
PostgreSQL (fsync on) or on SQLite. What the core decides to publish is published on the bridge's own
connection (unit states, incidents); acknowledgements are left out (these messages never came from the
broker). Reported: the ingest thread's CPU per event (``time.thread_time``) and the wall time per event, so
that what the bridge spends is told apart from what it waits for the database. ``--profile FILE`` writes
cProfile stats of the largest batch size's run, to read with ``python -m pstats FILE``.
"""

from __future__ import annotations

import argparse
import cProfile
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import func, select  # noqa: E402
from support import Mosquitto, Postgres, create_database, wait_until  # noqa: E402

from bridge.actions import ALERTS, BULK, AckMessages, Inbound  # noqa: E402
from bridge.core import Batch  # noqa: E402
from bridge.models import EventRow  # noqa: E402
from bridge.service import Bridge  # noqa: E402
from config.schema import parse_config  # noqa: E402
from gateway.events import Event, Kind, Position, encode_event, uuid7  # noqa: E402

PREFIX = "pttbridge/v1"
OUT = ROOT / "bench" / "out"
WARM_UP = 500


def stream(n: int, gateways: int, units: int, seed: int = 1, name: str = "gw") -> list[Inbound]:
    """``n`` events of the load generator's shape, already received: beacons, 1 in 100 an alert."""
    rng = random.Random(seed)
    seqs = [0] * gateways
    where = [(rng.uniform(30.2, 30.35), rng.uniform(120.05, 120.25)) for _ in range(units)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=n // 1000 + 60)
    out = []
    for i in range(n):
        u = rng.randrange(units)
        g = u % gateways
        alert = i % 100 == 99
        lat, lon = where[u]
        where[u] = (lat + rng.uniform(-1e-4, 1e-4), lon + rng.uniform(-1e-4, 1e-4))
        at = start + timedelta(milliseconds=i)
        seqs[g] += 1
        kind = Kind.ALERT if alert else Kind.BEACON
        detail = {"protocol": "kenwood", "status": "emergency", "rule": "emergency"} if alert \
            else {"protocol": "kenwood", "sentence": "PKLSH"}
        position = Position(round(where[u][0], 6), round(where[u][1], 6), speed_mps=5.0, course_deg=90.0,
                            fix_time=at, source="kenwood")
        e = Event(id=uuid7(at), seq=seqs[g], gateway=f"{name}{g:03d}", channel="patrol-1", kind=kind, time=at,
                  unit=f"kenwood:{1000 + u}", position=position, detail=detail)
        levels = ("gw", e.gateway, "event", str(kind))
        out.append(Inbound(f"{PREFIX}/{'/'.join(levels)}", encode_event(e), i + 1, 1, 0,
                           ALERTS if alert else BULK, levels))
    return out


def run(bridge: Bridge, messages: list[Inbound], batch: int,
        profile: cProfile.Profile | None) -> tuple[float, float, float]:
    """(CPU ms, wall ms) per event of handling ``messages`` in batches of ``batch``, and the CPU ms of an
    alert's batch."""
    core = bridge.core
    assert core is not None
    alerts = [m for m in messages if m.lane == ALERTS]
    bulk = [m for m in messages if m.lane == BULK]
    batches = [bulk[i:i + batch] for i in range(0, len(bulk), batch)]
    # An alert is handled as soon as it comes, in a batch of its own, between batches of beacons.
    every = max(1, len(batches) // max(1, len(alerts)))
    order: list[list[Inbound]] = []
    for i, beacons in enumerate(batches):
        order.append(beacons)
        if i % every == every - 1 and alerts:
            order.append([alerts.pop()])
    order += [[a] for a in alerts]
    cpu, wall = time.thread_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    alert_cpu: list[float] = []
    for taken in order:
        began = time.thread_time()
        handled = Batch(taken)
        core.handle(handled, time.monotonic())
        bridge._execute(a for a in handled.take() if not isinstance(a, AckMessages))
        if taken[0].lane == ALERTS:
            alert_cpu.append(time.thread_time() - began)
    if profile is not None:
        profile.disable()
    n = sum(map(len, order))
    per_alert = sum(alert_cpu) * 1000 / max(1, len(alert_cpu))
    return (time.thread_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n, per_alert


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--events", type=int, default=20_000, help="events per batch size (default 20000)")
    ap.add_argument("--batch", default="25,100", help="batch sizes of beacons to try (default 25,100)")
    ap.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--units", type=int, default=5000)
    ap.add_argument("--profile", type=Path, help="cProfile stats of the last batch size's run into this file")
    ap.add_argument("--out", type=Path, default=OUT / "ingest.md", help="the table's file (default %(default)s)")
    args = ap.parse_args()
    n = 1000 if args.quick else args.events
    sizes = [int(x) for x in args.batch.split(",")]
    work = Path(tempfile.mkdtemp(prefix="pttbridge-ingest-"))
    broker = Mosquitto(work)
    broker.start()
    pg = Postgres(durable=True) if args.database == "postgresql" else None
    if pg is not None:
        pg.start()
    try:
        lines = [f"{args.database}, {args.gateways} gateways, {args.units} units, {n} events per batch size "
                 "(CPU: the thread's time handling them)", "",
                 "| beacons per batch | events stored | CPU per event | wall per event | CPU per alert |",
                 "| ---: | ---: | ---: | ---: | ---: |"]
        print(*lines, sep="\n", flush=True)
        for k, size in enumerate(sizes):
            url = create_database(pg.url(), f"ingest{k}") if pg is not None else f"sqlite:///{work}/ingest{k}.db"
            cfg = parse_config({"data_dir": str(work / f"data{k}"), "mqtt": {"url": broker.url},
                                "bridge": {"name": f"ingest-{uuid.uuid4().hex[:6]}", "database_url": url}})
            bridge = Bridge(cfg)
            bridge.start()
            try:
                wait_until(partial(getattr, bridge, "connected"), 10, "bridge to connect")
                # A warm-up of the same shape (gateways of its own), then the measured stream.
                run(bridge, stream(WARM_UP, 5, 50, seed=k + 100, name="warm"), size, None)
                profile = cProfile.Profile(time.thread_time) if args.profile and k == len(sizes) - 1 else None
                cpu, wall, alert = run(bridge, stream(n, args.gateways, args.units, seed=k), size, profile)
                if profile is not None:
                    profile.dump_stats(args.profile)
                assert bridge.store is not None
                with bridge.store.engine.connect() as c:
                    stored = (c.scalar(select(func.count()).select_from(EventRow)) or 0) - WARM_UP
            finally:
                bridge.stop()
            lines.append(f"| {size} | {stored:,} of {n:,} | {cpu:.3f} ms | {wall:.3f} ms | {alert:.2f} ms |")
            print(lines[-1], flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    finally:
        if pg is not None:
            pg.stop()
        broker.stop()


if __name__ == "__main__":
    main()
