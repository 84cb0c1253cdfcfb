"""Load generator: many simulated gateways with thousands of units, publishing to a broker on this machine.

    python -m bench.loadgen --broker mqtt://127.0.0.1:1883 --gateways 200 --units 5000 \\
        --rate 2000 --alert-fraction 0.01 --count 60000 --duration 60

Each simulated gateway is its own MQTT connection (client id ``pttbridge-gw-{name}``) and behaves on the
wire as ``pttbridge gateway`` does: schema-v1 events made by ``gateway.events`` (UUIDv7 ids, a ``seq``
per gateway counting from 1) on ``gw/{gateway}/event/{kind}`` with QoS 1, a retained
``gw/{gateway}/state`` carrying its outbox figures (and a retained Last Will ``online: false``), and
``cmd/replay`` answered from what it has sent. Units belong to gateways (unit u to gateway u mod N) and
wander around a city; the stream is position beacons at ``--rate`` events per second in total, with
alerts mixed in at ``--alert-fraction`` (evenly spread, each alert from a unit not alerted before while
units last, so that each alert opens an incident of its own).

It is bounded: it stops after ``--count`` events or ``--duration`` seconds, whichever comes first, then
waits (up to ``--drain`` seconds) for every PUBACK, publishes each gateway's final state, and prints a
JSON report on stdout. It refuses a broker whose address is not loopback: it is for benchmarks on this
machine, never for a site's broker. ``--alerts-out FILE`` writes one JSON line per alert
(id, gateway, unit, seq, publish time as Unix seconds) for latency measurements.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import random
import selectors
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.events import Event, Kind, Position, encode_event, uuid7

MAX_GATEWAYS = 2000
MAX_UNITS = 200_000
MAX_COUNT = 5_000_000
MAX_DURATION_S = 3600.0
REPLAY_WINDOW = 20_000  # events each simulated gateway keeps for cmd/replay (its "outbox")
CITY = (30.20, 30.35, 120.05, 120.25)  # lat min/max, lon min/max: a district-sized box


class NotLoopback(ValueError):
    """The broker is not on this machine."""


def loopback_broker(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``mqtt://`` URL whose host resolves to loopback addresses only."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise NotLoopback(f"{url}: expected mqtt://HOST:PORT")
    port = parts.port or 1883
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as exc:
        raise NotLoopback(f"{url}: {parts.hostname} does not resolve ({exc})") from None
    outside = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if not addresses or outside:
        raise NotLoopback(f"{url}: {parts.hostname} is {', '.join(outside)}, not loopback; the load generator "
                          "only loads a broker on this machine")
    return parts.hostname, port


@dataclass
class Report:
    gateways: int
    units: int
    sent: int = 0
    alerts: int = 0
    acknowledged: int = 0  # PUBACKs of the stream's events (replays not counted)
    replayed: int = 0  # events sent again on cmd/replay
    first_publish: float = 0.0  # Unix seconds
    last_publish: float = 0.0
    offered_rate: float = 0.0  # events/s from first to last publish
    stopped_by: str = ""  # count | duration
    per_gateway: dict[str, int] = field(default_factory=dict)  # last seq of each


class SimGateway:
    """One gateway's connection, seq counter and sent events (kept for replays)."""

    def __init__(self, gen: LoadGenerator, name: str) -> None:
        self.gen = gen
        self.name = name
        self.seq = 0
        self.sent: dict[int, tuple[str, bytes]] = {}  # seq -> (kind, payload), for cmd/replay
        self.connected = threading.Event()
        # paho is driven by hand here (no loop_start: one I/O thread serves every gateway, not a thread
        # each); every call into this client holds this lock, so that two threads never write at once.
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pttbridge-gw-{name}")
        self.client.max_inflight_messages_set(200)  # as the real publisher's window
        self.client.max_queued_messages_set(0)
        self.client.will_set(self.topic("state"), self.offline("connection lost"), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def sock(self) -> socket.socket:
        sock = self.client.socket()
        assert isinstance(sock, socket.socket), "not connected"
        return sock

    def topic(self, *levels: str) -> str:
        return "/".join((self.gen.prefix, "gw", self.name, *levels))

    def offline(self, reason: str) -> str:
        return json.dumps({"online": False, "gateway": self.name, "reason": reason})

    def state(self, pending: int) -> str:
        """The retained health a gateway publishes: the bridge reads the outbox figures for lost tails."""
        oldest = max(1, self.seq - REPLAY_WINDOW + 1) if self.seq else None  # what it can still replay
        return json.dumps({
            "online": True, "gateway": self.name, "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "outbox": {"pending": pending, "next_seq": self.seq + 1, "oldest_seq": oldest, "clips_pending": 0},
            "radios": {f"patrol-1/{self.gen.protocol}": {"state": "open", "decoded": self.seq, "rejected": 0}},
            "rejected": 0, "transmitters": {}, "plan_version": None, "plan_error": None,
        })

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            return
        client.subscribe(self.topic("cmd", "+"), qos=1)
        self.publish_state(self.state(0))
        self.connected.set()

    def publish_state(self, payload: str) -> None:
        self.gen.state_sent()  # its PUBACK is not an event's
        self.client.publish(self.topic("state"), payload, qos=1, retain=True)  # from a callback, or locked

    def _on_publish(self, *_a: Any) -> None:
        self.gen.acked()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.topic.endswith("/cmd/replay"):
            return  # ack_emergency, output: a simulated radio has nothing to key
        try:
            body = json.loads(msg.payload)
            first, last = int(body["from_seq"]), int(body["to_seq"])
        except (ValueError, KeyError, TypeError):
            return
        for seq in range(max(first, 1), min(last, self.seq) + 1):
            held = self.sent.get(seq)
            if held is not None:
                self.gen.replayed()
                self.client.publish(self.topic("event", held[0]), held[1], qos=1)

    def publish(self, event: Event) -> None:
        payload = encode_event(event)
        self.sent[event.seq] = (str(event.kind), payload)
        self.sent.pop(event.seq - REPLAY_WINDOW, None)
        with self.lock:
            self.client.publish(self.topic("event", str(event.kind)), payload, qos=1)
            if self.client.want_write():  # the socket took only part (or a callback was running)
                self.gen.unwritten.add(self)


class LoadGenerator:
    def __init__(self, *, broker: str, gateways: int, units: int, rate: float, alert_fraction: float, count: int,
                 duration_s: float, name: str = "load", prefix: str = "pttbridge/v1", seed: int = 1,
                 protocol: str = "kenwood", alerts_out: Path | None = None) -> None:
        if not 1 <= gateways <= MAX_GATEWAYS:
            raise ValueError(f"--gateways: 1..{MAX_GATEWAYS}")
        if not gateways <= units <= MAX_UNITS:
            raise ValueError(f"--units: {gateways} (one per gateway) ..{MAX_UNITS}")
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"--count: 1..{MAX_COUNT}")
        if not 0 < duration_s <= MAX_DURATION_S:
            raise ValueError(f"--duration: up to {MAX_DURATION_S:.0f} s")
        if not 0 <= alert_fraction <= 1 or rate < 0:
            raise ValueError("--alert-fraction: 0..1; --rate: 0 (as fast as it goes) or more")
        self.host, self.port = loopback_broker(broker)
        self.prefix, self.rate, self.alert_fraction = prefix, rate, alert_fraction
        self.count, self.duration_s, self.protocol = count, duration_s, protocol
        self.alerts_out = alerts_out
        self.rng = random.Random(seed)
        self.gateways = [SimGateway(self, f"{name}-{i:04d}") for i in range(gateways)]
        self.units = [self._unit_name(u) for u in range(units)]
        lat0, lat1, lon0, lon1 = CITY
        self.where = [(self.rng.uniform(lat0, lat1), self.rng.uniform(lon0, lon1)) for _ in range(units)]
        self.report = Report(gateways=gateways, units=units)
        self._lock = threading.Lock()
        self._acks = 0  # every PUBACK, of states too
        self._stop = threading.Event()
        self.unwritten: set[SimGateway] = set()  # clients with bytes paho could not write yet
        self._io = threading.Thread(target=self._serve, name="loadgen-io", daemon=True)
        self._states = 0  # retained states published (QoS 1)

    @staticmethod
    def _unit_name(u: int) -> str:
        return f"fleetsync:{100 + u // 8000}-{1000 + u % 8000}"  # fleet 100.., unit 1000..8999

    def acked(self) -> None:
        with self._lock:
            self._acks += 1

    def state_sent(self) -> None:
        with self._lock:
            self._states += 1

    def events_acked(self) -> int:
        with self._lock:
            return max(0, self._acks - self._states)

    def replayed(self) -> None:
        with self._lock:
            self.report.replayed += 1

    def connect(self, timeout_s: float = 60.0) -> None:
        for gw in self.gateways:
            gw.client.connect(self.host, self.port, keepalive=60)  # the CONNACK comes through the I/O thread
            gw.sock().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the real gateway's
        self._io.start()
        deadline = time.monotonic() + timeout_s
        for gw in self.gateways:
            if not gw.connected.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"gateway {gw.name} got no CONNACK from {self.host}:{self.port}")

    def _serve(self) -> None:
        """The one I/O thread: reads (CONNACK, PUBACK, commands), writes what a publish left queued,
        keeps connections alive and reconnects a dropped one."""
        sel = selectors.DefaultSelector()
        for gw in self.gateways:
            sel.register(gw.sock(), selectors.EVENT_READ, gw)
        next_misc = 0.0
        while not self._stop.is_set():
            for key, _ in sel.select(0.02):
                gw = key.data
                with gw.lock:
                    rc = gw.client.loop_read()
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    sel.unregister(key.fileobj)
                    gw.connected.clear()
                elif gw.client.want_write():  # a callback published (a replay, the state on connecting)
                    self.unwritten.add(gw)
            while self.unwritten:
                gw = self.unwritten.pop()
                with gw.lock:
                    gw.client.loop_write()
                    if gw.client.want_write():
                        self.unwritten.add(gw)
                        break  # the socket is full: the broker reads it meanwhile
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + 1.0
                registered = {key.data for key in sel.get_map().values()}
                for gw in self.gateways:
                    with gw.lock:
                        gw.client.loop_misc()  # keepalive pings
                    if gw not in registered and not self._stop.is_set():
                        try:
                            with gw.lock:
                                gw.client.reconnect()
                            sel.register(gw.sock(), selectors.EVENT_READ, gw)
                        except OSError:
                            pass  # tried again in a second
        sel.close()

    def _event(self, i: int, alert_no: int | None) -> tuple[SimGateway, Event]:
        """Event number ``i`` of the stream (beacon, or alert number ``alert_no``)."""
        n_units = len(self.units)
        if alert_no is not None:
            u = (alert_no * 7919) % n_units if alert_no < n_units else self.rng.randrange(n_units)
        else:
            u = self.rng.randrange(n_units)
        gw = self.gateways[u % len(self.gateways)]
        lat, lon = self.where[u]
        course = self.rng.uniform(0, 360)
        speed = self.rng.uniform(0, 15)
        lat += speed * 10 * math.cos(math.radians(course)) / 111_000  # ten seconds of travel
        lon += speed * 10 * math.sin(math.radians(course)) / 96_000
        self.where[u] = (lat, lon)
        # Milliseconds, as Event.stamp's pass through the wire form leaves a gateway's times.
        now = datetime.fromtimestamp(round(time.time(), 3), UTC)
        position = Position(round(lat, 6), round(lon, 6), speed_mps=round(speed, 1), course_deg=round(course, 1),
                            fix_time=now, source=self.protocol)
        kind = Kind.ALERT if alert_no is not None else Kind.BEACON
        detail: dict[str, Any] = {"protocol": self.protocol, "status": "emergency", "rule": "emergency"} \
            if alert_no is not None else {"protocol": self.protocol, "sentence": "PKLSH"}
        gw.seq += 1
        # Built as Event.stamp builds it, without its check of the wire form (this is plain data): the
        # stamp's JSON round trip would be most of the generator's time.
        return gw, Event(id=uuid7(now), seq=gw.seq, gateway=gw.name, channel="patrol-1", kind=kind, time=now,
                         unit=self.units[u], position=position, detail=detail)

    def run(self) -> Report:
        self.connect()
        alerts_file = self.alerts_out.open("w") if self.alerts_out is not None else None
        r = self.report
        start = time.monotonic()
        r.first_publish = time.time()
        r.stopped_by = "count"
        alerts = 0
        try:
            for i in range(self.count):
                elapsed = time.monotonic() - start
                if elapsed >= self.duration_s:
                    r.stopped_by = "duration"
                    break
                if self.rate > 0:
                    ahead = i / self.rate - elapsed
                    if ahead > 0:
                        time.sleep(ahead)
                # Evenly spread: event i is an alert when the running total of the fraction passes a whole.
                is_alert = math.floor((i + 1) * self.alert_fraction) > math.floor(i * self.alert_fraction)
                gw, event = self._event(i, alerts if is_alert else None)
                published = time.time()
                gw.publish(event)
                r.sent += 1
                if is_alert:
                    alerts += 1
                    if alerts_file is not None:
                        alerts_file.write(json.dumps({"id": event.id, "gateway": gw.name, "unit": event.unit,
                                                      "seq": event.seq, "published": published}) + "\n")
            r.last_publish = time.time()
        finally:
            if alerts_file is not None:
                alerts_file.close()
        r.alerts = alerts
        span = r.last_publish - r.first_publish
        r.offered_rate = round(r.sent / span, 1) if span > 0 else 0.0
        r.per_gateway = {gw.name: gw.seq for gw in self.gateways if gw.seq}
        return r

    def finish(self, drain_s: float, linger_s: float = 0.0) -> None:
        """Wait for every PUBACK (up to ``drain_s``), publish each gateway's final state, stay
        ``linger_s`` seconds more (answering replay requests, as a gateway that lives on), disconnect."""
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and self.events_acked() < self.report.sent + self.report.replayed:
            time.sleep(0.05)
        for gw in self.gateways:
            if gw.connected.is_set():
                with gw.lock:
                    gw.publish_state(gw.state(0))  # everything published: the bridge can tell a lost tail
        time.sleep(0.5 + min(linger_s, MAX_DURATION_S))
        with self._lock:  # PUBACKs of replays are not counted as the stream's
            self.report.acknowledged = min(self.report.sent, self._acks - self._states - self.report.replayed)
        for gw in self.gateways:
            if gw.connected.is_set():
                with gw.lock:
                    gw.publish_state(gw.offline("stopped"))
        time.sleep(0.5)
        self._stop.set()
        if self._io.is_alive():
            self._io.join(5.0)
        for gw in self.gateways:
            if gw.client.socket() is not None:
                gw.client.loop_write()
                gw.client.disconnect()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://HOST:PORT, loopback only "
                    "(default %(default)s)")
    ap.add_argument("--gateways", type=int, default=200, help=f"simulated gateways, 1..{MAX_GATEWAYS} "
                    "(default %(default)s)")
    ap.add_argument("--units", type=int, default=5000, help="radio units, spread over the gateways "
                    "(default %(default)s)")
    ap.add_argument("--rate", type=float, default=1000.0, help="events per second in total; 0: as fast as it "
                    "goes (default %(default)s)")
    ap.add_argument("--alert-fraction", type=float, default=0.01, help="share of events that are alerts "
                    "(default %(default)s)")
    ap.add_argument("--count", type=int, default=10_000, help=f"stop after this many events, at most {MAX_COUNT:,} "
                    "(default %(default)s)")
    ap.add_argument("--duration", type=float, default=60.0, help=f"stop after this many seconds, at most "
                    f"{MAX_DURATION_S:.0f} (default %(default)s)")
    ap.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the last PUBACKs "
                    "(default %(default)s)")
    ap.add_argument("--linger", type=float, default=0.0, help="seconds to stay connected after the stream, "
                    "answering cmd/replay (default %(default)s)")
    ap.add_argument("--name", default="load", help="gateway names are NAME-0000, NAME-0001, ... "
                    "(default %(default)s)")
    ap.add_argument("--prefix", default="pttbridge/v1", help="topic prefix (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="random seed for units and positions")
    ap.add_argument("--alerts-out", type=Path, help="write one JSON line per alert: id, gateway, unit, seq, "
                    "published (Unix seconds)")
    args = ap.parse_args(argv)
    try:
        gen = LoadGenerator(broker=args.broker, gateways=args.gateways, units=args.units, rate=args.rate,
                            alert_fraction=args.alert_fraction, count=args.count, duration_s=args.duration,
                            name=args.name, prefix=args.prefix, seed=args.seed, alerts_out=args.alerts_out)
    except ValueError as exc:  # NotLoopback included
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    try:
        report = gen.run()
    finally:
        gen.finish(args.drain, args.linger)
    print(json.dumps(asdict(gen.report)))
    return 0 if gen.report.acknowledged >= report.sent else 1


if __name__ == "__main__":
    sys.exit(main())
