"""Secrets never reach a log: the MQTT password, the database password and cameras' credentials, with
every logger at DEBUG, through a real gateway, bridge and console link on the secure broker's password
listener, a real PostgreSQL, cameras whose evidence is fetched (and fails), and the CLI paths that read
the same configuration."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from secure_broker import Pki, Probe, SecureBroker
from sqlalchemy.engine import make_url
from support import SocatLink, caller_id, create_database, free_port, wait_until

import pttbridge
from bridge.service import Bridge
from config.schema import ConfigError, parse_config
from console.link import BridgeLink
from gateway.events import Event, Kind, Position, encode_event, uuid7
from gateway.runner import Gateway

MQTT_SECRET = "Mq7-secret-Xixing"
PG_SECRET = "Pg-secret-Binjiang"
CAM_QUERY_SECRET = "Cam-query-secret"
CAM_ENV_SECRET = "Cam-env-secret"
SECRETS = (MQTT_SECRET, PG_SECRET, CAM_QUERY_SECRET, CAM_ENV_SECRET)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_secret_reaches_the_log_of_gateway_bridge_console_or_cli(
    tmp_path: Path, pki: Pki, socat_link: SocatLink, postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = SecureBroker(tmp_path, pki, passwords={"gw-xixing-1": MQTT_SECRET, "bridge-center": MQTT_SECRET,
                                                    "console-desk-1": MQTT_SECRET})
    broker.start()
    monkeypatch.setenv("SITE_MQTT_PASSWORD", MQTT_SECRET)
    monkeypatch.setenv("DOME_CREDENTIALS", f"admin:{CAM_ENV_SECRET}")
    plain = create_database(postgres_admin_url, f"pttbridge_test_{uuid.uuid4().hex[:12]}")
    # The test server trusts loopback, so any password is accepted: what matters is where it shows.
    database = make_url(plain).set(password=PG_SECRET).render_as_string(hide_password=False)
    closed = free_port()  # nothing listens: every fetch fails, and failures are what get logged
    cameras = [
        {"id": "xixing-dome", "lat": 30.2095, "lon": 120.2107, "fov_deg": 360, "range_m": 500,
         "snapshot_url": f"http://127.0.0.1:{closed}/snap.jpg", "credentials_env": "DOME_CREDENTIALS",
         "stream_url": f"rtsp://127.0.0.1:{closed}/Streaming/Channels/101"},
        {"id": "xixi-wenyi-ne", "lat": 30.2096, "lon": 120.2108, "fov_deg": 360, "range_m": 500,
         "snapshot_url": f"http://127.0.0.1:{closed}/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin"
                         f"&pwd={CAM_QUERY_SECRET}"},
    ]

    def config(user: str, **more: Any) -> Any:
        mqtt = broker.password_config(user, "SITE_MQTT_PASSWORD")
        return parse_config({"data_dir": str(tmp_path / "data"), "mqtt": mqtt,
                             "bridge": {"name": "center", "database_url": database, "cameras": {"clip_s": 1}},
                             "cameras": cameras, **more})

    bridge = Bridge(config("bridge-center"))
    gateway = Gateway(config("gw-xixing-1", gateway={"name": "xixing-1", "outbox": str(tmp_path / "outbox.sqlite")},
                             channels=[{"name": "emergency-1", "drivers": [{"port": str(socat_link.radio),
                                                                            "protocol": "kenwood"}],
                                        "rules": [{"when": {"kind": "ptt"}, "kind": "alert"}]}]))
    console = BridgeLink(config("console-desk-1").mqtt, lambda _m: None)
    bridge.start()
    gateway.start()
    console.start()
    thief: Probe | None = None
    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected and console.connected, 15,
                   "everyone to connect with a password")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "the radio port")
        socat_link.write(caller_id(1))  # an alert without a position, from the password gateway
        # and one with a position in front of both cameras, from a certificate gateway: evidence is fetched
        thief = broker.client("gw-xixing-2").connected()
        now = datetime.now(UTC)
        thief.publish("gw/xixing-2/event/alert", encode_event(Event(
            id=uuid7(now), seq=1, gateway="xixing-2", channel="patrol-1", kind=Kind.ALERT, time=now, unit="mdc:77",
            position=Position(30.2095, 120.2107, source="nmea"), detail={"protocol": "test"})))
        store = bridge.store
        assert store is not None
        wait_until(lambda: len(store.open_incidents()) == 2, 15, "both alerts as incidents")
        placed = next(i for i in store.open_incidents() if i.gateway == "xixing-2")

        def fetches_failed() -> int:
            detail = store.incident_detail(placed.id)
            return sum(1 for h in detail.history if h.action == "evidence") if detail else 0

        wait_until(lambda: fetches_failed() >= 3, 30, "the snapshots and the clip to fail")
        detail = store.incident_detail(placed.id)
        assert detail is not None
        assert not leaked(" ".join(h.note or "" for h in detail.history))  # what consoles are shown
        console.send("ack", placed.id, "alice")
        wait_until(lambda: (i := store.incident(placed.id)) is not None and i.state == "acknowledged", 10, "the ack")
    finally:
        if thief is not None:
            thief.close()
        console.stop()
        gateway.stop()
        bridge.stop()
        broker.stop()
    assert "cmd=snapPicture2" in caplog.text and "xixing-dome" in caplog.text  # the fetches were logged ...
    assert not leaked(caplog.text)  # ... without their secrets

    # The CLI on the same configuration: the camera registry and the audit log read the database.
    site = tmp_path / "center.toml"
    site.write_text(f'[bridge]\ndatabase_url = "{database}"\n' + "".join(
        f'[[cameras]]\nid = "{c["id"]}"\nlat = {c["lat"]}\nlon = {c["lon"]}\nfov_deg = 360\n'
        f'snapshot_url = "{c["snapshot_url"]}"\n' for c in cameras))
    pttbridge.main(["-vv", "cameras", "-c", str(site), "list"])
    pttbridge.main(["-vv", "audit", "-c", str(site)])
    out = capsys.readouterr()
    assert "xixing-dome" in out.out and "alice" in out.out
    assert not leaked(out.out + out.err + caplog.text)


def test_a_camera_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = f"rtsp://admin:{CAM_ENV_SECRET}@10.0.0.3:554/Streaming/Channels/101"
    with pytest.raises(ConfigError) as refused:
        parse_config({"cameras": [{"id": "dome-1", "lat": 30.2, "lon": 120.2, "fov_deg": 360, "stream_url": url}]})
    assert "credentials_env" in str(refused.value) and not leaked(str(refused.value))
    csv = tmp_path / "cameras.csv"
    csv.write_text(f"id,lat,lon,fov_deg,stream_url\ndome-1,30.2,120.2,360,{url}\n")
    site = tmp_path / "center.toml"
    site.write_text(f'[bridge]\ndatabase_url = "sqlite:///{tmp_path / "bridge.sqlite"}"\n')
    with pytest.raises(SystemExit) as exited:
        pttbridge.main(["cameras", "-c", str(site), "import", str(csv)])
    assert "credentials_env" in str(exited.value.code) and not leaked(str(exited.value.code))
    assert not leaked(capsys.readouterr().err)
