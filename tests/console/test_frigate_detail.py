"""A dispatcher sees whom Frigate recognised: an emergency in a Frigate camera's view, and the console's
incident detail (headless, against a real Mosquitto, bridge and database) shows the person's name and
the licence plate with their scores, and the plate read later without being asked."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rig import CountingApp, run, screenshot, until
from support import Mosquitto, free_port, wait_until

from bridge.service import Bridge
from config.schema import parse_config
from console.screens.incident_detail import IncidentDetailScreen
from gateway.events import Event, Kind, Position, encode_event, uuid7

DATA = Path(__file__).parents[1] / "data" / "frigate"
LAT, LON = 30.2095, 120.2107
M_LON = 1 / 96_190  # degrees of longitude per metre here


def test_the_incident_detail_shows_the_name_and_plate_frigate_recognised(tmp_path: Path, mosquitto: Mosquitto,
                                                                        database_url: str) -> None:
    config = parse_config({
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": database_url, "reannounce_s": 600,
                   "cameras": {"frigate_cameras": {"front_door": "station-door"}}},
        "cameras": [{"id": "station-door", "name": "Station door", "lat": LAT, "lon": LON, "heading_deg": 90,
                     "fov_deg": 70}],
    })
    bridge = Bridge(config)
    bridge.start()
    nvr = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-frigate-{free_port()}")
    nvr.connect("127.0.0.1", mosquitto.port)
    nvr.loop_start()

    def publish(topic: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        nvr.publish(topic, payload, qos=1).wait_for_publish(5)

    console = CountingApp(config, "alice")

    async def scenario() -> None:
        store = bridge.store
        assert store is not None
        async with console.run_test(size=(160, 40)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            # Frigate's documented update: John Smith recognised (0.79), plate ABC12345 read (0.933451).
            seen = json.loads((DATA / "events-update-doc-current.json").read_bytes())
            seen["after"]["start_time"] = time.time()
            publish("frigate/events", seen)
            await until(pilot, lambda: bridge.counts["detections"] == 1, "the detection stored")
            now = datetime.now(UTC)
            alert = Event(id=uuid7(now), seq=1, gateway="gw1", channel="patrol-1", kind=Kind.ALERT, time=now,
                          unit="mdc:1234", position=Position(LAT, LON + 50 * M_LON, fix_time=now, source="nmea"),
                          detail={"protocol": "mdc1200"})
            publish("pttbridge/v1/gw/gw1/event/alert", encode_event(alert))
            await until(pilot, lambda: console.dispatch.queue.texts(), "the alert in the console")
            [incident] = store.open_incidents()
            console.open_detail(incident.id)
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the detail screen")
            screen = console.screen
            assert isinstance(screen, IncidentDetailScreen)

            def detected() -> list[str]:
                return [r["detail"] for r in screen.cameras.texts() if r["what"] == "detected"]

            await until(pilot, detected, "the detection row")
            [row] = detected()
            assert "John Smith (0.79)" in row and "plate ABC12345 (0.93)" in row
            assert "14 km/h heading 180° in the picture" in row and "in yard, driveway" in row
            assert {"what": "camera", "name": "Station door"}.items() <= next(
                r for r in screen.cameras.texts() if r["what"] == "camera").items()
            # Frigate reads the plate again, better: the detail follows without a key pressed.
            lpr = json.loads((DATA / "tracked-object-update-lpr.json").read_bytes())
            lpr.update(camera="front_door", plate="ZJ-A12345", score=0.97, name=None)
            publish("frigate/tracked_object_update", lpr)
            await until(pilot, lambda: any("plate ZJ-A12345 (0.97)" in r for r in detected()), "the new plate shown")
            screenshot(console, tmp_path, "console-160x40-incident-frigate")

    try:
        wait_until(lambda: bridge.connected, 10, "the bridge to connect")
        run(scenario())
    finally:
        nvr.loop_stop()
        nvr.disconnect()
        bridge.stop()
