"""The bridge against a real Mosquitto, on SQLite and PostgreSQL: bad payloads refused and the good ones
around them stored; a real gateway's alerts becoming incidents that consoles acknowledge over MQTT; a
bridge killed mid-stream losing nothing and storing nothing twice; a broker that drops QoS 1 messages to
a slow bridge, and the replays that bring every event back."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from support import Listener, Mosquitto, SocatLink, caller_id, free_port, site_config, wait_until

from bridge.models import EventRow, IncidentHistoryRow, IncidentRow
from bridge.service import Bridge
from bridge.store import Store
from config.schema import load_config
from gateway.events import Event, Kind, Position, encode_event, uuid7
from gateway.runner import Gateway

ROOT = Path(__file__).parents[2]
PREFIX = "pttbridge/v1"
B = TypeVar("B", bound=Bridge)


def write_config(tmp: Path, broker: Mosquitto, database_url: str, port: Path | None = None, **bridge: Any) -> Path:
    settings = {"incident_window_s": 600, "reannounce_s": 30, "replay_interval_s": 0.5, **bridge}
    return site_config(tmp, broker.url, database_url, port, bridge=settings)


class Publisher:
    """A bare MQTT client for what no gateway would send."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-publisher-{free_port()}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "the test's publisher to connect")

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(f"{PREFIX}/{topic}", payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto)
    yield p
    p.close()


@pytest.fixture
def consoles(mosquitto: Mosquitto) -> Iterator[Listener]:
    """What a console hears from the bridge."""
    lst = Listener(mosquitto.url, f"{PREFIX}/bridge/#", persistent=False)
    yield lst
    lst.close()


class CountingBridge(Bridge):
    """The bridge, with the messages it received counted as they arrive (before its ingest thread takes
    them): a test that holds the bridge (Bridge.hold) knows when everything sent is there."""

    received = 0

    def _on_message(self, client: mqtt.Client, lane: int, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        super()._on_message(client, lane, msg)


def running(bridge: B) -> B:
    bridge.start()
    wait_until(lambda: bridge.connected, 10, "bridge to connect")  # connected: subscribed
    return bridge


def event(seq: int, *, gateway: str = "gw1", kind: Kind = Kind.BEACON, unit: str = "mdc:1234") -> Event:
    now = datetime.now(UTC)
    return Event(id=uuid7(now), seq=seq, gateway=gateway, channel="patrol-1", kind=kind, time=now, unit=unit,
                 position=Position(30.2095, 120.2107, source="nmea"), detail={"protocol": "test"})


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.scalars(select(EventRow.id).order_by(EventRow.seq)))


