"""Incidents and cameras in storage (SQLite and PostgreSQL): time limits and escalation, street-event
incidents, the nearest units, incidents following their unit, detections around a place."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bridge.cameras.correlation import CameraStore
from bridge.cameras.evidence import Evidence
from bridge.cameras.feeds import Detection, ObjectUpdate
from bridge.cameras.geometry import Camera, sees
from bridge.cameras.registry import CameraRegistry
from bridge.store import IncidentError, Store
from config.schema import CameraConfig
from gateway.events import Event, Kind, Position, uuid7

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)
LAT, LON = 30.2095, 120.2107
M_LAT = 1 / 111_320


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, incident_window_s=600, limits={"alert": (60, 600), "street_stall": (None, 3600)})
    yield s
    s.close()


def event(kind: Kind, unit: str, at: float, seq: int, position: Position | None = None) -> Event:
    t = T0 + timedelta(seconds=at)
    return Event(id=uuid7(t), seq=seq, gateway="gw1", channel="patrol-1", kind=kind, time=t, unit=unit,
                 position=position, detail={"protocol": "test"})


def test_an_incident_not_acknowledged_in_time_is_escalated_once_per_limit(store: Store) -> None:
    [(incident, _)] = store.ingest([event(Kind.ALERT, "mdc:1234", 0, 1)]).incidents
    assert incident.ack_due == T0 + timedelta(seconds=60) and incident.resolve_due == T0 + timedelta(seconds=600)
    assert store.escalate_due(T0 + timedelta(seconds=59)) == []
    [late] = store.escalate_due(T0 + timedelta(seconds=61))
    assert late.escalated == "ack" and late.to_json()["escalated"] == "ack"
    assert store.escalate_due(T0 + timedelta(seconds=62)) == []  # once
    store.acknowledge(incident.id, "alice")
    [later] = store.escalate_due(T0 + timedelta(seconds=601))
    assert later.escalated == "resolve"
    assert store.escalate_due(T0 + timedelta(seconds=700)) == []
    detail = store.incident_detail(incident.id)
    assert detail is not None
    assert [h.note for h in detail.history if h.action == "escalated"] == [
        "not acknowledged within 60 s", "not resolved within 600 s"]


def test_an_acknowledged_or_resolved_incident_is_not_escalated_for_acknowledgement(store: Store) -> None:
    [(a, _)] = store.ingest([event(Kind.ALERT, "mdc:1", 0, 1)]).incidents
    [(b, _)] = store.ingest([event(Kind.ALERT, "mdc:2", 0, 2)]).incidents
    store.acknowledge(a.id, "alice")
    store.resolve(b.id, "bob", "handled")
    assert store.escalate_due(T0 + timedelta(seconds=61)) == []


def test_a_dispatcher_sends_a_unit_which_acknowledges_the_incident(store: Store) -> None:
    [(incident, _)] = store.ingest([event(Kind.ALERT, "mdc:1234", 0, 1)]).incidents
    sent = store.assign(incident.id, "alice", "mdc:0042")
    assert sent.assigned_unit == "mdc:0042" and sent.state == "acknowledged" and sent.acknowledged_by == "alice"
    assert sent.to_json()["assigned_unit"] == "mdc:0042"
    detail = store.incident_detail(incident.id)
    assert detail is not None
    assert [(h.actor, h.action, h.note) for h in detail.history][-2:] == [
        ("alice", "acknowledged", None), ("alice", "assigned", "mdc:0042")]
    store.resolve(incident.id, "bob", "handled")
    with pytest.raises(IncidentError, match="resolved; it cannot be assigned a unit"):
        store.assign(incident.id, "alice", "mdc:0043")
    with pytest.raises(IncidentError, match="unit: expected"):
        store.assign(incident.id, "alice", " ")


def test_street_events_open_one_incident_per_category_and_camera(store: Store) -> None:
    first, change = store.open_street_incident("street_stall", "cam-b", "street_stall", T0, LAT, LON, 1)
    assert change == "opened" and first.category == "street_stall" and first.unit is None
    assert first.ack_due is None and first.resolve_due == T0 + timedelta(seconds=3600)
    again, change = store.open_street_incident("street_stall", "cam-b", "street_stall", T0 + timedelta(minutes=2),
                                               LAT, LON, 2)
    assert change == "alert" and again.id == first.id and again.alert_count == 2
    other, change = store.open_street_incident("street_stall", "cam-c", "street_stall", T0, LAT, LON, 3)
    assert change == "opened" and other.id != first.id
    bins, change = store.open_street_incident("overflowing_bin", "cam-b", "overflowing_bin", T0, LAT, LON, 4)
    assert change == "opened" and bins.ack_due is None and bins.resolve_due is None  # no limits configured


def test_the_nearest_recently_heard_units_are_suggested(store: Store) -> None:
    now = datetime.now(UTC)

    def beacon(unit: str, north_m: float, age_s: float, seq: int) -> Event:
        t = now - timedelta(seconds=age_s)
        return Event(id=uuid7(t), seq=seq, gateway="gw1", channel="p", kind=Kind.BEACON, time=t, unit=unit,
                     position=Position(LAT + north_m * M_LAT, LON, fix_time=t, source="nmea"))

    store.ingest([beacon("mdc:near", 50, 10, 1), beacon("mdc:mid", 300, 10, 2), beacon("mdc:far", 3000, 10, 3),
                  beacon("mdc:stale", 20, 3600, 4)])
    suggested = store.nearest_units(LAT, LON, limit=2, max_age_s=900)
    assert [u["unit"] for u in suggested] == ["mdc:near", "mdc:mid"]
    assert suggested[0]["distance_m"] == pytest.approx(50, abs=1)


def test_an_incident_follows_its_units_newer_positions(store: Store) -> None:
    alert = event(Kind.ALERT, "mdc:7", 0, 1, Position(LAT, LON, fix_time=T0, source="nmea"))
    [(incident, _)] = store.ingest([alert]).incidents
    newer = event(Kind.BEACON, "mdc:7", 30, 2, Position(LAT + 100 * M_LAT, LON, fix_time=T0 + timedelta(seconds=30),
                                                         source="nmea"))
    [(moved, change)] = store.ingest([newer]).incidents
    assert change == "position" and moved.id == incident.id and moved.lat == pytest.approx(LAT + 100 * M_LAT)
    assert store.ingest([newer]).incidents == []  # the same beacon again: nothing newer
    older = event(Kind.BEACON, "mdc:7", 10, 3, Position(LAT - 0.01, LON, fix_time=T0 + timedelta(seconds=10),
                                                         source="nmea"))
    assert store.ingest([older]).incidents == []  # a late beacon does not move it back


def test_detections_around_a_place_rank_by_time_and_distance(store: Store) -> None:
    cams = CameraStore(store.engine)
    looking_north = Camera("cam-a", "a", LAT - 60 * M_LAT, LON, 0.0, 60.0, 150.0)
    far = Camera("cam-far", "far", LAT + 0.02, LON, 0.0, 60.0, 150.0)

    def detection(camera: str, label: str, at_s: float, lat: float | None = None) -> Detection:
        return Detection(camera=camera, label=label, category=None, score=0.9, time=T0 + timedelta(seconds=at_s),
                         source="generic", lat=lat, lon=LON if lat is not None else None)

    cams.add_detection(detection("cam-a", "person", -10), looking_north)
    cams.add_detection(detection("cam-a", "person", -1000), looking_north)  # outside the window
    cams.add_detection(detection("cam-x", "bicycle", -100, LAT + 150 * M_LAT), None)  # near, by another camera
    cams.add_detection(detection("cam-far", "car", -5), far)
    sighting = sees(looking_north, LAT, LON)
    assert sighting is not None
    found = cams.detections_around(LAT, LON, T0, cameras=["cam-a"], near_m=200, window_s=300)
    assert [(d.camera, d.label) for d, _ in found] == [("cam-a", "person"), ("cam-x", "bicycle")]
    assert found[0][1] > found[1][1]


def test_a_frigate_event_s_updates_change_one_detection(store: Store) -> None:
    cams = CameraStore(store.engine)
    base = {"camera": "cam-a", "label": "street_stall", "category": "street_stall", "time": T0,
            "source": "frigate", "source_id": "1607123955.475377-mxklsc"}
    first, new = cams.add_detection(Detection(score=0.6, phase="new", **base), None)  # type: ignore[arg-type]
    second, again = cams.add_detection(Detection(score=0.8, phase="update", **base), None)  # type: ignore[arg-type]
    assert new and not again and first.id == second.id and second.score == 0.8 and second.phase == "update"


def test_frigate_recognitions_enrich_their_detection_and_wait_for_it(store: Store) -> None:
    cams = CameraStore(store.engine)
    assert cams.enrich(ObjectUpdate("obj-1", "lpr", "cam-a", plate="ZJ-A1234", score=0.9)) is None
    assert cams.held() == 1  # the plate was read before Frigate's event of the car came
    car = Detection(camera="cam-a", label="car", category=None, score=0.8, time=T0, source="frigate",
                    source_id="obj-1", box=(1, 2, 30, 40), stationary=False)
    stored = cams.store_detection(car, None)
    assert stored.new and stored.view.plate == "ZJ-A1234" and stored.view.plate_score == 0.9 and cams.held() == 0
    described = cams.enrich(ObjectUpdate("obj-1", "description", description="A red sedan"))
    assert described is not None and described.revised and described.view.description == "A red sedan"
    again = cams.enrich(ObjectUpdate("obj-1", "description", description="A red sedan"))
    assert again is not None and not again.revised  # nothing new: no news for its incidents
    for model, value in (("helmet", "yes"), ("colour", "red")):
        cams.enrich(ObjectUpdate("obj-1", "classification", "cam-a", model=model, attribute=value, score=0.8))
    # Frigate's next message of the car has no plate and stands still: the plate stays, the rest follows.
    later = cams.store_detection(replace(car, phase="update", stationary=True, box=None,
                                         end_time=T0 + timedelta(seconds=40)), None)
    assert later.revised and not later.new
    view = later.view
    assert (view.plate, view.stationary, view.box, view.end_time) == (
        "ZJ-A1234", True, (1, 2, 30, 40), T0 + timedelta(seconds=40))
    assert view.classifications == {"helmet": ["yes", 0.8], "colour": ["red", 0.8]}
    with pytest.raises(ValueError, match="camera 'cam-b' is not that of detection 'obj-1'"):
        cams.enrich(ObjectUpdate("obj-1", "face", "cam-b", name="Li Wei", score=0.9))


def test_a_pushed_snapshot_is_kept_once_and_a_bounded_number_of_times(store: Store) -> None:
    [(incident, _)] = store.ingest([event(Kind.ALERT, "mdc:1234", 0, 1)]).incidents
    cams = CameraStore(store.engine)

    def snapshot(data: bytes) -> Evidence:
        return Evidence(incident.id, "cam-a", "snapshot", T0, "mqtt:frigate/a/person/snapshot", "image/jpeg",
                        hashlib.sha256(data).hexdigest(), data, len(data))

    kept = cams.add_snapshot(snapshot(b"\xff\xd8\xff one \xff\xd9"), most=2)
    assert not isinstance(kept, str) and kept.size == 10
    assert cams.add_snapshot(snapshot(b"\xff\xd8\xff one \xff\xd9"), most=2) == "the incident has this picture already"
    assert not isinstance(cams.add_snapshot(snapshot(b"\xff\xd8\xff two \xff\xd9"), most=2), str)
    assert cams.add_snapshot(snapshot(b"\xff\xd8\xff three \xff\xd9"), most=2) == (
        "the incident has 2 snapshots of this camera from mqtt:frigate/a/person/snapshot already")
    assert len(cams.correlation(incident.id).evidence) == 2


def test_an_incident_s_cameras_detections_and_evidence_read_back_whole(store: Store) -> None:
    # On PostgreSQL the three reads are one statement of JSON: every field must come back as the queries
    # read it (times, a box, classifications, floats, a camera the registry does not know).
    [(incident, _)] = store.ingest([event(Kind.ALERT, "mdc:1234", 0, 1, Position(LAT, LON, source="nmea"))]).incidents
    CameraRegistry(store.engine).put([CameraConfig(id="cam-a", name="Xixi Rd", lat=LAT - 60 * M_LAT, lon=LON,
                                                   heading_deg=0, stream_url="rtsp://10.1.2.3/1")], "test")
    cams = CameraStore(store.engine)
    looking_north = Camera("cam-a", "a", LAT - 60 * M_LAT, LON, 0.0, 60.0, 150.0)
    unknown = Camera("cam-z", "z", LAT + 40 * M_LAT, LON, None, 360.0, 150.0)
    car = cams.store_detection(Detection(
        camera="cam-a", label="car", category=None, score=0.1 + 0.2, time=T0 + timedelta(microseconds=123456),
        source="frigate", source_id="obj-1", zones=("gate", "lane 2"), sub_label="Li Wei", sub_label_score=0.75,
        plate="ZJ-A1234", plate_score=0.9, box=(1, 2, 30, 40), stationary=False, end_time=T0 + timedelta(seconds=40),
        speed_kmh=31.4, avg_speed_kmh=29.0, direction_deg=270.5), None).view
    cams.enrich(ObjectUpdate("obj-1", "classification", "cam-a", model="colour", attribute="red", score=0.8))
    plain = cams.add_detection(Detection(camera="cam-z", label="person", category=None, score=None, time=T0,
                                         source="generic"), unknown)[0]
    sightings = [s for s in (sees(looking_north, LAT, LON), sees(unknown, LAT, LON)) if s is not None]
    cams.attach(incident.id, sightings, [(car, 0.5), (plain, 0.25)])
    for at, data in ((9, b"\xff\xd8 later"), (8, b"\xff\xd8 first")):
        cams.add_evidence(Evidence(incident.id, "cam-a", "snapshot", T0 + timedelta(seconds=at), "mqtt:a",
                                   "image/jpeg", hashlib.sha256(data).hexdigest(), data, len(data)))
    [(other, _)] = store.ingest([event(Kind.ALERT, "mdc:3", 0, 2)]).incidents  # an incident no camera sees

    read = cams.correlations([incident.id, other.id])
    assert read == cams._correlations_queried([incident.id, other.id])
    mine = read[incident.id]
    assert sorted((c.camera_id, c.name, c.stream_url) for c in mine.cameras) == [
        ("cam-a", "Xixi Rd", "rtsp://10.1.2.3/1"), ("cam-z", "cam-z", None)]
    assert [c.score for c in mine.cameras] == sorted((x.score for x in sightings), reverse=True)
    [(d, score), (p, _)] = mine.detections
    assert (d.time, d.end_time, d.box, d.zones, d.score, d.classifications, score) == (
        T0 + timedelta(microseconds=123456), T0 + timedelta(seconds=40), (1, 2, 30, 40), ("gate", "lane 2"),
        0.1 + 0.2, {"colour": ["red", 0.8]}, 0.5)
    assert (p.label, p.score, p.end_time, p.box) == ("person", None, None, None)
    assert [e.time for e in mine.evidence] == [T0 + timedelta(seconds=8), T0 + timedelta(seconds=9)]
    assert read[other.id] == cams.correlation(other.id) and read[other.id].to_json() == {
        "cameras": [], "detections": [], "evidence": []}
