"""The bridge's camera feeds against a real Mosquitto: Frigate's documented events into one detection with
its links, an unmapped Frigate camera counted, and a vehicle's camera following its unit's beacons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from sqlalchemy import select
from support import Mosquitto, free_port, wait_until

from bridge.models import DetectionRow
from bridge.service import Bridge
from config.schema import parse_config
from gateway.events import Event, Kind, Position, encode_event, uuid7

DATA = Path(__file__).parents[2] / "data" / "frigate"
LAT, LON = 30.2095, 120.2107


def test_frigate_events_and_a_vehicle_camera(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = parse_config({
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}", "cameras": {
            "frigate_url": "http://frigate.local:5000", "frigate_cameras": {"front_door": "station-door"}}},
        "cameras": [
            {"id": "station-door", "lat": LAT, "lon": LON, "heading_deg": 90, "fov_deg": 70},
            {"id": "car-7-360", "kind": "vehicle", "unit": "mdc:0007", "lat": 30.0, "lon": 120.0, "fov_deg": 360,
             "range_m": 60},
        ],
    })
    bridge = Bridge(config)
    bridge.start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-frigate-{free_port()}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        wait_until(lambda: bridge.connected and client.is_connected(), 10, "the bridge and the camera feed to connect")
        for name in ("events-new.json", "events-update-doc-0065693.json", "events-end.json"):
            client.publish("frigate/events", (DATA / name).read_bytes(), qos=1).wait_for_publish(5)
        stranger = json.loads((DATA / "events-new.json").read_text())
        stranger["after"]["camera"] = "back_yard"
        client.publish("frigate/events", json.dumps(stranger), qos=1).wait_for_publish(5)
        wait_until(lambda: bridge.counts["camera_unknown"] == 1, 10, "the unmapped camera counted")
        assert bridge.counts["detections"] == 3
        store = bridge.store
        assert store is not None
        with store.engine.connect() as conn:
            [row] = conn.execute(select(DetectionRow)).all()
        assert row.camera == "station-door" and row.label == "person" and row.phase == "end"
        assert row.snapshot_url == "http://frigate.local:5000/api/events/1607123955.475377-mxklsc/snapshot.jpg"
        assert (row.lat, row.lon) == (LAT, LON)  # where the camera is

        # Patrol car 7 drives to the station: its 360-degree camera goes with it.
        now = datetime.now(UTC)
        beacon = Event(id=uuid7(now), seq=1, gateway="gw1", channel="car", kind=Kind.BEACON, time=now,
                       unit="mdc:0007", position=Position(LAT + 0.0002, LON, course_deg=180.0, fix_time=now,
                                                          source="nmea"), detail={"protocol": "nmea"})
        client.publish("pttbridge/v1/gw/gw1/event/beacon", encode_event(beacon), qos=1).wait_for_publish(5)
        wait_until(lambda: bridge.cameras.get("car-7-360").lat != 30.0, 10, "the car's camera to move")  # type: ignore[union-attr]
        assert {s.camera.id for s in bridge.cameras.seeing(LAT, LON)} == {"car-7-360", "station-door"}
        assert bridge.cameras.seeing(LAT + 0.01, LON) == []  # where the car was not
    finally:
        client.loop_stop()
        client.disconnect()
        bridge.stop()