def test_invalid_payloads_are_rejected_and_the_valid_ones_around_them_stored(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    config = load_config(write_config(tmp_path, mosquitto, database_url))
    bridge = running(Bridge(config))
    good = [event(1), event(2), event(3)]
    valid = encode_event(good[0])
    try:
        publisher.send("gw/gw1/event/beacon", encode_event(good[0]))
        bad: list[tuple[str, bytes, str]] = [
            ("gw/gw1/event/beacon", b"\xff\xfe\x00garbage", "$: not JSON"),
            ("gw/gw1/event/beacon", valid[: len(valid) // 2], "$: not JSON"),
            ("gw/gw1/event/beacon", b'{"pad":"' + b"x" * 70_000 + b'"}', "exceeds the 65536-byte limit"),
            ("gw/gw1/event/beacon", valid.replace(b'"v":1', b'"v":2'), "v: unsupported schema version 2"),
            ("gw/gw1/event/beacon", valid.replace(b'"seq":1', b'"seq":-1'), "seq: expected a non-negative integer"),
            ("gw/gw1/event/beacon", b"[1, 2, 3]", "$: expected a JSON object"),
            ("gw/gw2/event/beacon", encode_event(event(9)), "does not match the topic's gateway 'gw2'"),
            ("gw/gw1/event/alert", encode_event(event(9)), "beacon does not match the topic's kind 'alert'"),
            ("gw/gw1/event/beacon", b"", "$: not JSON"),
        ]
        for topic, payload, _ in bad:
            publisher.send(topic, payload)
        publisher.send("gw/gw1/event/beacon", encode_event(good[1]))
        publisher.send("gw/gw1/event/beacon", encode_event(good[2]))
        assert bridge.store is not None
        store = bridge.store
        wait_until(lambda: bridge.counts["stored"] == 3 and bridge.counts["rejected"] == len(bad), 10,
                   "3 stored and every bad payload rejected")
        assert stored_ids(store) == [e.id for e in good]
        rejections = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected event")]
        assert len(rejections) == len(bad)
        for topic, payload, reason in bad:  # alerts have a session of their own: not in order with the rest
            said = [line for line in rejections if f"on {PREFIX}/{topic}: " in line and reason in line
                    and f"[{len(payload)} bytes: {payload[:64].hex(' ')}" in line]  # the offending bytes, in hex
            assert len(said) == 1, (topic, reason)
    finally:
        bridge.stop()
    # Everything was acknowledged, refused or not: a bridge on the same session gets nothing again. What
    # was not would come first, at once: one new event on each of its sessions, and nothing before them.
    again = running(Bridge(config))
    try:
        publisher.send("gw/gw1/event/beacon", encode_event(event(4)))
        publisher.send("gw/gw1/event/alert", encode_event(event(5, kind=Kind.ALERT)))
        wait_until(lambda: again.counts["stored"] == 2, 10, "the two new events")
        assert again.counts["received"] == 2
    finally:
        again.stop()


def test_gateway_alerts_become_incidents_that_consoles_handle(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, database_url: str, consoles: Listener,
    publisher: Publisher,
) -> None:
    config = load_config(write_config(tmp_path, mosquitto, database_url, socat_link.radio, reannounce_s=1))
    bridge = running(Bridge(config))
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: gateway.publisher.connected, 5, "gateway to connect")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port to open")
        for i in range(12):  # three radios keying up on the emergency channel, four times each
            socat_link.write(caller_id(i % 3))
        assert bridge.store is not None
        store = bridge.store
        wait_until(lambda: store.count_events() == 12, 10, "12 events stored")
        incidents = store.open_incidents()
        assert sorted(i.unit or "" for i in incidents) == ["fleetsync:100-1000", "fleetsync:100-1001",
                                                          "fleetsync:100-1002"]
        assert all(i.state == "new" and i.alert_count == 4 for i in incidents)
        assert all(i.label == "key-up on the emergency channel" and i.channel == "emergency-1" for i in incidents)
        wait_until(lambda: all(u.gateway_online for u in store.units()), 5, "the gateway's state")
        assert {u.unit for u in store.units()} == {i.unit for i in incidents}

        # What consoles heard: each incident opened, each unit's state (retained).
        target = incidents[0]
        wait_until(lambda: len(consoles.payloads(f"/bridge/incident/{target.id}")) >= 1, 5, "incident messages")
        first = consoles.payloads(f"/bridge/incident/{target.id}")[0]
        assert first["change"] == "opened" and first["state"] == "new" and first["unit"] == target.unit
        assert first["gateway"] == "gw1" and first["alert_count"] >= 1
        units = [(t, json.loads(p)) for t, p, _ in consoles.messages if "/bridge/unit/" in t]
        assert {u["unit"] for _, u in units} == {i.unit for i in incidents}
        assert all(t == f"{PREFIX}/bridge/unit/{u['unit']}" and u["last_kind"] == "alert" for t, u in units)
        # Nobody acknowledged: it is announced again.
        wait_until(lambda: any(p["change"] == "reannounce"
                               for p in consoles.payloads(f"/bridge/incident/{target.id}")), 5, "a re-announcement")

        # A console acknowledges, another resolves; bad commands are refused without harm.
        publisher.send("bridge/cmd", json.dumps({"action": "ack", "incident": target.id, "operator": "alice"}))
        publisher.send("bridge/cmd", b"not json")
        publisher.send("bridge/cmd", json.dumps({"action": "ack", "incident": target.id}))  # nobody
        publisher.send("bridge/cmd", json.dumps({"action": "resolve", "incident": target.id, "operator": "bob",
                                                 "resolution": "handled", "note": "officer safe"}))
        wait_until(lambda: (i := store.incident(target.id)) is not None and i.state == "resolved", 5, "resolution")
        assert bridge.counts["commands_refused"] == 2
        detail = store.incident_detail(target.id)
        assert detail is not None and detail.incident.acknowledged_by == "alice"
        # The acknowledgement was also asked of the radio; this channel has no transmitter, and the gateway says so.
        done = [(h.actor, h.action) for h in detail.history if h.actor != "bridge"]
        assert done == [("alice", "acknowledged"), ("alice", "radio_ack"), ("bob", "resolved")]

        def radio_answer() -> list[str]:
            d = store.incident_detail(target.id)
            return [h.note or "" for h in d.history if h.actor == "bridge" and h.action == "radio_ack"] if d else []

        wait_until(radio_answer, 5, "the gateway's answer")
        assert radio_answer() == ["no_transmit_path by gw1/emergency-1: channel emergency-1 has no transmit section"]
        assert len(detail.alerts) == 4
        wait_until(lambda: "resolved" in [p["change"] for p in consoles.payloads(f"/bridge/incident/{target.id}")],
                   5, "the resolution to be published")
        changes = [p["change"] for p in consoles.payloads(f"/bridge/incident/{target.id}")]
        assert changes.index("acknowledged") < changes.index("resolved")
        assert {i.id for i in store.open_incidents()} == {i.id for i in incidents[1:]}
    finally:
        gateway.stop()
        bridge.stop()


def test_an_event_the_database_refuses_is_rejected_alone(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    config = load_config(write_config(tmp_path, mosquitto, database_url))
    bridge = running(CountingBridge(config))
    assert bridge.store is not None
    store = bridge.store
    # The database refuses one event for what it is (here a trigger, as a constraint of a site's own would):
    # valid on the wire, refused in storage. (It used to be a NUL in a unit, which the schema now refuses.)
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("CREATE TRIGGER refuse_seq_2 BEFORE INSERT ON events WHEN NEW.seq = 2 "
                                 "BEGIN SELECT RAISE(ABORT, 'seq 2 refused by a trigger'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION refuse_seq_2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 "IF NEW.seq = 2 THEN RAISE EXCEPTION 'seq 2 refused by a trigger'; END IF; "
                                 "RETURN NEW; END $$")
            conn.exec_driver_sql("CREATE TRIGGER refuse_seq_2 BEFORE INSERT ON events FOR EACH ROW "
                                 "EXECUTE FUNCTION refuse_seq_2()")
    odd = event(2)
    nul = event(4, unit="mdc:a\x00b")  # PostgreSQL text cannot hold NUL: the schema refuses it everywhere
    sent = [event(1), odd, event(3), nul]
    try:
        bridge.hold()  # all four taken in one batch: the refused ones must cost the others nothing
        for e in sent:
            publisher.client.publish(f"{PREFIX}/gw/gw1/event/beacon", encode_event(e), qos=1)
        wait_until(lambda: bridge.received == 4, 10, "all four at the bridge")
        bridge.release()
        wait_until(lambda: bridge.counts["stored"] + bridge.counts["rejected"] == 4, 10, "all four handled")
        assert stored_ids(store) == [sent[0].id, sent[2].id]
        lines = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected event"))
        assert len(lines) == 2  # the schema's refusal comes first: the database is asked only of valid events
        assert "refused by the database" in lines[0] and "seq 2 refused by a trigger" in lines[0]
        assert "unit: id 'a\\x00b'" in lines[1]
    finally:
        bridge.stop()


def start_bridge_process(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bridge", "-v", "-c", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def totals(store: Store) -> tuple[int, int, int, int]:
    """(events, distinct seqs, alerts counted by incidents, alert entries in incident history)"""
    with store.engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(EventRow)) or 0
        seqs = conn.scalar(select(func.count(func.distinct(EventRow.seq)))) or 0
        counted = conn.scalar(select(func.coalesce(func.sum(IncidentRow.alert_count), 0))) or 0
        history = conn.scalar(select(func.count()).select_from(IncidentHistoryRow)
                              .where(IncidentHistoryRow.action.in_(["opened", "alert"]))) or 0
    return int(events), int(seqs), int(counted), int(history)


def test_bridge_killed_while_events_flow_stores_each_exactly_once(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, database_url: str
) -> None:
    cfg = write_config(tmp_path, mosquitto, database_url, socat_link.radio)
    config = load_config(cfg)
    log = tmp_path / "bridge.log"
    gateway = Gateway(config)
    gateway.start()
    store = Store.open(database_url)  # the test's own view of the database
    proc = start_bridge_process(cfg, log)
    n = 300
    try:
        wait_until(lambda: "connected to" in log.read_text(), 15, "bridge to connect")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port to open")

        def radio(first: int, last: int) -> None:
            for i in range(first, last):
                socat_link.write(caller_id(i % 7))
                time.sleep(0.002)  # a radio's pace, not a flood: the kills land while events flow

        writer = threading.Thread(target=radio, args=(0, 200))
        writer.start()
        wait_until(lambda: store.count_events() >= 30, 10, "the first events stored")
        proc.send_signal(signal.SIGKILL)  # mid-stream, mid-batch perhaps
        proc.wait(5)
        writer.join()
        wait_until(lambda: gateway.outbox.stats()["pending"] == 0, 10, "everything handed to the broker")
        proc = start_bridge_process(cfg, log)  # what the broker queued meanwhile comes now
        radio(200, 250)
        wait_until(lambda: store.count_events() >= 210, 15, "the backlog")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        proc = start_bridge_process(cfg, log)
        radio(250, n - 1)
        wait_until(lambda: store.count_events() >= n - 1, 20, f"{n - 1} events")
        # What the broker sends again comes first on a resumed session: once one more event, sent now, is
        # stored, nothing can be redelivered after it.
        radio(n - 1, n)
        wait_until(lambda: store.count_events() >= n, 10, f"{n} events")
        assert totals(store) == (n, n, n, n)
        with store.engine.connect() as conn:
            assert list(conn.scalars(select(EventRow.seq).order_by(EventRow.seq))) == list(range(1, n + 1))
        assert sum(i.alert_count for i in store.open_incidents()) == n and len(store.open_incidents()) == 7
        wait_until(lambda: store.gateways()[0].contiguous_seq == n, 5, "the seq to be complete")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        gateway.stop()
        store.close()
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("(resumed session)") == 2  # each restart picked up what the broker had queued


def test_a_broker_that_drops_messages_and_the_replays_that_recover_them(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.publisher")

    def replays_answered() -> int:
        return sum(1 for r in caplog.records if r.name == "gateway.publisher" and r.getMessage().startswith("replayed"))

    # mosquitto runs with its defaults: max_queued_messages 1000, max_inflight_messages 20.
    config = load_config(write_config(tmp_path, mosquitto, database_url, socat_link.radio, replay_max=400))
    bridge = running(Bridge(config))
    gateway = Gateway(config)
    gateway.start()
    n = 2500
    try:
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port to open")
        # A bridge that takes nothing while the gateway sends: its in-flight window fills, unacknowledged,
        # and the broker queues 1000 more and drops the rest however fast or slow the gateway is.
        bridge.hold()
        for i in range(n):
            socat_link.write(caller_id(i % 50))
        wait_until(lambda: gateway.outbox.stats()["next_seq"] == n + 1, 30, f"{n} events decoded")
        wait_until(lambda: gateway.outbox.stats()["pending"] == 0, 30, "every event accepted by the broker")
        assert bridge.store is not None
        store = bridge.store
        assert store.count_events() < n  # the broker's queue held 1000 at most: the rest was dropped
        bridge.release()
        wait_until(lambda: store.count_events() == n, 60, f"all {n} events, through replays")
        assert bridge.counts["replay_requests"] > 0 and bridge.counts["lost"] == 0
        wait_until(lambda: store.gateways()[0].contiguous_seq == n, 5, "the seq to be complete")
        # Every replay asked for has been answered; one event more, sent after the answers, is stored: a
        # replayed duplicate cannot come after it.
        wait_until(lambda: replays_answered() == bridge.counts["replay_requests"], 10, "every replay answered")
        socat_link.write(caller_id(n % 50))
        wait_until(lambda: store.count_events() == n + 1, 10, "one event more")
        assert totals(store) == (n + 1, n + 1, n + 1, n + 1)
    finally:
        gateway.stop()
        bridge.stop()


class FakeGateway:
    """Plays a gateway on the wire: holds events 1..n, publishes some, answers replay requests from what
    it still holds, and states its seq in its retained state like gateway/publisher.py does."""

    def __init__(self, broker: Mosquitto, n: int, *, held: set[int]) -> None:
        self.events = {q: event(q) for q in range(1, n + 1)}
        self.held = held
        self.requests: list[tuple[int, int]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-gateway-{free_port()}")
        self.client.on_message = self._on_replay
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"{PREFIX}/gw/gw1/cmd/replay", qos=1)
        self.client.loop_start()

    def send(self, q: int) -> None:
        self.client.publish(f"{PREFIX}/gw/gw1/event/beacon", encode_event(self.events[q]), qos=1)

    def state(self) -> None:
        outbox = {"pending": 0, "next_seq": len(self.events) + 1, "oldest_seq": min(self.held)}
        self.client.publish(f"{PREFIX}/gw/gw1/state", json.dumps({"online": True, "gateway": "gw1", "outbox": outbox}),
                            qos=1, retain=True)

    def _on_replay(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        self.requests.append((body["from_seq"], body["to_seq"]))
        for q in range(body["from_seq"], body["to_seq"] + 1):
            if q in self.held:
                self.send(q)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_holes_are_asked_for_again_and_what_cannot_come_back_is_logged_as_lost(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    config = load_config(write_config(tmp_path, mosquitto, database_url, replay_interval_s=0.3, replay_tries=2))
    bridge = running(Bridge(config))
    # Ten events: 1-2 purged from the gateway's outbox, 7 gone too; the broker "dropped" 6-7 and 9-10.
    fake = FakeGateway(mosquitto, 10, held={3, 4, 5, 6, 8, 9, 10})
    try:
        for q in (3, 4, 5, 8):
            fake.send(q)
        fake.state()
        assert bridge.store is not None
        store = bridge.store
        wait_until(lambda: store.gateways() and store.gateways()[0].contiguous_seq == 10, 10,
                   "the gateway's seq to be complete or given up")
        with store.engine.connect() as conn:
            assert list(conn.scalars(select(EventRow.seq).order_by(EventRow.seq))) == [3, 4, 5, 6, 8, 9, 10]
        assert (6, 7) in fake.requests and (9, 10) in fake.requests  # a hole, and the tail the state revealed
        assert all(a >= 3 for a, _ in fake.requests)  # what the gateway no longer holds is not asked for
        assert store.gateways()[0].lost == 3 and bridge.counts["lost"] == 3
        lost = [r.getMessage() for r in caplog.records if "are lost" in r.getMessage()]
        assert lost == [
            "gateway gw1: 2 events of seq 1..2 are lost: older than what the gateway still holds",
            "gateway gw1: 1 events of seq 7..7 are lost: no replay brought them after 2 requests",
        ]
    finally:
        fake.close()
        bridge.stop()


def test_bridges_in_a_shared_group_split_the_stream_and_store_it_once(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, publisher: Publisher
) -> None:
    # The holes each bridge sees are the other's share: given two seconds, the other stores them.
    config = load_config(write_config(tmp_path, mosquitto, database_url, shared_group="bridges", replay_interval_s=2))
    one = running(Bridge(config))
    two = running(Bridge(config.model_copy(update={"bridge": config.bridge.model_copy(update={"name": "b2"})})))
    n = 200
    try:
        for q in range(1, n + 1):
            publisher.client.publish(f"{PREFIX}/gw/gw1/event/beacon", encode_event(event(q, unit=f"mdc:{q % 9}")),
                                     qos=1)
        assert one.store is not None
        store = one.store
        # Counted after the commit: waited for as the last thing, not the rows.
        wait_until(lambda: one.counts["stored"] + two.counts["stored"] == n, 15, f"{n} events")
        assert store.count_events() == n
        assert one.counts["stored"] > 0 and two.counts["stored"] > 0  # both took a share
        assert one.counts["duplicates"] + two.counts["duplicates"] == 0
        wait_until(lambda: store.gateways()[0].contiguous_seq == n, 5, "the seq to be complete")
        assert one.counts["replay_requests"] == two.counts["replay_requests"] == 0  # the holes were the other's
    finally:
        one.stop()
        two.stop()


def test_a_broker_without_mqtt5_is_spoken_to_in_3_1_1(tmp_path: Path) -> None:
    from launcher.broker import EmbeddedBroker

    broker = EmbeddedBroker()  # amqtt, as `pttbridge up` embeds it: MQTT 3.1.1 only
    broker.start()
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    config = load_config(write_config(tmp_path, broker, url, shared_group="bridges"))  # type: ignore[arg-type]
    bridge = Bridge(config)
    try:
        bridge.start()
        wait_until(lambda: bridge.connected, 15, "bridge to connect in 3.1.1")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher-311")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        wait_until(client.is_connected, 10, "the test's publisher to connect")
        client.publish(f"{PREFIX}/gw/gw1/event/beacon", encode_event(event(1)), qos=1).wait_for_publish(5)
        assert bridge.store is not None
        store = bridge.store
        wait_until(lambda: store.count_events() == 1, 10, "the event stored")
        client.loop_stop()
        client.disconnect()
    finally:
        bridge.stop()
        broker.stop()


def test_a_fast_beaconing_unit_is_published_at_most_once_a_second_and_ends_on_its_newest_position(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher, consoles: Listener
) -> None:
    cfg = load_config(write_config(tmp_path, mosquitto, f"sqlite:///{tmp_path / 'b.sqlite'}"))
    bridge = running(Bridge(cfg))
    try:
        for seq in range(1, 21):  # 20 fixes in about half a second, moving north
            e = event(seq)
            e = replace(e, position=replace(e.position, lat=30.2 + seq / 1000)) if e.position else e
            publisher.send("gw/gw1/event/beacon", encode_event(e))
            time.sleep(0.02)  # the unit's pace: 50 fixes a second, over half a second
        wait_until(lambda: bridge.store is not None and bridge.store.count_events() == 20, 10, "20 stored")
        wait_until(lambda: consoles.payloads("/bridge/unit/")[-1:] != [] and
                   consoles.payloads("/bridge/unit/")[-1]["position"]["lat"] == pytest.approx(30.22), 5,
                   "the newest position to be published")
        assert len(consoles.payloads("/bridge/unit/")) <= 3  # not 20
    finally:
        bridge.stop()


def test_an_alert_does_not_wait_behind_another_gateways_backlog(tmp_path: Path) -> None:
    """While the bridge was away the broker queued 6,000 beacons of one gateway, then another gateway's
    alert: the alert has a session of its own, so it is stored before most of the backlog."""
    broker = Mosquitto(tmp_path, "max_queued_messages 100000\nmax_queued_bytes 0")
    broker.start()
    publisher = Publisher(broker)
    config = load_config(write_config(tmp_path, broker, f"sqlite:///{tmp_path / 'bridge.sqlite'}"))
    running(Bridge(config)).stop()  # its sessions exist: the broker queues for them from now on
    n = 6000
    try:
        for q in range(1, n + 1):
            publisher.client.publish(f"{PREFIX}/gw/gw-flood/event/beacon",
                                     encode_event(event(q, gateway="gw-flood", unit=f"mdc:{q % 40}")), qos=1)
        alert = event(1, gateway="gw-quiet", kind=Kind.ALERT, unit="mdc:7001")
        publisher.send("gw/gw-quiet/event/alert", encode_event(alert))
        bridge = Bridge(config, batch_delay_s=0.05)  # a bridge that takes a while over a backlog
        bridge.start()
        try:
            assert bridge.store is not None
            store = bridge.store
            with store.engine.connect() as conn:
                def flood_when_alert_stored() -> int | None:
                    got = conn.scalar(select(EventRow.id).where(EventRow.id == alert.id))
                    conn.rollback()
                    return store.count_events() if got else None
                wait_until(lambda: flood_when_alert_stored() is not None, 30, "the alert to be stored")
                before = flood_when_alert_stored()
            assert before is not None and before < 500, f"the alert waited behind {before} beacons"
            wait_until(lambda: store.count_events() == n + 1, 60, "the whole backlog")
            assert bridge.counts["duplicates"] == 0
        finally:
            bridge.stop()
    finally:
        publisher.close()
        broker.stop()


def test_a_stopped_bridge_of_a_shared_group_stops_holding_a_share_of_the_alerts(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    """The broker keeps handing a group's messages to a member whose session lives on: once a bridge has
    been gone for GROUP_ALERTS_EXPIRY_S, every alert goes to the bridge still running (nobody replays
    here: what went to the stopped one would be missing)."""
    from support import create_database

    from bridge.service import GROUP_ALERTS_EXPIRY_S

    url = create_database(postgres_admin_url, f"pttbridge_test_group_{free_port()}")
    broker = Mosquitto(tmp_path, "sys_interval 1")  # its statistics once a second: when a session expires
    broker.start()
    publisher = Publisher(broker)
    expired = Listener(broker.url, "$SYS/broker/clients/expired", persistent=False)
    config = load_config(write_config(tmp_path, broker, url, shared_group="bridges"))
    one = running(Bridge(config))
    two = running(Bridge(config.model_copy(update={"bridge": config.bridge.model_copy(update={"name": "b2"})})))
    try:
        two.stop()
        # Its alerts session expires after GROUP_ALERTS_EXPIRY_S (the broker says so), its bulk one lives on.
        wait_until(lambda: any(n >= 1 for n in expired.payloads()), GROUP_ALERTS_EXPIRY_S + 10,
                   "b2's alerts session to expire")
        alerts = [event(q, kind=Kind.ALERT, unit=f"mdc:{q}") for q in range(1, 21)]
        for e in alerts:
            publisher.send("gw/gw1/event/alert", encode_event(e))
        assert one.store is not None
        store = one.store
        wait_until(lambda: store.count_events() == len(alerts), 15, "every alert, by the bridge still running")
        assert one.counts["replay_requests"] == 0
    finally:
        one.stop()
        expired.close()
        publisher.close()
        broker.stop()
