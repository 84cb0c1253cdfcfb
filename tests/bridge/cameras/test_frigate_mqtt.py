"""Frigate over MQTT only, against a real Mosquitto and both databases: an emergency seen by a Frigate
camera gets the detection with the name and plate Frigate recognised, a plate read later (and a face
recognised before its detection came) enrich it, the snapshots Frigate pushes become the incident's
evidence with their SHA-256 (once each; not the stale retained one), and garbage between them is
refused and counted without losing what comes after it."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from camera_server import GOOD_JPEG, GOOD_PNG
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from support import Listener, Mosquitto, free_port, wait_until

from bridge.models import DetectionRow
from bridge.service import Bridge
from config.schema import parse_config
from gateway.events import Event, Kind, Position, encode_event, uuid7

DATA = Path(__file__).parents[2] / "data" / "frigate"
LAT, LON = 30.2095, 120.2107
M_LON = 1 / 96_190  # degrees of longitude per metre here
# The same picture with a JPEG comment segment (COM, ITU-T T.81 B.2.4.5) after SOI: other bytes, other hash.
OTHER_JPEG = GOOD_JPEG[:2] + b"\xff\xfe\x00\x06next" + GOOD_JPEG[2:]
STALE_JPEG = GOOD_JPEG[:2] + b"\xff\xfe\x00\x07stale" + GOOD_JPEG[2:]
FRESH_JPEG = GOOD_JPEG[:2] + b"\xff\xfe\x00\x07fresh" + GOOD_JPEG[2:]


def frigate_event(kind: str, object_id: str, **after: Any) -> bytes:
    msg = json.loads((DATA / "events-update-doc-current.json").read_bytes())
    msg["type"] = kind
    msg["after"].update(id=object_id, start_time=time.time(), **after)
    return json.dumps(msg).encode()


def update(kind: str, object_id: str, **fields: Any) -> bytes:
    msg = json.loads((DATA / f"tracked-object-update-{kind}.json").read_bytes())
    msg.update(id=object_id, camera="front_door", **fields)
    return json.dumps(msg).encode()


def test_frigate_events_updates_and_snapshots_reach_the_incident(tmp_path: Path, mosquitto: Mosquitto,
                                                                database_url: str) -> None:
    config = parse_config({
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": database_url, "reannounce_s": 600,
                   "cameras": {"frigate_cameras": {"front_door": "station-door"}, "frigate_snapshots": 5}},
        "cameras": [{"id": "station-door", "lat": LAT, "lon": LON, "heading_deg": 90, "fov_deg": 70}],
    })
    nvr = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-frigate-{free_port()}")
    nvr.connect("127.0.0.1", mosquitto.port)
    nvr.loop_start()

    def publish(topic: str, payload: bytes, *, retain: bool = False) -> None:
        nvr.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    bridge = Bridge(config)
    bridge.start()
    consoles = Listener(mosquitto.url, "pttbridge/v1/bridge/incident/+")
    try:
        wait_until(lambda: bridge.connected, 10, "the bridge to connect")
        store, cams = bridge.store, bridge.camera_store
        assert store is not None and cams is not None

        # John Smith walks in front of the station door: Frigate recognises him.
        publish("frigate/events", frigate_event("new", "obj-john"))
        wait_until(lambda: bridge.counts["detections"] == 1, 10, "the detection stored")
        # Officer 1234 presses the emergency button 50 m east, in the door camera's view.
        now = datetime.now(UTC)
        alert = Event(id=uuid7(now), seq=1, gateway="gw1", channel="patrol-1", kind=Kind.ALERT, time=now,
                      unit="mdc:1234", position=Position(LAT, LON + 50 * M_LON, fix_time=now, source="nmea"),
                      detail={"protocol": "mdc1200"})
        publish("pttbridge/v1/gw/gw1/event/alert", encode_event(alert))
        wait_until(lambda: len(store.open_incidents()) == 1, 10, "the incident")
        [incident] = store.open_incidents()

        def shown() -> dict[str, Any] | None:
            detail = store.incident_detail(incident.id)
            if detail is None or detail.correlation is None or not detail.correlation.detections:
                return None
            return detail.correlation.detections[0][0].to_json()

        wait_until(lambda: shown() is not None, 10, "the detection attached to the incident")
        d = shown()
        assert d is not None
        assert (d["sub_label"], d["sub_label_score"], d["plate"], d["plate_score"]) == (
            "John Smith", 0.79, "ABC12345", 0.933451)
        assert d["box"] == [432, 496, 544, 854] and d["stationary"] is False and d["end_time"] is None
        assert (d["speed_kmh"], d["avg_speed_kmh"], d["direction_deg"]) == (0.77, 14.31, 180.0)
        assert d["zones"] == ["yard", "driveway"]

        # The plate is read again, better; the consoles hear of it with the incident.
        publish("frigate/tracked_object_update", update("lpr", "obj-john", plate="ZJ-A12345", score=0.97))
        wait_until(lambda: any(det["plate"] == "ZJ-A12345" for body in consoles.payloads()
                               for det in body.get("detections", [])), 10, "the new plate announced")
        announced = [b for b in consoles.payloads() if b.get("change") == "detection"][-1]
        assert announced["id"] == incident.id
        assert announced["detections"][0]["sub_label"] == "John's Car"  # the plate's known name

        # A face is recognised before Frigate's event of that person came: held, then applied.
        publish("frigate/tracked_object_update", update("face", "obj-early", name="Li Wei", score=0.91))
        wait_until(lambda: bridge.counts["frigate_updates"] == 2, 10, "the face update taken")
        assert cams.held() == 1
        publish("frigate/events", frigate_event("new", "obj-early", sub_label=None,
                                                recognized_license_plate=None))
        wait_until(lambda: bridge.counts["detections"] == 2, 10, "the second detection")
        with store.engine.connect() as conn:
            face = conn.execute(select(DetectionRow.face, DetectionRow.face_score)
                                .where(DetectionRow.source_id == "obj-early")).one()
        assert tuple(face) == ("Li Wei", 0.91) and cams.held() == 0

        # Snapshots: garbage around them, each kind refused and counted, the good ones kept once each.
        publish("frigate/front_door/person/snapshot", GOOD_PNG)  # not a JPEG
        publish("frigate/front_door/person/snapshot", GOOD_JPEG[:-9])  # cut short
        publish("frigate/back_yard/person/snapshot", GOOD_JPEG)  # a camera nobody mapped
        publish("frigate/tracked_object_update", b"\x00not json")
        publish("frigate/front_door/person/snapshot", GOOD_JPEG)
        publish("frigate/front_door/person/snapshot", GOOD_JPEG)  # Frigate publishes the best one again
        publish("frigate/front_door/car/snapshot", OTHER_JPEG)
        wait_until(lambda: bridge.counts["frigate_snapshots"] == 3, 10, "the good snapshots taken")
        assert bridge.counts["camera_rejected"] == 3 and bridge.counts["camera_unknown"] == 1

        def evidence() -> list[dict[str, Any]]:
            detail = store.incident_detail(incident.id)
            assert detail is not None and detail.correlation is not None
            return [e.to_json() for e in detail.correlation.evidence]

        wait_until(lambda: len(evidence()) == 2, 10, "two pieces of evidence")
        assert [(e["kind"], e["camera"], e["content_type"], e["sha256"], e["source"]) for e in evidence()] == [
            ("snapshot", "station-door", "image/jpeg", hashlib.sha256(GOOD_JPEG).hexdigest(),
             "mqtt:frigate/front_door/person/snapshot"),
            ("snapshot", "station-door", "image/jpeg", hashlib.sha256(OTHER_JPEG).hexdigest(),
             "mqtt:frigate/front_door/car/snapshot")]
        assert cams.evidence_data(evidence()[0]["id"]) == ("image/jpeg", GOOD_JPEG)
        detail = store.incident_detail(incident.id)
        assert detail is not None
        notes = [h.note or "" for h in detail.history if h.action == "evidence"]
        assert notes[0] == (f"snapshot from station-door: {len(GOOD_JPEG)} bytes, sha256 "
                            f"{hashlib.sha256(GOOD_JPEG).hexdigest()} (Frigate, person)")
        wait_until(lambda: any(len(b.get("evidence", [])) == 2 for b in consoles.payloads()), 10,
                   "the evidence announced")

        # Frigate's snapshots are retained: a bridge subscribing anew is handed the last one, an older
        # object's picture, which is no evidence of this incident; what comes after it is.
        bridge.stop()
        publish("frigate/front_door/person/snapshot", STALE_JPEG, retain=True)
        bridge = Bridge(config.model_copy(update={"bridge": config.bridge.model_copy(update={"name": "other"})}))
        bridge.start()
        wait_until(lambda: bridge.counts["frigate_snapshots_retained"] == 1, 10, "the retained snapshot handed over")
        publish("frigate/front_door/person/snapshot", FRESH_JPEG)
        wait_until(lambda: len(evidence()) == 3, 10, "the fresh snapshot kept")
        assert [e["sha256"] for e in evidence()][2] == hashlib.sha256(FRESH_JPEG).hexdigest()
        assert bridge.counts["frigate_snapshots"] == 1  # the fresh one only
    finally:
        consoles.close()
        nvr.loop_stop()
        nvr.disconnect()
        bridge.stop()
