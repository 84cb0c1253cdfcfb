"""Cameras end to end, every part real: camera detections on MQTT, a radio's emergency on a pty -> gateway
-> Mosquitto -> bridge: the incident gets the cameras that see the officer and what they detected there,
evidence is fetched from a real camera web server (one slow, one hanging) without holding the incident
up, a street event opens its own incident with the nearest officer suggested, and the dispatcher sees it
all in the console's incident detail."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rig import CountingApp, pklds_emergency, run, screenshot, until
from support import CameraServer, Mosquitto, SocatLink, free_port, site_config, wait_until

from bridge.service import Bridge
from config.schema import load_config
from console.screens.evidence import EvidenceScreen
from console.screens.incident_detail import IncidentDetailScreen
from gateway.runner import Gateway

# The emergency comes from 30.2095 N, 120.2107 E (pklds_emergency's default position).
LAT, LON = 30.2095, 120.2107
M_LAT, M_LON = 1 / 111_320, 1 / 96_190  # degrees per metre here


def cameras_toml(server: CameraServer) -> str:
    south, east = LAT - 60 * M_LAT, LON + 100 * M_LON
    return f"""
[bridge.cameras]
window_s = 300
near_m = 200
best = 3
categories = {{ street_stall = {{ min_score = 0.5 }} }}

[[cameras]]
id = "cam-a"
name = "Xixi Rd south, looking north"
lat = {south}
lon = {LON}
heading_deg = 0
fov_deg = 60
range_m = 150
stream_url = "rtsp://127.0.0.1:1/stream"
snapshot_url = "{server.url('/slow.jpg?s=2')}"

[[cameras]]
id = "cam-b"
name = "Xixi Rd south, looking south"
lat = {south}
lon = {LON}
heading_deg = 180
fov_deg = 60
range_m = 150
snapshot_url = "{server.url('/good.jpg')}"

[[cameras]]
id = "cam-c"
name = "Wenyi Rd dome"
lat = {LAT}
lon = {east}
fov_deg = 360
range_m = 150
snapshot_url = "{server.url('/hang')}"

