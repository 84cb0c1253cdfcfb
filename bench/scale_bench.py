"""Scale-out benchmark: 1, 2 and 3 bridge processes sharing the gateways' events ($share, MQTT 5) into one
PostgreSQL, under the load generator (bench/loadgen.py): hundreds of gateways, thousands of units, position
beacons with alerts mixed in.

    python -m bench.scale_bench [--quick] [--bridges 1,2,3]

For each number of bridges: a fresh Mosquitto with the shipped configuration's tuning
(config/mosquitto.conf: queue limits lifted, no Nagle delay), a fresh database on one durable PostgreSQL
(fsync on), the bridges as ``pttbridge bridge -c FILE`` processes with ``shared_group``, and two runs of
the load generator (its own process):

- saturating: as fast as the generator goes; stored events/s is the number of events over the wall time
  from the first publish to the moment the last row is in the database (polled every 0.1 s);
- paced at ``--rate`` (below what one bridge stores), for the alert latency a dispatcher sees.

Alert latency is from the generator's publish of the alert to the arrival of its ``bridge/incident/{id}``
message at a subscriber (published by the bridge after the commit), p50 and p99 over every alert; beside
it, the same from the publish to the broker's delivery of the alert itself to a bystander subscriber, the
part the bridge has no say in. Each run
checks exactly-once: rows = events sent, no duplicate id, every gateway's seq complete, no event rejected
or lost. Prints a table and writes bench/out/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import Mosquitto, Postgres, create_database, free_port, wait_until  # noqa: E402

from bridge.models import EventRow, GatewayRow  # noqa: E402
from bridge.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out"
PREFIX = "pttbridge/v1"
_KEEP = re.compile(r"^(max_queued_messages|max_queued_bytes|max_inflight_messages|max_inflight_bytes)\b")


def broker_tuning() -> str:
    """The shipped mosquitto.conf's limits (its listener, persistence and paths are the test broker's own)."""
    lines = (ROOT / "config" / "mosquitto.conf").read_text().splitlines()
    return "\n".join(line for line in lines if _KEEP.match(line)) + "\n"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> dict[str, float]:
    """The unlabelled samples of a bridge's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split(" ")
            out[name] = float(value)
    return out


class IncidentWatch:
    """A console's view: when each alert's incident message arrived (by the alert's event id); and, to
    tell the broker's part from the bridge's, when the broker delivered each alert itself to a bystander."""

    def __init__(self, port: int) -> None:
        self.seen: dict[str, float] = {}
        self.delivered: dict[str, float] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"scale-watch-{port}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"{PREFIX}/bridge/incident/+", 1), (f"{PREFIX}/gw/+/event/alert", 1)])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        body = json.loads(msg.payload)
        with self._lock:
            if "/event/" in msg.topic:
                self.delivered.setdefault(body["id"], now)
                return
            for key in ("first_event_id", "last_event_id"):
                if body.get(key):
                    self.seen.setdefault(body[key], now)

    def arrival(self, event_id: str) -> float | None:
        with self._lock:
            return self.seen.get(event_id)

    def delivery(self, event_id: str) -> float | None:
        with self._lock:
            return self.delivered.get(event_id)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Run:
    sent: int
    alerts: int
    offered: float  # events/s the generator published
    stored_rate: float  # events/s, first publish -> last row stored
    p50_ms: float
    p99_ms: float
    broker_p50_ms: float  # of which: the generator's publish -> the broker's delivery to a bystander
    broker_p99_ms: float
    missing_alerts: int
    exactly_once: bool
    replayed: int  # events the simulated gateways sent again on cmd/replay
    notes: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def load(broker: Mosquitto, store: Store, watch: IncidentWatch, work: Path, name: str, *, count: int, rate: float,
         gateways: int, units: int, alert_fraction: float, duration: float) -> Run:
    alerts_file = work / f"alerts-{name}.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", "--broker", broker.url, "--gateways", str(gateways), "--units",
         str(units), "--rate", str(rate), "--count", str(count), "--duration", str(duration), "--alert-fraction",
         str(alert_fraction), "--name", name, "--alerts-out", str(alerts_file), "--drain", "600"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    like = EventRow.gateway.like(f"{name}-%")

    def stored() -> int:
        with store.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(EventRow).where(like)) or 0)

    # The count is not known until the generator stops (its duration may cut it short): poll meanwhile.
    last_seen, last_change = 0, time.time()
    while proc.poll() is None:
        time.sleep(0.1)
        n = stored()
        if n != last_seen:
            last_seen, last_change = n, time.time()
    out, _ = proc.communicate()
    report = json.loads(out)
    sent = report["sent"]
    deadline = time.time() + 600
    while last_seen < sent and time.time() < deadline:
        time.sleep(0.1)
        n = stored()
        if n != last_seen:
            last_seen, last_change = n, time.time()
    done_at = last_change
    notes = []
    if report["acknowledged"] != sent:
        notes.append(f"only {report['acknowledged']} of {sent} PUBACKs")
    # Exactly once: every event a row, no id twice, and (once the bridges have noticed that a hole they saw
    # was filled by a message that came out of order) every gateway's seq complete.
    def seqs() -> dict[str, int]:
        with store.engine.connect() as conn:
            return dict(conn.execute(select(GatewayRow.name, GatewayRow.contiguous_seq)
                                     .where(GatewayRow.name.like(f"{name}-%"))).all())

    try:
        wait_until(lambda: seqs() == report["per_gateway"], 20, "every gateway's seq complete")
        complete = True
    except AssertionError:
        complete = False
    with store.engine.connect() as conn:
        rows = int(conn.scalar(select(func.count()).select_from(EventRow).where(like)) or 0)
        ids = int(conn.scalar(select(func.count(func.distinct(EventRow.id))).where(like)) or 0)
    exactly = rows == sent and ids == sent and complete
    if not exactly:
        notes.append(f"rows {rows}, distinct ids {ids}, of {sent} sent; seq complete: {complete}")
    alerts = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    if alerts:
        wait_until(lambda: all(watch.arrival(a["id"]) is not None for a in alerts), 30, "every alert's incident")
    delays = [(t - a["published"]) * 1000 for a in alerts if (t := watch.arrival(a["id"])) is not None]
    at_broker = [(t - a["published"]) * 1000 for a in alerts if (t := watch.delivery(a["id"])) is not None]
    return Run(sent=sent, alerts=len(alerts), offered=report["offered_rate"],
               stored_rate=sent / (done_at - report["first_publish"]),
               p50_ms=statistics.median(delays) if delays else float("nan"),
               p99_ms=percentile(delays, 0.99) if delays else float("nan"),
               broker_p50_ms=statistics.median(at_broker) if at_broker else float("nan"),
               broker_p99_ms=percentile(at_broker, 0.99) if at_broker else float("nan"),
               missing_alerts=len(alerts) - len(delays), exactly_once=exactly, replayed=report["replayed"],
               notes=notes)


