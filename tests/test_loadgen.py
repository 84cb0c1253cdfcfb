"""The load generator (bench/loadgen.py) against real parts: its events are what gateways send, and two
bridges sharing the stream ($share, MQTT 5) store every one of them exactly once on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from support import Mosquitto, create_database, wait_until

from bridge.models import EventRow, IncidentRow
from bridge.service import Bridge
from config.schema import parse_config

ROOT = Path(__file__).resolve().parents[1]


def loadgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.loadgen", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=90)


def test_the_help_says_what_it_does_and_a_broker_elsewhere_is_refused() -> None:
    helped = loadgen("--help")
    assert helped.returncode == 0
    assert "--gateways" in helped.stdout and "loopback" in helped.stdout
    refused = loadgen("--broker", "mqtt://192.0.2.1:1883", "--count", "1")  # TEST-NET-1: never this machine
    assert refused.returncode == 2
    assert "not loopback" in refused.stderr
    assert loadgen("--count", "0").returncode == 2  # bounded: a count is required to be sane


def test_two_bridges_sharing_the_stream_store_every_event_once_on_postgresql(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    # The shipped broker configuration's limits, lifted as a site lifts them.
    broker = Mosquitto(tmp_path, "max_queued_messages 1000000\nmax_queued_bytes 0\n")
    broker.start()
    url = create_database(postgres_admin_url, f"pttbridge_test_{uuid.uuid4().hex[:12]}")
    bridges = []
    try:
        for name in ("b1", "b2"):
            cfg = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": broker.url},
                                "bridge": {"name": name, "database_url": url, "mqtt_version": "5",
                                           "shared_group": "bridges", "replay_interval_s": 2}})
            bridge = Bridge(cfg)
            bridge.start()
            bridges.append(bridge)
        wait_until(lambda: all(b.connected for b in bridges), 15, "both bridges to connect")
        n, gateways, alerts = 3000, 40, 60
        run = loadgen("--broker", broker.url, "--gateways", str(gateways), "--units", "400", "--rate", "0",
                      "--count", str(n), "--alert-fraction", str(alerts / n), "--duration", "60", "--name", "lg")
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert report["sent"] == report["acknowledged"] == n and report["alerts"] == alerts
        store = bridges[0].store
        assert store is not None

        def complete() -> bool:
            done = {g.name: g.contiguous_seq for g in store.gateways()}
            return bool(done == report["per_gateway"])

        wait_until(complete, 60, "every gateway's seq stored without a hole")
        assert store.count_events() == n
        with store.engine.connect() as conn:
            assert conn.scalar(select(func.count(func.distinct(EventRow.id)))) == n
            assert conn.scalar(select(func.count()).where(EventRow.kind == "alert")) == alerts
            # Each alert came from a unit of its own: an incident each, opened once.
            assert conn.scalar(select(func.count()).select_from(IncidentRow)) == alerts
        assert all(b.counts["stored"] > 0 for b in bridges)  # both took a share
        assert sum(b.counts["stored"] for b in bridges) == n
        assert sum(b.counts["rejected"] + b.counts["lost"] for b in bridges) == 0
    finally:
        for bridge in bridges:
            bridge.stop()
        broker.stop()


def test_a_simulated_gateway_answers_replay_requests_with_the_events_it_sent(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    got: list[tuple[str, dict[str, Any]]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-watch")
    watcher.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload)))
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("pttbridge/v1/gw/+/event/+", qos=1)
    watcher.loop_start()
    proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen", "--broker", broker.url, "--gateways", "2",
                             "--units", "4", "--rate", "0", "--count", "20", "--alert-fraction", "0.25", "--name", "rp",
                             "--linger", "30"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(got) == 20, 20, "the stream")
        first = {(e["gateway"], e["seq"]): (t, e) for t, e in got}
        for gateway in ("rp-0000", "rp-0001"):  # each numbers its own events 1..n
            seqs = sorted(q for g, q in first if g == gateway)
            assert seqs == list(range(1, len(seqs) + 1))
        assert all(t == f"pttbridge/v1/gw/{e['gateway']}/event/{e['kind']}" for t, e in first.values())
        watcher.publish("pttbridge/v1/gw/rp-0000/cmd/replay", json.dumps({"from_seq": 2, "to_seq": 3}), qos=1)
        wait_until(lambda: len(got) == 22, 20, "the two events again")
        assert [(t, e) for t, e in got[20:]] == [first[("rp-0000", 2)], first[("rp-0000", 3)]]
    finally:
        proc.kill()
        proc.wait()
        watcher.loop_stop()
        watcher.disconnect()
        broker.stop()