[[cameras]]
id = "cam-far"
name = "across the river"
lat = {LAT + 2000 * M_LAT}
lon = {LON}
heading_deg = 180
fov_deg = 90
range_m = 150
"""


def test_an_alert_gets_its_cameras_detections_and_evidence_and_a_street_event_its_officer(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink
) -> None:
    server = CameraServer(tmp_path)
    cfg = site_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path / 'bridge.sqlite'}", socat_link.radio,
                      bridge={"reannounce_s": 600})
    cfg.write_text(cfg.read_text() + cameras_toml(server))
    config = load_config(cfg)
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    cams = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-cameras-{free_port()}")
    cams.connect("127.0.0.1", mosquitto.port)
    cams.loop_start()

    def detect(camera: str, body: dict[str, object]) -> None:
        cams.publish(f"pttbridge/v1/cam/{camera}/event", json.dumps(body), qos=1).wait_for_publish(5)

    console = CountingApp(config, "alice")

    async def scenario() -> None:
        store = bridge.store
        assert store is not None
        async with console.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            # Cameras saw things before the emergency: near it, and far away; and a camera nobody registered.
            detect("cam-a", {"label": "person", "score": 0.91})
            detect("cam-far", {"label": "car", "score": 0.8})
            detect("cam-zz", {"label": "person", "score": 0.5})
            detect("cam-a", {"label": "person", "score": "high"})  # garbage from a registered camera
            await until(pilot, lambda: bridge.counts["camera_unknown"] == 1 and bridge.counts["camera_rejected"] == 1,
                        "the unknown camera and the garbage counted")
            assert bridge.counts["detections"] == 2  # the two good ones, stored

            began = time.monotonic()
            socat_link.write(pklds_emergency(1001))  # the officer's emergency button, with his GPS position
            await until(pilot, lambda: console.dispatch.queue.texts(), "the alert in the console")
            # The incident is there at once: the slow and the hanging camera servers hold nothing up.
            assert time.monotonic() - began < 2.0
            [incident] = store.open_incidents()
            detail = store.incident_detail(incident.id)
            assert detail is not None and detail.correlation is not None
            assert {c.camera_id for c in detail.correlation.cameras} == {"cam-a", "cam-c"}  # not b, not far
            assert [(d.camera, d.label) for d, _ in detail.correlation.detections] == [("cam-a", "person")]
            assert detail.correlation.evidence == []

            # Evidence comes when the cameras answer: cam-a's snapshot after 2 s, cam-c never.
            def histories() -> list[str]:
                d = store.incident_detail(incident.id)
                return [h.note or "" for h in d.history if h.action == "evidence"] if d else []

            await until(pilot, lambda: len(histories()) >= 3, "evidence and its failures", 30)
            notes = histories()
            assert any(n.startswith("snapshot from cam-a: ") and "sha256" in n for n in notes)
            assert any(n.startswith("snapshot from cam-c failed: ") for n in notes)
            assert any(n.startswith("clip from cam-a failed: ") for n in notes)  # no RTSP server at that address

            # A street stall turns up at cam-b: an incident of its own, with the officer nearby suggested.
            detect("cam-b", {"label": "street stall", "score": 0.8})
            await until(pilot, lambda: len(store.open_incidents()) == 2, "the street-event incident")
            # The incident is stored first, its suggested units just after (a transaction of their own).
            await until(pilot, lambda: any(i.suggested for i in store.open_incidents() if i.category == "street_stall"),
                        "the suggested units")
            stall = next(i for i in store.open_incidents() if i.category == "street_stall")
            assert stall.unit is None and stall.channel == "cam-b"
            assert [u["unit"] for u in stall.suggested] == ["fleetsync:100-1001"]
            assert 50 < stall.suggested[0]["distance_m"] < 70

            # The dispatcher opens the emergency's detail: cameras, what they saw, the evidence.
            await until(pilot, lambda: len(console.dispatch.queue.texts()) == 2, "both in the queue")
            console.open_detail(incident.id)
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the detail screen")
            screen = console.screen
            assert isinstance(screen, IncidentDetailScreen)
            await until(pilot, lambda: any(r["what"] == "snapshot" for r in screen.cameras.texts()), "evidence row")
            rows = {(r["what"], r["name"]) for r in screen.cameras.texts()}
            assert {("camera", "Xixi Rd south, looking north"), ("camera", "Wenyi Rd dome"),
                    ("detected", "person (cam-a)"), ("snapshot", "cam-a")} <= rows
            assert not any("looking south" in name or "river" in name for _, name in rows)
            screenshot(console, tmp_path, "console-120x40-incident-cameras")
            # The snapshot itself, drawn in the terminal: cam-a's mid-grey test picture.
            await pilot.press("v")
            await until(pilot, lambda: isinstance(console.screen, EvidenceScreen), "the evidence screen")
            evidence = console.screen
            assert isinstance(evidence, EvidenceScreen)
            await until(pilot, lambda: bool(evidence.drawn), "the picture drawn")
            style = evidence.drawn[0].spans[0].style
            assert str(evidence.drawn[0])[0] == "▀" and style.color.triplet == (128, 128, 128)  # type: ignore[union-attr]
            await pilot.press("escape", "escape")
            console.open_detail(stall.id)
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen)
                        and console.screen.incident_id == stall.id, "the stall's detail")
            stall_screen = console.screen
            assert isinstance(stall_screen, IncidentDetailScreen)
            await until(pilot, lambda: any(r["what"] == "send" for r in stall_screen.cameras.texts()), "suggestion")
            # The dispatcher sends the suggested officer: one key, the first suggestion, enter.
            await pilot.press("s")
            await until(pilot, lambda: type(console.screen).__name__ == "AssignScreen", "the send dialog")
            await pilot.press("enter")
            await until(pilot, lambda: (i := store.incident(stall.id)) is not None
                        and i.assigned_unit == "fleetsync:100-1001", "the unit sent, in the database")
            assert store.incident(stall.id).state == "acknowledged"  # type: ignore[union-attr]

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port open")
        run(scenario())
    finally:
        cams.loop_stop()
        cams.disconnect()
        gateway.stop()
        bridge.stop()
        server.stop()
