"""The field side end to end against a real Mosquitto: frames on a pseudo-terminal -> gateway -> broker
-> subscriber, through broker outages and gateway crashes, losing nothing and keeping order."""

from __future__ import annotations

import array
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Listener, Mosquitto, SocatLink, caller_id, emergency_channel, wait_until

from config.schema import load_config
from gateway.events import decode_event
from gateway.runner import Gateway

ROOT = Path(__file__).parents[2]
PREFIX = "pttbridge/v1"


def write_config(tmp: Path, broker: Mosquitto, port: Path, *, name: str = "gw1") -> Path:
    cfg = tmp / "gateway.toml"
    head = f'[gateway]\nname = "{name}"\noutbox = "outbox.sqlite"\nstate_interval_s = 1\n'
    cfg.write_text(f'{head}\n[mqtt]\nurl = "{broker.url}"\n{emergency_channel(port)}')
    return cfg


def outbox_count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def first_arrivals(listener: Listener) -> list[dict[str, Any]]:
    """Events in arrival order with re-sent duplicates (same id) removed, as the bridge stores them."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for e in listener.events():
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out


def running(gateway: Gateway) -> Gateway:
    """Started, its port open and its broker connected (bytes sent to a port nobody has open are lost)."""
    gateway.start()
    wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "ports to open")
    wait_until(lambda: gateway.publisher.connected, 5, "gateway to connect")
    return gateway


@pytest.fixture
def listener(mosquitto: Mosquitto) -> Iterator[Listener]:
    lst = Listener(mosquitto.url, f"{PREFIX}/gw/#")
    wait_until(lambda: lst.client.is_connected(), 5, "listener to connect")
    yield lst
    lst.close()


def test_alerts_from_a_pty_arrive_exactly_as_sent(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener
) -> None:
    gateway = running(Gateway(load_config(write_config(tmp_path, mosquitto, socat_link.radio))))
    try:
        n = 200
        for i in range(n):
            socat_link.write(caller_id(i))
        wait_until(lambda: len(listener.events()) >= n, 15, f"{n} events")
        events = listener.events()
        assert len(events) == n  # nothing twice while nothing failed
        assert [e["seq"] for e in events] == list(range(1, n + 1))
        assert [e["unit"] for e in events] == [f"fleetsync:100-{1000 + i}" for i in range(n)]
        assert {e["kind"] for e in events} == {"alert"}
        assert all(e["detail"]["rule"] == "key-up on the emergency channel" for e in events)
        assert next(t for t, _, _ in listener.messages if "/event/" in t) == f"{PREFIX}/gw/gw1/event/alert"
        for _, payload, _ in listener.messages:  # every event payload is valid schema v1
            if b'"seq"' in payload:
                decode_event(payload)
        # The retained state says the gateway and its radio are up.
        def radio() -> dict[str, Any]:
            states = [s for s in listener.payloads("/gw/gw1/state") if s.get("radios")]
            return states[-1]["radios"]["emergency-1/kenwood"] if states else {}

        wait_until(lambda: radio().get("decoded") == n, 5, "the state to count every frame")
        assert radio()["state"] == "open" and radio()["rejected"] == 0
        assert listener.payloads("/gw/gw1/state")[-1]["online"] is True
    finally:
        gateway.stop()
    offline = listener.payloads("/gw/gw1/state")[-1]
    assert offline == {"online": False, "gateway": "gw1", "reason": "stopped"}


def test_broker_outage_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = running(Gateway(load_config(write_config(tmp_path, mosquitto, socat_link.radio))))
    try:
        for i in range(0, 30):
            socat_link.write(caller_id(i))
        mosquitto.stop()  # mid-stream: some of the 30 may still be in flight
        wait_until(lambda: not gateway.publisher.connected, 5, "gateway to notice")
        assert "lost the broker" in caplog.text and "events are kept in the outbox" in caplog.text
        for i in range(30, 60):  # the gateway keeps decoding and queueing
            socat_link.write(caller_id(i))
        wait_until(lambda: gateway.outbox.stats()["next_seq"] == 61, 5, "60 events in the outbox")
        assert gateway.outbox.stats()["pending"] >= 30
        mosquitto.start()
        wait_until(lambda: gateway.publisher.connected, 15, "gateway to reconnect")
        for i in range(60, 90):
            socat_link.write(caller_id(i))
        wait_until(lambda: len(first_arrivals(listener)) >= 90, 20, "90 distinct events")
        events = first_arrivals(listener)
        assert [e["seq"] for e in events] == list(range(1, 91))
        assert [e["unit"] for e in events] == [f"fleetsync:100-{1000 + i}" for i in range(90)]
        wait_until(lambda: gateway.outbox.stats()["pending"] == 0, 5, "outbox drained")
    finally:
        gateway.stop()


def start_gateway_process(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pttbridge", "-v", "gateway", "-c", str(cfg)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )


def test_gateway_sigkill_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener
) -> None:
    cfg = write_config(tmp_path, mosquitto, socat_link.radio)
    outbox = tmp_path / "outbox.sqlite"
    log = tmp_path / "gateway.log"
    proc = start_gateway_process(cfg, log)
    try:
        wait_until(lambda: "opened" in log.read_text(), 10, "gateway to open its port")
        for i in range(20):
            socat_link.write(caller_id(i))
        wait_until(lambda: len(listener.events()) >= 20, 10, "the first 20 events")
        # Broker away: the next 20 are decoded into the outbox but cannot be published ...
        mosquitto.stop()
        for i in range(20, 40):
            socat_link.write(caller_id(i))
        wait_until(lambda: outbox_count(outbox) >= 40, 10, "40 events in the outbox")
        # ... and the gateway dies hard with them unpublished.
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        mosquitto.start()
        proc = start_gateway_process(cfg, log)
        wait_until(lambda: log.read_text().count("opened") >= 2, 10, "gateway to come back")
        for i in range(40, 60):
            socat_link.write(caller_id(i))
        # And killed once more as soon as the last frame is decoded, with the broker up, then started again.
        wait_until(lambda: outbox_count(outbox) >= 60, 10, "60 events in the outbox")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        # The broker tells everyone, through the gateway's Last Will, that it is gone.
        lost = {"online": False, "gateway": "gw1", "reason": "connection lost"}
        wait_until(lambda: listener.payloads("/gw/gw1/state")[-1] == lost, 10, "the Last Will")
        proc = start_gateway_process(cfg, log)
        wait_until(lambda: len(first_arrivals(listener)) >= 60, 20, "60 distinct events")
        events = first_arrivals(listener)
        assert [e["seq"] for e in events] == list(range(1, 61))
        assert [e["unit"] for e in events] == [f"fleetsync:100-{1000 + i}" for i in range(60)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def radios_open(listener: Listener, gateway: str = "gw1") -> bool:
    states = [s for s in listener.payloads(f"/gw/{gateway}/state") if s.get("online")]
    return bool(states) and all(r["state"] == "open" for r in states[-1]["radios"].values())


def test_a_gateway_whose_log_nobody_reads_decodes_on_and_stops_on_sigterm(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener
) -> None:
    # Its stderr a pipe that is never read (a benchmark that read only the first lines, a stalled log
    # shipper): once the pipe is full, a log line must not hold up decoding, nor the stop after SIGTERM.
    cfg = write_config(tmp_path, mosquitto, socat_link.radio)
    outbox = tmp_path / "outbox.sqlite"
    unread, stderr = os.pipe()
    fcntl.fcntl(stderr, fcntl.F_SETPIPE_SZ, 4096)  # the smallest a pipe can be: full after a few dozen lines
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "-v", "gateway", "-c", str(cfg)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    os.close(stderr)
    try:
        wait_until(lambda: radios_open(listener), 10, "the gateway's port to open")
        frames = 150  # a log line each, 80 bytes or more: twice what the pipe holds
        for i in range(frames):
            socat_link.write(caller_id(i))
        pending = array.array("i", [0])
        wait_until(lambda: fcntl.ioctl(unread, termios.FIONREAD, pending) == 0 and pending[0] > 4096 - 200, 10,
                   "the unread log to fill the pipe")
        wait_until(lambda: outbox_count(outbox) == frames, 10, "every frame decoded, though nobody reads the log")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("the gateway did not stop within 10 s of SIGTERM")
        assert proc.returncode == 0
        with sqlite3.connect(outbox) as db:  # what it decoded is kept (published or not) for the next start
            assert [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")] == list(range(1, frames + 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(unread)


def test_replay_request_republishes_a_range(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener
) -> None:
    gateway = running(Gateway(load_config(write_config(tmp_path, mosquitto, socat_link.radio))))
    try:
        for i in range(10):
            socat_link.write(caller_id(i))
        wait_until(lambda: len(listener.events()) >= 10, 10, "10 events")
        listener.client.publish(f"{PREFIX}/gw/gw1/cmd/replay", json.dumps({"from_seq": 3, "to_seq": 5}), qos=1)
        wait_until(lambda: len(listener.events()) >= 13, 10, "3 replayed events")
        replayed = listener.events()[10:]
        assert [e["seq"] for e in replayed] == [3, 4, 5]
        assert replayed == listener.events()[2:5]  # the very same events, same ids
        listener.client.publish(f"{PREFIX}/gw/gw1/cmd/replay", b"garbage", qos=1)
        listener.client.publish(f"{PREFIX}/gw/gw1/cmd/replay", json.dumps({"from_seq": 5, "to_seq": 2}), qos=1)
        socat_link.write(caller_id(10))  # still alive and well after bad commands
        wait_until(lambda: len(listener.events()) >= 14, 10, "the next event")
        assert listener.events()[-1]["seq"] == 11
    finally:
        gateway.stop()


def test_port_unplugged_and_plugged_back(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, listener: Listener
) -> None:
    gateway = running(Gateway(load_config(write_config(tmp_path, mosquitto, socat_link.radio))))
    driver = gateway.drivers[0][1]
    try:
        socat_link.write(caller_id(1))
        wait_until(lambda: len(listener.events()) >= 1, 10, "first event")
        socat_link.unplug()
        wait_until(lambda: driver.snapshot()["state"] == "down", 5, "the driver to see the port gone")
        assert driver.snapshot()["last_error"]
        socat_link.plug()
        wait_until(lambda: driver.snapshot()["state"] == "open", 10, "the driver to reopen")
        socat_link.write(caller_id(2))
        wait_until(lambda: len(listener.events()) >= 2, 10, "event after replug")
        assert [e["unit"] for e in listener.events()] == ["fleetsync:100-1001", "fleetsync:100-1002"]
        downs = [s for s in listener.payloads("/gw/gw1/state") if s.get("radios")]
        assert any(s["radios"]["emergency-1/kenwood"]["state"] == "down" for s in downs)
    finally:
        gateway.stop()


def test_an_alert_is_handed_to_the_broker_before_a_backlog_of_beacons(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    """3,000 beacons wait in the outbox of a gateway that could not reach the broker, then an emergency is
    decoded: it goes out with the first window, not after the 3,000; the bridge orders by seq."""
    from datetime import UTC, datetime

    from config.schema import GatewayConfig, MqttConfig
    from gateway.events import Decoded, Kind, Position
    from gateway.outbox import Outbox
    from gateway.publisher import WINDOW, OutboxPublisher

    outbox = Outbox(tmp_path / "outbox.sqlite", "gw-busy")
    now = datetime.now(UTC)
    for i in range(3000):
        outbox.append(Decoded(Kind.BEACON, now, unit=f"mdc:{1000 + i % 50}",
                              position=Position(30.27 + i * 1e-6, 120.1)), "patrol-1")
    alert = outbox.append(Decoded(Kind.ALERT, now, unit="mdc:7001", detail={"emergency": True}), "patrol-1")
    gateway = GatewayConfig(name="gw-busy", publish_rate=100_000)  # the alert's place, not the rate, is tested
    publisher = OutboxPublisher(outbox, MqttConfig(url=mosquitto.url), gateway, dict)
    publisher.start()
    try:
        wait_until(lambda: len(first_arrivals(listener)) == 3001, 60, "the backlog and the alert")
    finally:
        publisher.stop()
        outbox.close()
    arrived = first_arrivals(listener)
    position = next(i for i, e in enumerate(arrived) if e["id"] == alert.id)
    assert position <= WINDOW, f"the alert came {position}th, behind {position} beacons"
    beacons = [e["seq"] for e in arrived if e["kind"] == "beacon"]
    assert beacons == sorted(beacons)  # everything else keeps its order


def test_a_flooding_radio_is_held_to_the_gateway_rate_and_its_alerts_are_not(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    """A radio that chatters fills the outbox faster than ``publish_rate``: the rest waits there (nothing is
    lost), while an alert decoded meanwhile goes at once."""
    import time
    from datetime import UTC, datetime

    from config.schema import GatewayConfig, MqttConfig
    from gateway.events import Decoded, Kind
    from gateway.outbox import Outbox
    from gateway.publisher import OutboxPublisher

    rate, n = 50.0, 400
    outbox = Outbox(tmp_path / "outbox.sqlite", "gw-chatty")
    now = datetime.now(UTC)
    for i in range(n):
        outbox.append(Decoded(Kind.PTT, now, unit=f"fleetsync:100-{1000 + i % 9}"), "patrol-1")
    publisher = OutboxPublisher(outbox, MqttConfig(url=mosquitto.url),
                                GatewayConfig(name="gw-chatty", publish_rate=rate), dict)
    started = time.monotonic()
    publisher.start()
    try:
        wait_until(lambda: len(first_arrivals(listener)) >= 60, 30, "the first second's worth and more")
        alert = outbox.append(Decoded(Kind.ALERT, now, unit="fleetsync:100-1001"), "patrol-1")
        publisher.wake()
        wait_until(lambda: any(e["id"] == alert.id for e in first_arrivals(listener)), 10, "the alert")
        elapsed = time.monotonic() - started
        beacons = sum(e["kind"] == "ptt" for e in first_arrivals(listener))
        # Never more than a second's burst plus the rate since the start, however fast the machine.
        assert beacons <= rate * (1 + elapsed) + 1, (beacons, elapsed)
        assert beacons < n, "the alert went out while the flood was still waiting in the outbox"
        wait_until(lambda: len(first_arrivals(listener)) == n + 1, 60, "the whole flood, in the end")
    finally:
        publisher.stop()
        outbox.close()
    seqs = [e["seq"] for e in first_arrivals(listener) if e["kind"] == "ptt"]
    assert seqs == list(range(1, n + 1))
