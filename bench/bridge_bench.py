"""Bridge benchmark: ingest rate (validate + store) on SQLite and PostgreSQL beside a bare paho-mqtt
subscriber on the same QoS 1 stream, and the latency from a frame on a pty to the row in the console.

    python -m bench.bridge_bench [--quick]

The stream: N valid events of one gateway, published QoS 1 by a separate process (so that the publisher
does not share the interpreter with what is measured) to a Mosquitto whose queue limits are lifted.
Each consumer is timed from the first message it receives to the last one it has handled (for the
bridge: stored and committed). Writes bench/out/bridge.md and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sqlalchemy import select  # noqa: E402
from support import Mosquitto, Postgres, SocatLink, create_database, wait_until  # noqa: E402

from bridge.models import EventRow  # noqa: E402
from bridge.service import Bridge  # noqa: E402
from bridge.store import Store  # noqa: E402
from config.schema import parse_config  # noqa: E402
from console.app import DispatchApp  # noqa: E402
from gateway.events import Decoded, Event, Kind, encode_event  # noqa: E402
from gateway.runner import Gateway  # noqa: E402

OUT = ROOT / "bench" / "out"

# Run in a child process: publishes N events of gateway `gw` with seq 1..N, QoS 1, then exits.
PUBLISHER = r"""
import sys, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from datetime import UTC, datetime
from gateway.events import Decoded, Event, Kind, Position, encode_event
port, n, gw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = mqtt.Client(CallbackAPIVersion.VERSION2)
c.max_inflight_messages_set(200)
c.connect("127.0.0.1", port)
c.loop_start()
infos = []
for i in range(1, n + 1):
    kind = Kind.ALERT if i % 100 == 0 else Kind.BEACON
    d = Decoded(kind, datetime.now(UTC), f"fleetsync:100-{1000 + i % 500}", Position(30.2 + i % 100 / 1e4, 120.2,
                source="kenwood"), {"protocol": "kenwood", "status": "A"})
    e = Event.stamp(d, seq=i, gateway=gw, channel="patrol-1")
    infos.append(c.publish(f"pttbridge/v1/gw/{gw}/event/{kind}", encode_event(e), qos=1))
for info in infos:
    info.wait_for_publish(120)