def with_bridges(k: int, pg: Postgres, work: Path, args: argparse.Namespace) -> tuple[Run, Run, dict[str, Any]]:
    broker = Mosquitto(work, broker_tuning() + args.broker_conf.replace("\\n", "\n"), persistent=False)
    broker.start()
    url = create_database(pg.url(), f"scale{k}")
    Store.open(url).close()  # migrations once, before the bridges (which then find the schema current)
    store = Store.open(url, migrate_schema=False)
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port() for _ in range(k)]
    watch = IncidentWatch(broker.port)
    try:
        for i, port in enumerate(ports):
            cfg = work / f"bridge-{k}-{i}.toml"
            cfg.write_text(f'data_dir = "{work / "data"}"\n[mqtt]\nurl = "{broker.url}"\n[bridge]\nname = "scale{i}"\n'
                           f'database_url = "{url}"\nmqtt_version = "5"\nshared_group = "scale"\n'
                           f'metrics = "127.0.0.1:{port}"\n')
            log = (work / f"bridge-{k}-{i}.log").open("ab")
            procs.append(subprocess.Popen([sys.executable, "-m", "pttbridge", "-q", "bridge", "-c", str(cfg)],
                                          cwd=ROOT, stdout=log, stderr=log))

        def connected() -> bool:
            try:
                return all(scrape(p).get("pttbridge_bridge_connected") == 1 for p in ports)
            except OSError:
                return False

        wait_until(connected, 60, f"{k} bridges to connect")
        time.sleep(1.0)  # their SUBSCRIBEs answered
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        before = [scrape(p) for p in ports]
        common = {"gateways": args.gateways, "units": args.units, "alert_fraction": args.alert_fraction}
        print(f"... {k} bridge(s): saturating, {args.count:,} events", file=sys.stderr, flush=True)
        fast = load(broker, store, watch, work, f"f{k}", count=args.count, rate=0, duration=600, **common)
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        after = [scrape(p) for p in ports]
        print(f"... {k} bridge(s): {args.rate:,.0f} events/s for {args.paced_s:.0f} s", file=sys.stderr, flush=True)
        paced = load(broker, store, watch, work, f"p{k}", count=int(args.rate * args.paced_s), rate=args.rate,
                     duration=args.paced_s + 30, **common)
        metrics = [scrape(p) for p in ports]
        info = {
            "split": [int(m["pttbridge_bridge_events_stored_total"]) for m in metrics],
            "duplicates": sum(int(m["pttbridge_bridge_events_duplicate_total"]) for m in metrics),
            "rejected_or_lost": sum(int(m["pttbridge_bridge_events_rejected_total"]
                                        + m["pttbridge_bridge_events_lost_total"]) for m in metrics),
            "gaps": sum(int(m["pttbridge_bridge_gaps_total"]) for m in metrics),
            "replays": sum(int(m["pttbridge_bridge_replay_requests_total"]) for m in metrics),
            # Of the saturating run: the paced run's batches are as small as its trickle.
            "batch_mean": _grown(before, after, "pttbridge_bridge_batch_size_events_sum")
            / max(1, _grown(before, after, "pttbridge_bridge_batch_size_events_count")),
            "commit_ms_mean": 1000 * _grown(before, after, "pttbridge_bridge_store_duration_seconds_sum")
            / max(1, _grown(before, after, "pttbridge_bridge_store_duration_seconds_count")),
            "cpu_per_1000": sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / fast.sent * 1000,
        }
        return fast, paced, info
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        watch.close()
        store.close()
        broker.stop()


