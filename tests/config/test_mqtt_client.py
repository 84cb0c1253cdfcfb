"""The bridge's buffered paho client, against a real Mosquitto: every packet whole and in order, however
the socket's reads cut them, in far fewer reads than packets, and again after the connection is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import Mosquitto

from config.mqtt import BufferedClient, make_client
from config.schema import parse_config

# Sizes across MQTT's remaining-length boundaries (1-4 bytes: 127/128, 16383/16384) and the 64 KiB read.
SIZES = [0, 1, 126, 127, 128, 300, 16_383, 16_384, 65_530, 65_536, 65_537, 200_000]


class Inbox:
    def __init__(self, expect: int) -> None:
        self.payloads: list[bytes] = []
        self.expect = expect
        self.done = threading.Event()

    def __call__(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.payloads.append(bytes(msg.payload))
        if len(self.payloads) >= self.expect:
            self.done.set()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    # The whole burst queued, and sent, while the reader is held (no in-flight window: QoS 1 allows 20).
    broker = Mosquitto(tmp_path, "max_queued_messages 0\nmax_inflight_messages 0\n")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def subscriber(broker: Mosquitto) -> Iterator[BufferedClient]:
    cfg = parse_config({"mqtt": {"url": broker.url}})
    client = make_client(cfg.mqtt, "buffered-test", buffered=True)
    assert isinstance(client, BufferedClient)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_: c.subscribe("t/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert subscribed.wait(10)
    yield client
    client.loop_stop()
    client.disconnect()


def publisher(broker: Mosquitto) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def payload(i: int, size: int) -> bytes:
    return (f"{i}:".encode() * (size // 3 + 1))[:size]


def test_every_message_comes_whole_and_in_order_in_fewer_reads_than_packets(
        subscriber: BufferedClient, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    socket_read = mqtt.Client._sock_recv

    def counted(self: mqtt.Client, bufsize: int) -> bytes:
        nonlocal reads
        reads += self is subscriber  # the publisher reads its acknowledgements too
        return socket_read(self, bufsize)

    monkeypatch.setattr(mqtt.Client, "_sock_recv", counted)
    sent = [payload(i, SIZES[i % len(SIZES)] if i % 10 == 0 else 40 + i % 90) for i in range(3000)]
    inbox = Inbox(len(sent))
    subscriber.on_message = inbox
    # The subscriber's network thread is held while the burst arrives, so its socket fills: the reads
    # that follow each hold many packets, cut anywhere.
    subscriber.loop_stop()
    pub = publisher(broker)
    infos = [pub.publish(f"t/{i}", p, qos=1) for i, p in enumerate(sent)]
    for info in infos:
        info.wait_for_publish(30)
    subscriber.loop_start()
    assert inbox.done.wait(60), f"{len(inbox.payloads)} of {len(sent)} received"
    pub.loop_stop()
    assert inbox.payloads == sent
    # paho alone reads a packet in at least three calls (its type, its length, the rest).
    assert reads < len(sent) / 3, reads


def test_after_a_lost_connection_messages_still_come_whole(subscriber: BufferedClient, broker: Mosquitto) -> None:
    connected = threading.Event()  # and subscribed again
    subscriber.on_subscribe = lambda *_: connected.set()
    first = Inbox(200)
    subscriber.on_message = first
    pub = publisher(broker)
    for i in range(200):
        pub.publish(f"t/{i}", payload(i, 5000), qos=1)
    assert first.done.wait(30)
    pub.loop_stop()
    connected.clear()
    broker.stop()  # whatever the old socket held is gone with it
    broker.start()
    assert connected.wait(30)
    second = Inbox(50)
    subscriber.on_message = second
    pub = publisher(broker)
    sent = [payload(i, 70_000 if i % 7 == 0 else 33) for i in range(50)]
    for i, p in enumerate(sent):
        pub.publish(f"t/{i}", p, qos=1)
    assert second.done.wait(30), f"{len(second.payloads)} of {len(sent)} after the reconnect"
    pub.loop_stop()
    assert second.payloads == sent


def test_a_burst_goes_out_in_few_writes_in_order_and_a_clean_goodbye_is_said(
        broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    sent = [payload(i, 20 + i % 300) for i in range(5000)]
    inbox = Inbox(len(sent))
    wills: list[bytes] = []

    def on_message(c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.topic == "will":
            wills.append(bytes(m.payload))
        else:
            receiving(c, u, m)

    receiving = inbox  # the burst, then a marker sent after it
    watcher.on_message = on_message
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe([("u/#", 0), ("will", 0)])
    watcher.loop_start()
    assert subscribed.wait(10)

    writes = 0
    socket_send = mqtt.Client._sock_send
    cfg = parse_config({"mqtt": {"url": broker.url}})
    client = make_client(cfg.mqtt, "buffered-writer", buffered=True)

    def counted(self: mqtt.Client, buf: bytes | bytearray) -> int:
        nonlocal writes
        writes += self is client
        return socket_send(self, buf)

    monkeypatch.setattr(mqtt.Client, "_sock_send", counted)
    client.will_set("will", b"the writer died")  # sent by the broker unless the writer's DISCONNECT arrives
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert connected.wait(10)
    for i, p in enumerate(sent):  # unit states, as the bridge publishes them: QoS 0, retained
        client.publish(f"u/{i}", p, qos=0, retain=True)
    client.disconnect()
    client.loop_stop()
    assert inbox.done.wait(30), f"{len(inbox.payloads)} of {len(sent)}"
    assert inbox.payloads == sent
    assert writes < len(sent) / 4, writes
    # A will would come within a moment of the broker seeing the connection drop; the watcher's own
    # round trip (a message after everything else) shows that moment has passed.
    receiving = marker = Inbox(1)
    watcher.publish("u/marker", b"after", qos=1)
    assert marker.done.wait(10)
    watcher.loop_stop()
    assert wills == []


class CountingWake:
    """paho's wake-up socket, its writes counted."""

    def __init__(self, sock: Any) -> None:
        self.sock, self.sends = sock, 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return int(self.sock.send(data))

    def close(self) -> None:
        self.sock.close()


def test_what_is_queued_under_a_cork_wakes_the_network_thread_once_and_all_goes(broker: Mosquitto) -> None:
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2)
    inbox = Inbox(1500)
    watcher.on_message = inbox
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("u/#", 0)
    watcher.loop_start()
    assert subscribed.wait(10)
    client = make_client(parse_config({"mqtt": {"url": broker.url}}).mqtt, "corked", buffered=True)
    assert isinstance(client, BufferedClient)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    wake = CountingWake(client._sockpairW)
    client._sockpairW = wake  # type: ignore[assignment]
    sent = [payload(i, 30) for i in range(1500)]
    with client.corked():
        for i, p in enumerate(sent[:1000]):
            client.publish(f"u/{i}", p)
        with client.corked():  # nested: only the outermost wakes
            for i, p in enumerate(sent[1000:1200], start=1000):
                client.publish(f"u/{i}", p)
        assert wake.sends == 0
    assert wake.sends == 1
    for i, p in enumerate(sent[1200:], start=1200):  # uncorked, paho wakes its thread for each
        client.publish(f"u/{i}", p)
    assert wake.sends == 301
    assert inbox.done.wait(30), f"{len(inbox.payloads)} of {len(sent)}"
    assert inbox.payloads == sent
    client.loop_stop()
    client.disconnect()
    watcher.loop_stop()