c.loop_stop()
c.disconnect()
"""


def publish(broker: Mosquitto, n: int, gw: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISHER, str(broker.port), str(n), gw], cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def raw_rate(broker: Mosquitto, n: int) -> float:
    """A bare paho subscriber (QoS 1, auto-ack): messages per second it receives."""
    got = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(_c: object, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal got, first, last
        last = time.perf_counter()
        first = first or last
        got += 1
        if got == n:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw")
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port)
    c.subscribe("pttbridge/v1/gw/raw/event/+", qos=1)
    c.loop_start()
    time.sleep(0.3)
    pub = publish(broker, n, "raw")
    done.wait(300)
    pub.wait(60)
    c.loop_stop()
    c.disconnect()
    return n / (last - first)


def bridge_rate(broker: Mosquitto, n: int, database_url: str, work: Path, processes: int = 1) -> float:
    """``pttbridge bridge`` processes, as deployed, storing the stream into one database (two or more share
    the subscription: ``$share``, MQTT 5): events per second validated, stored, committed and only then
    acknowledged.

    Timed by the bridges' own stamps (an event's ``received_at`` is its batch's commit time): from the
    first batch stored to the last, counting the events after the first batch. The bench reads the count
    only four times a second, from its own process: counting rows every 20 ms inside the bridge's process,
    as this bench once did, timed the bench's own work as the bridge's."""
    procs = []
    tag = uuid.uuid4().hex[:6]
    for i in range(processes):
        cfg = work / f"bridge-{tag}-{i}.toml"
        shared = f'mqtt_version = "5"\nshared_group = "bench{tag}"\n' if processes > 1 else 'mqtt_version = "3.1.1"\n'
        cfg.write_text(f'data_dir = "{work / "data"}"\n[mqtt]\nurl = "{broker.url}"\n[bridge]\nname = "b{tag}{i}"\n'
                       f'database_url = "{database_url}"\n{shared}')
        log = (work / f"bridge-{tag}-{i}.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "pttbridge", "-q", "bridge", "-c", str(cfg)], cwd=ROOT,
                                      stdout=log, stderr=log))
    store = Store.open(database_url, migrate_schema=True)
    try:
        _wait_subscribed(broker, store, f"probe{tag}")
        gw = f"gw{uuid.uuid4().hex[:6]}"
        pub = publish(broker, n, gw)
        deadline = time.monotonic() + 600
        while store.count_events(gw) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise AssertionError(f"{store.count_events(gw)} of {n} events stored")
            time.sleep(0.25)
        pub.wait(60)
        with store.engine.connect() as db:
            stamps = sorted(t for (t,) in db.execute(select(EventRow.received_at).where(EventRow.gateway == gw)))
        assert len(stamps) == n, f"stored {len(stamps)} of {n}"
        after_first = sum(1 for t in stamps if t > stamps[0])
        return after_first / (stamps[-1] - stamps[0]).total_seconds()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        store.close()


def _wait_subscribed(broker: Mosquitto, store: Store, gw: str) -> None:
    """Until an event of gateway ``gw`` is stored: then a bridge has subscribed (an event published before
    its subscription would reach nobody)."""
    event = Event.stamp(Decoded(Kind.BEACON, datetime.now(UTC), "fleetsync:100-1000", None, {}), seq=1, gateway=gw,
                        channel="patrol-1")
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        deadline = time.monotonic() + 60
        while not store.count_events(gw):
            if time.monotonic() > deadline:
                raise AssertionError("no bridge subscribed within 60 s")
            c.publish(f"pttbridge/v1/gw/{gw}/event/beacon", encode_event(event), qos=1)
            time.sleep(0.5)
    finally:
        c.loop_stop()
        c.disconnect()


def console_latency(broker: Mosquitto, work: Path, n: int) -> tuple[float, float]:
    """p50/p99 from the last byte of an emergency frame on the pty to its row in a (headless) console."""
    link = SocatLink(work, "console")
    link.plug()
    cfg = parse_config({
        "data_dir": str(work / "lat"),
        "gateway": {"name": "latgw", "outbox": str(work / "lat-outbox.sqlite")},
        "mqtt": {"url": broker.url},
        "bridge": {"name": "lat", "database_url": f"sqlite:///{work / 'lat.sqlite'}", "mqtt_version": "3.1.1"},
        "channels": [{"name": "c", "drivers": [{"port": str(link.radio), "protocol": "kenwood"}],
                      "rules": [{"when": {"kind": "ptt", "transmission": "begin"}, "kind": "alert"}]}],
    })
    bridge, gateway = Bridge(cfg), Gateway(cfg)
    bridge.start()
    gateway.start()
    wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway")
    delays: list[float] = []

    async def drive() -> None:
        app = DispatchApp(cfg, "bench")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(1.0)
            for i in range(n):
                unit = f"fleetsync:100-{1000 + i}"
                t0 = time.perf_counter()
                link.write(b"\x02I1100%04d\x03" % (1000 + i))
                while not any(r["unit"] == unit for r in app.dispatch.queue.texts()):
                    await asyncio.sleep(0.001)
                    if time.perf_counter() - t0 > 10:
                        raise TimeoutError(f"{unit} never reached the console")
                delays.append(time.perf_counter() - t0)

    try:
        asyncio.run(drive())
    finally:
        gateway.stop()
        bridge.stop()
        link.unplug()
    delays.sort()
    return statistics.median(delays), delays[max(0, int(len(delays) * 0.99) - 1)]


def _spread(rates: list[float], raws: list[float]) -> str:
    """Median events/s, then each run with its share of the bare subscriber's rate in the same round."""
    runs = ", ".join(f"{r:,.0f} ({r / raw:.0%})" for r, raw in zip(rates, raws, strict=True))
    share = statistics.median(r / raw for r, raw in zip(rates, raws, strict=True))
    return f"{statistics.median(rates):,.0f} events/s, {share:.0%} of raw (runs: {runs})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller stream, one round, for a smoke run")
    ap.add_argument("--runs", type=int, default=3, help="rounds of every consumer in turn (default %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT / "bridge.md", help="the table's file (default %(default)s)")
    args = ap.parse_args()
    n = 2000 if args.quick else 20000
    rounds = 1 if args.quick else args.runs
    consumers = ("SQLite (WAL, synchronous=FULL)", "PostgreSQL 15 (local, fsync on)",
                 "2 bridge processes, one shared subscription ($share, MQTT 5), PostgreSQL")
    raws: list[float] = []
    rates: dict[str, list[float]] = {c: [] for c in consumers}
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work, "max_queued_messages 0\nmax_inflight_messages 0\n")
        broker.start()
        pg = Postgres(durable=True)
        pg.start()
        try:
            for r in range(rounds):
                print(f"... round {r + 1} of {rounds}: bare paho subscriber, {n} events", file=sys.stderr, flush=True)
                raws.append(raw_rate(broker, n))
                urls = (f"sqlite:///{work / f'bench-{r}.sqlite'}", create_database(pg.url(), f"bench{r}"),
                        create_database(pg.url(), f"shared{r}"))
                for (name, url), processes in zip(zip(consumers, urls, strict=True), (1, 1, 2), strict=True):
                    print(f"... round {r + 1} of {rounds}: {name}", file=sys.stderr, flush=True)
                    rates[name].append(bridge_rate(broker, n, url, work, processes))
            for name in consumers:
                what = name if name.startswith("2 bridge") else f"bridge ingest, {name}"
                rows.append((what, _spread(rates[name], raws), "same" if rows else
                             f"bare paho QoS 1 subscriber: {statistics.median(raws):,.0f} msg/s (runs: "
                             + ", ".join(f"{raw:,.0f}" for raw in raws) + ")"))
            print("... pty -> console latency", file=sys.stderr, flush=True)
            p50, p99 = console_latency(broker, work, 50 if args.quick else 200)
            rows.append(("emergency frame on pty -> row in the console",
                         f"p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms", "-"))
        finally:
            pg.stop()
            broker.stop()
    table = [f"{n:,} events per run, 1 alert in 100, {rounds} round(s), consumers in turn. Machine: "
             f"{os.cpu_count()} cores.", "",
             "| what | pttbridge | peer on the same stream |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