def _grown(before: list[dict[str, float]], after: list[dict[str, float]], name: str) -> float:
    """How much a counter of the bridges' metrics grew between two scrapes, all bridges together."""
    return sum(b.get(name, 0.0) - a.get(name, 0.0) for a, b in zip(before, after, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--out", type=Path, default=OUT / "scale.md", help="the table's file (default %(default)s)")
    ap.add_argument("--bridges", default="1,2,3", help="bridge counts to run (default %(default)s)")
    ap.add_argument("--gateways", type=int, default=200, help="simulated gateways (default %(default)s)")
    ap.add_argument("--units", type=int, default=5000, help="units (default %(default)s)")
    ap.add_argument("--count", type=int, default=30_000, help="events of the saturating run (default %(default)s)")
    ap.add_argument("--rate", type=float, default=500.0, help="events/s of the paced run (default %(default)s)")
    ap.add_argument("--paced-s", type=float, default=20.0, help="seconds of the paced run (default %(default)s)")
    ap.add_argument("--broker-conf", default="", help="mosquitto.conf lines added to the shipped tuning, "
                    "separated by \\n (e.g. 'max_inflight_messages 0'), to try a broker setting")
    ap.add_argument("--alert-fraction", type=float, default=0.01, help="alerts among the events (default %(default)s)")
    args = ap.parse_args()
    if args.quick:
        args.count, args.paced_s, args.gateways, args.units = 3000, 5.0, 50, 1000
    counts = [int(x) for x in args.bridges.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pg = Postgres(durable=True)
        pg.start()
        try:
            for k in counts:
                results.append((k, *with_bridges(k, pg, work, args)))
        finally:
            pg.stop()
    load_avg = os.getloadavg()
    lines = [
        f"{args.gateways} gateways, {args.units:,} units, {args.alert_fraction:.0%} alerts among position beacons; "
        f"saturating runs of {args.count:,} events, paced runs at {args.rate:,.0f} events/s for {args.paced_s:.0f} s. "
        f"PostgreSQL {pg.bindir.parent.name} (fsync on) and Mosquitto on the same {os.cpu_count()}-core machine as "
        f"the bridges and the generator; load average after the run {load_avg[0]:.1f}.",
        "Alert latency: the generator's publish -> the bridge's `bridge/incident/{id}` message at a subscriber "
        "(after the commit); in brackets, the part before the broker delivered the alert itself to a bystander "
        "subscriber (the generator's sockets and the broker).",
        "",
        "| bridges | stored events/s (saturating) | alert p50 / p99 at saturation | "
        f"alert p50 / p99 at {args.rate:,.0f} events/s | events stored by each | exactly once | "
        "bridge CPU s per 1,000 events | mean batch, transaction |",
        "| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for k, fast, paced, info in results:
        once = fast.exactly_once and paced.exactly_once and info["rejected_or_lost"] == 0 \
            and not fast.missing_alerts and not paced.missing_alerts
        verdict = f"yes ({info['duplicates']} duplicates refused; {info['gaps']:,} holes seen, " \
            f"{info['replays']:,} replay requests, {fast.replayed + paced.replayed:,} events replayed)" if once else \
            "NO: " + "; ".join(fast.notes + paced.notes)
        lines.append(
            f"| {k} | {fast.stored_rate:,.0f} (offered {fast.offered:,.0f}) | "
            f"{fast.p50_ms:,.0f} / {fast.p99_ms:,.0f} ms ({fast.broker_p50_ms:,.0f} / {fast.broker_p99_ms:,.0f}) | "
            f"{paced.p50_ms:,.0f} / {paced.p99_ms:,.0f} ms ({paced.broker_p50_ms:,.0f} / {paced.broker_p99_ms:,.0f}) | "
            f"{' + '.join(f'{n:,}' for n in info['split'])} | "
            f"{verdict} | {info['cpu_per_1000']:.3f} | {info['batch_mean']:.0f} events, "
            f"{info['commit_ms_mean']:.0f} ms |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
