"""Camera event feeds: the generic ``cam/{camera}/event`` form and Frigate's ``frigate/events``.

The Frigate payloads are the examples of Frigate's own documentation (see tests/data/frigate/README.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from camera_server import GOOD_JPEG, GOOD_PNG
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.feeds import (
    DEFAULT_CATEGORIES,
    MAX_FEED_BYTES,
    MAX_SNAPSHOT_BYTES,
    STREET_EVENT_CATEGORIES,
    Detection,
    FeedError,
    ObjectUpdate,
    UnknownCamera,
    category_for,
    parse_frigate,
    parse_frigate_snapshot,
    parse_frigate_update,
    parse_generic,
)

FRIGATE = Path(__file__).resolve().parents[2] / "data" / "frigate"
NOW = datetime(2026, 11, 26, 19, 30, 5, 250000, tzinfo=UTC)
CAMERAS = {"front_door": "cam-xixing-17", "front_door_cam": "cam-xixing-17", "driveway_cam": "cam-xixing-18"}
# The documented object started at 1607123955.475377 (epoch seconds).
DOC_START = datetime(2020, 12, 4, 23, 19, 15, 475377, tzinfo=UTC)
DOC_ID = "1607123955.475377-mxklsc"


def frigate(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FRIGATE / name).read_bytes())
    return loaded


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


FULL_GENERIC: dict[str, Any] = {
    "label": "Street Stall",
    "score": 0.91,
    "time": "2026-11-26T19:30:01.123Z",
    "position": {"lat": 30.2095, "lon": 120.2107},
    "snapshot_url": "https://cam-17.example/snap/000123.jpg",
    "clip_url": "http://cam-17.example/clip/000123.mp4",
    "id": "cam17-000123",
    "zones": ["crossing-north", "pavement"],
    "camera": "cam-xixing-17",
    "detail": {"model": "street-v3", "box": [10, 20, 110, 220]},
}


# --- generic ---------------------------------------------------------------------------------


def test_generic_payload_with_every_field() -> None:
    d = parse_generic("cam-xixing-17", dumps(FULL_GENERIC), now=NOW)
    assert d == Detection(
        camera="cam-xixing-17",
        label="street_stall",
        category="street_stall",
        score=0.91,
        time=datetime(2026, 11, 26, 19, 30, 1, 123000, tzinfo=UTC),
        source="generic",
        phase="new",
        source_id="cam17-000123",
        lat=30.2095,
        lon=120.2107,
        snapshot_url="https://cam-17.example/snap/000123.jpg",
        clip_url="http://cam-17.example/clip/000123.mp4",
        zones=("crossing-north", "pavement"),
    )
    assert d.raw == FULL_GENERIC  # kept whole for storage, detail included


def test_minimal_generic_payload_takes_the_receive_time() -> None:
    d = parse_generic("cam-3", b'{"label": "overflowing_bin"}', now=NOW)
    assert (d.camera, d.label, d.category, d.time, d.source, d.phase) == (
        "cam-3", "overflowing_bin", "overflowing_bin", NOW, "generic", "new",
    )
    assert (d.score, d.lat, d.lon, d.snapshot_url, d.clip_url, d.source_id, d.zones) == (
        None, None, None, None, None, None, (),
    )


def test_nulls_mean_absent() -> None:
    payload = {k: None for k in FULL_GENERIC if k != "camera"} | {"label": "car"}
    d = parse_generic("cam-3", dumps(payload), now=NOW)
    assert (d.label, d.category, d.score, d.time, d.lat, d.zones) == ("car", None, None, NOW, None, ())


def test_time_with_an_offset_is_stored_in_utc_and_now_defaults_to_the_clock() -> None:
    d = parse_generic("cam-3", b'{"label": "litter", "time": "2026-11-27T03:30:01+08:00"}')
    assert d.time == datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)
    d = parse_generic("cam-3", b'{"label": "litter"}', now=NOW.astimezone(timezone(timedelta(hours=8))))
    assert d.time == NOW and d.time.tzinfo is UTC
    assert parse_generic("cam-3", b'{"label": "litter"}').time.tzinfo is UTC


def test_credentials_in_a_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(FeedError) as err:
        parse_generic("cam-xixing-17", dumps(_with(snapshot_url="http://admin:hunter2@10.0.0.5/s.jpg")), now=NOW)
    assert err.value.field == "snapshot_url"
    assert "hunter2" not in str(err.value)


def test_score_message_reads_as_documented() -> None:
    with pytest.raises(FeedError) as err:
        parse_generic("cam-3", b'{"label": "litter", "score": "high"}', now=NOW)
    assert str(err.value) == "score: expected a number 0..1, got 'high'"


def _with(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(FULL_GENERIC)
    payload.update(changes)
    return payload


def _without(key: str) -> dict[str, Any]:
    payload = copy.deepcopy(FULL_GENERIC)
    del payload[key]
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_without("label"), "label"),
        (_with(label=42), "label"),
        (_with(label="  "), "label"),
        (_with(label="x" * 65), "label"),
        (_with(score="high"), "score"),
        (_with(score=1.5), "score"),
        (_with(score=-0.01), "score"),
        (_with(score=True), "score"),
        (_with(score=10**400), "score"),
        (_with(time="yesterday"), "time"),
        (_with(time="2026-13-01T00:00:00Z"), "time"),
        (_with(time=1764185401), "time"),
        (_with(position="Xixing road"), "position"),
        (_with(position=[30.2, 120.2]), "position"),
        (_with(position={"lat": 30.2}), "position.lon"),
        (_with(position={"lat": 91, "lon": 120.2}), "position.lat"),
        (_with(position={"lat": 30.2, "lon": "east"}), "position.lon"),
        (_with(position={"lat": 30.2, "lon": 120.2, "alt": 8}), "position.alt"),
        (_with(snapshot_url="ftp://cam-17.example/s.jpg"), "snapshot_url"),
        (_with(snapshot_url="snapshot.jpg"), "snapshot_url"),
        (_with(snapshot_url="http://[bad/s.jpg"), "snapshot_url"),
        (_with(clip_url=5), "clip_url"),
        (_with(id=""), "id"),
        (_with(id=123), "id"),
        (_with(zones="pavement"), "zones"),
        (_with(zones=["pavement", 3]), "zones[1]"),
        (_with(zones=[None]), "zones[0]"),
        (_with(zones=[f"z{i}" for i in range(65)]), "zones"),
        (_with(camera="cam-99"), "camera"),
        (_with(detail=[1, 2]), "detail"),
        (_with(socre=0.5), "socre"),
    ],
)
def test_each_bad_generic_field_is_named(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_generic("cam-xixing-17", dumps(payload), now=NOW)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"[]", b"null", b'"label"', b"\xff\xfe", b"NaN", b'{"label": "x", "score": NaN}',
     b"[" * 100_000, b"[" * 50_000, b" " * (MAX_FEED_BYTES + 1)],
)
@pytest.mark.parametrize("parse", ["generic", "frigate"])
def test_garbage_is_refused_with_a_reason(payload: bytes, parse: str) -> None:
    def read() -> object:
        if parse == "generic":
            return parse_generic("cam-3", payload, now=NOW)
        return parse_frigate(payload, cameras=CAMERAS)

    with pytest.raises(FeedError) as err:
        read()
    assert err.value.field == "$"


def test_the_topic_must_name_a_camera() -> None:
    with pytest.raises(FeedError) as err:
        parse_generic("", b'{"label": "litter"}', now=NOW)
    assert err.value.field == "topic"


# --- Frigate ---------------------------------------------------------------------------------


def test_frigate_documented_update() -> None:
    name = "events-update-doc-0065693.json"
    d = parse_frigate((FRIGATE / name).read_bytes(), cameras=CAMERAS, frigate_url="http://frigate:5000")
    assert d == Detection(
        camera="cam-xixing-17",  # the registry id, not Frigate's "front_door"
        label="person",
        category=None,
        score=0.958984375,  # top_score, not this frame's 0.87890625
        time=DOC_START,
        source="frigate",
        phase="update",
        source_id=DOC_ID,
        zones=("yard", "driveway"),
        box=(432, 496, 544, 854),
        stationary=False,
        # has_snapshot and has_clip are false: no URLs even though Frigate's address is known
    )
    assert d.raw == frigate(name)


def test_frigate_documented_update_with_a_recognised_person() -> None:
    name = "events-update-doc-5e68fab.json"
    d = parse_frigate((FRIGATE / name).read_bytes(), cameras=CAMERAS, frigate_url="http://frigate:5000")
    assert d is not None
    assert (d.sub_label, d.sub_label_score) == ("John Smith", 0.79)
    assert d.box == (432, 496, 544, 854) and d.stationary is False and d.end_time is None
    assert (d.plate, d.speed_kmh, d.avg_speed_kmh, d.direction_deg) == (None, None, None, None)


def test_frigate_current_documented_update_keeps_what_a_dispatcher_wants() -> None:
    d = parse_frigate((FRIGATE / "events-update-doc-current.json").read_bytes(), cameras=CAMERAS)
    assert d is not None
    assert (d.sub_label, d.sub_label_score) == ("John Smith", 0.79)
    assert (d.plate, d.plate_score) == ("ABC12345", 0.933451)
    assert d.box == (432, 496, 544, 854) and d.stationary is False and d.end_time is None
    assert (d.speed_kmh, d.avg_speed_kmh, d.direction_deg) == (0.77, 14.31, 180.0)  # metric: km/h as sent
    assert d.zones == ("yard", "driveway") and d.score == 0.958984375


def test_frigate_speeds_in_mph_are_stored_in_kmh() -> None:
    d = parse_frigate((FRIGATE / "events-update-doc-current.json").read_bytes(), cameras=CAMERAS,
                      unit_system="imperial")
    assert d is not None and d.avg_speed_kmh == pytest.approx(14.31 * 1.609344)


def test_frigate_zero_speed_is_no_estimate() -> None:
    """Outside a speed zone Frigate sends 0 (and an angle of 0): shown as nothing, not as standing still."""
    payload = _frigate_with(lambda m: m["after"].update(current_estimated_speed=0, average_estimated_speed=0,
                                                        velocity_angle=0))
    d = parse_frigate(payload, cameras=CAMERAS)
    assert d is not None and (d.speed_kmh, d.avg_speed_kmh, d.direction_deg) == (None, None, None)
    d = parse_frigate(_frigate_with(lambda m: m["after"].update(current_estimated_speed=0,
                                                                average_estimated_speed=22.5, velocity_angle=-90)),
                      cameras=CAMERAS)
    assert d is not None and (d.speed_kmh, d.avg_speed_kmh, d.direction_deg) == (None, 22.5, 270.0)


@pytest.mark.parametrize(("sub_label", "expected"), [
    ("John Smith", ("John Smith", None)),  # older releases: a bare name
    (["John Smith", 0.79], ("John Smith", 0.79)),
    ([None, None], (None, None)),  # Frigate's code clears a face's name so
    (["amazon", None], ("amazon", None)),
    (None, (None, None)),
])
def test_frigate_sub_label_in_each_form_frigate_sends(sub_label: object, expected: tuple[object, object]) -> None:
    d = parse_frigate(_frigate_with(lambda m: m["after"].update(sub_label=sub_label)), cameras=CAMERAS)
    assert d is not None and (d.sub_label, d.sub_label_score) == expected


@pytest.mark.parametrize(("plate", "score", "expected"), [
    ("ABC12345", 0.933451, ("ABC12345", 0.933451)),  # as the page documents it
    (["ABC12345", 0.91], None, ("ABC12345", 0.91)),  # as Frigate's code sends it: the (plate, score) it holds
    (["ABC12345", 0.91], 0.5, ("ABC12345", 0.91)),
    (None, None, (None, None)),
])
def test_frigate_plate_in_each_form_frigate_sends(plate: object, score: object,
                                                 expected: tuple[object, object]) -> None:
    payload = _frigate_with(lambda m: m["after"].update(recognized_license_plate=plate,
                                                        recognized_license_plate_score=score, label="car"))
    d = parse_frigate(payload, cameras=CAMERAS)
    assert d is not None and (d.plate, d.plate_score) == expected


def test_frigate_end_time_and_stationary() -> None:
    d = parse_frigate((FRIGATE / "events-end.json").read_bytes(), cameras=CAMERAS)
    assert d is not None and d.end_time == datetime(2020, 12, 4, 23, 19, 32, 413791, tzinfo=UTC)
    d = parse_frigate(_frigate_with(lambda m: m["after"].update(stationary=None, active=False)), cameras=CAMERAS)
    assert d is not None and d.stationary is True  # active is its opposite
    d = parse_frigate(_frigate_with(lambda m: m.update(after={k: v for k, v in m["after"].items()
                                                               if k not in ("stationary", "active")})),
                      cameras=CAMERAS)
    assert d is not None and d.stationary is None


def test_frigate_new() -> None:
    d = parse_frigate((FRIGATE / "events-new.json").read_bytes(), cameras=CAMERAS)
    assert d is not None
    assert (d.phase, d.source_id, d.time, d.score) == ("new", DOC_ID, DOC_START, 0.958984375)


def test_frigate_end_has_snapshot_and_clip_urls() -> None:
    payload = (FRIGATE / "events-end.json").read_bytes()
    for url in ("http://frigate:5000", "http://frigate:5000/", "http://frigate:5000/api", "http://frigate:5000/api/"):
        d = parse_frigate(payload, cameras=CAMERAS, frigate_url=url)
        assert d is not None
        assert d.phase == "end"
        assert d.snapshot_url == f"http://frigate:5000/api/events/{DOC_ID}/snapshot.jpg"
        assert d.clip_url == f"http://frigate:5000/api/events/{DOC_ID}/clip.mp4"
        # the object has left every zone; the zones it entered are what the detection is about
        assert d.zones == ("yard", "driveway")
    d = parse_frigate(payload, cameras=CAMERAS)
    assert d is not None and (d.snapshot_url, d.clip_url) == (None, None)


def test_frigate_event_id_is_quoted_into_the_url() -> None:
    msg = frigate("events-end.json")
    msg["after"]["id"] = "a/b c?d"
    d = parse_frigate(dumps(msg), cameras=CAMERAS, frigate_url="https://nvr.example")
    assert d is not None and d.snapshot_url == "https://nvr.example/api/events/a%2Fb%20c%3Fd/snapshot.jpg"


def test_frigate_zones_entered_then_current() -> None:
    msg = frigate("events-update-doc-5e68fab.json")
    msg["after"]["entered_zones"] = ["yard"]
    msg["after"]["current_zones"] = ["driveway", "yard", "street"]
    d = parse_frigate(dumps(msg), cameras=CAMERAS)
    assert d is not None and d.zones == ("yard", "driveway", "street")
    del msg["after"]["entered_zones"], msg["after"]["current_zones"]
    d = parse_frigate(dumps(msg), cameras=CAMERAS)
    assert d is not None and d.zones == ()


def test_frigate_score_falls_back_to_the_frame_score() -> None:
    msg = frigate("events-update-doc-5e68fab.json")
    del msg["after"]["top_score"]
    d = parse_frigate(dumps(msg), cameras=CAMERAS)
    assert d is not None and d.score == 0.87890625


def test_frigate_false_positive_is_no_detection() -> None:
    assert parse_frigate((FRIGATE / "events-false-positive.json").read_bytes(), cameras=CAMERAS) is None


def test_frigate_unknown_camera_is_named_so_it_can_be_counted() -> None:
    for name in ("events-update-doc-5e68fab.json", "events-false-positive.json"):
        with pytest.raises(UnknownCamera) as err:
            parse_frigate((FRIGATE / name).read_bytes(), cameras={"back_yard": "cam-1"})
        assert isinstance(err.value, FeedError)
        assert err.value.camera == "front_door"
        assert err.value.field == "after.camera"
        assert "'front_door'" in str(err.value)


def _frigate_with(change: Callable[[dict[str, Any]], None]) -> bytes:
    msg = frigate("events-update-doc-5e68fab.json")
    change(msg)
    return dumps(msg)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.update(type="created"), "type"),
        (lambda m: m.pop("type"), "type"),
        (lambda m: m.pop("after"), "after"),
        (lambda m: m.update(after=[]), "after"),
        (lambda m: m["after"].pop("id"), "after.id"),
        (lambda m: m["after"].update(id=1607123955), "after.id"),
        (lambda m: m["after"].pop("camera"), "after.camera"),
        (lambda m: m["after"].update(camera=7), "after.camera"),
        (lambda m: m["after"].pop("label"), "after.label"),
        (lambda m: m["after"].update(top_score="high"), "after.top_score"),
        (lambda m: m["after"].update(top_score=None, score=2), "after.score"),
        (lambda m: m["after"].pop("start_time"), "after.start_time"),
        (lambda m: m["after"].update(start_time="2020-12-04T23:19:15Z"), "after.start_time"),
        (lambda m: m["after"].update(start_time=1e300), "after.start_time"),
        (lambda m: m["after"].update(entered_zones="yard"), "after.entered_zones"),
        (lambda m: m["after"].update(current_zones=[1]), "after.current_zones[0]"),
        (lambda m: m["after"].update(has_snapshot="yes"), "after.has_snapshot"),
        (lambda m: m["after"].update(has_clip=1), "after.has_clip"),
        (lambda m: m["after"].update(false_positive="no"), "after.false_positive"),
        (lambda m: m["after"].update(sub_label=5), "after.sub_label"),
        (lambda m: m["after"].update(sub_label=["John"]), "after.sub_label"),
        (lambda m: m["after"].update(sub_label=["John", 7]), "after.sub_label[1]"),
        (lambda m: m["after"].update(sub_label=["x" * 200, 0.5]), "after.sub_label[0]"),
        (lambda m: m["after"].update(recognized_license_plate=[1, 0.5]), "after.recognized_license_plate[0]"),
        (lambda m: m["after"].update(recognized_license_plate="ABC", recognized_license_plate_score="high"),
         "after.recognized_license_plate_score"),
        (lambda m: m["after"].update(box=[1, 2, 3]), "after.box"),
        (lambda m: m["after"].update(box=[500, 0, 100, 10]), "after.box"),
        (lambda m: m["after"].update(box=[-1, 0, 100, 10]), "after.box"),
        (lambda m: m["after"].update(stationary="no"), "after.stationary"),
        (lambda m: m["after"].update(stationary=None, active=1), "after.active"),
        (lambda m: m["after"].update(end_time="soon"), "after.end_time"),
        (lambda m: m["after"].update(current_estimated_speed=-3), "after.current_estimated_speed"),
        (lambda m: m["after"].update(average_estimated_speed=1e9), "after.average_estimated_speed"),
        (lambda m: m["after"].update(velocity_angle="north"), "after.velocity_angle"),
    ],
)
def test_each_bad_frigate_field_is_named(change: Callable[[dict[str, Any]], None], field: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_frigate(_frigate_with(change), cameras=CAMERAS, frigate_url="http://frigate:5000")
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_frigate_fields_it_does_not_know_are_ignored() -> None:
    # Frigate adds fields in most releases (the newer page has a "snapshot" object, for one).
    payload = _frigate_with(lambda m: m["after"].update(snapshot={"score": 0.77}, speed_kmh=None))
    assert parse_frigate(payload, cameras=CAMERAS) is not None


# --- Frigate's tracked-object updates and snapshots -------------------------------------------


def test_frigate_documented_tracked_object_updates() -> None:
    at = datetime.fromtimestamp(1607123958.748393, UTC)

    def parse(name: str) -> ObjectUpdate | None:
        return parse_frigate_update((FRIGATE / f"tracked-object-update-{name}.json").read_bytes(), cameras=CAMERAS)

    assert parse("face") == ObjectUpdate(DOC_ID, "face", "cam-xixing-17", at, name="John", score=0.95)
    assert parse("lpr") == ObjectUpdate(DOC_ID, "lpr", "cam-xixing-18", at, name="John's Car", plate="123ABC",
                                        score=0.95)
    assert parse("description") == ObjectUpdate(
        DOC_ID, "description", description="The car is a red sedan moving away from the camera.")
    assert parse("classification-sub-label") == ObjectUpdate(
        DOC_ID, "classification", "cam-xixing-17", at, name="delivery_person", score=0.87, model="person_classifier")
    assert parse("classification-attribute") == ObjectUpdate(
        DOC_ID, "classification", "cam-xixing-17", at, score=0.92, model="helmet_detector", attribute="yes")


def test_frigate_update_of_a_face_not_recognised_and_of_a_type_not_taken() -> None:
    cleared = {"type": "face", "id": DOC_ID, "name": None, "score": 0.0, "camera": "front_door_cam",
               "timestamp": 1607123958.7, "source_frame_time": 1607123958.7}  # Frigate's code, on a new face
    assert parse_frigate_update(dumps(cleared), cameras=CAMERAS) == ObjectUpdate(
        DOC_ID, "face", "cam-xixing-17", datetime.fromtimestamp(1607123958.7, UTC), score=0.0)
    assert parse_frigate_update(dumps({"type": "audio", "id": DOC_ID}), cameras=CAMERAS) is None


def test_frigate_update_from_an_unmapped_camera_is_named_so_it_can_be_counted() -> None:
    with pytest.raises(UnknownCamera) as err:
        parse_frigate_update((FRIGATE / "tracked-object-update-lpr.json").read_bytes(), cameras={"x": "y"})
    assert err.value.camera == "driveway_cam" and err.value.field == "camera"


def _update_with(name: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    msg = json.loads((FRIGATE / f"tracked-object-update-{name}.json").read_bytes())
    change(msg)
    return dumps(msg)


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("face", lambda m: m.pop("type"), "type"),
        ("face", lambda m: m.update(type=3), "type"),
        ("face", lambda m: m.pop("id"), "id"),
        ("face", lambda m: m.update(id=["x"]), "id"),
        ("face", lambda m: m.update(camera=5), "camera"),
        ("face", lambda m: m.update(score=1.5), "score"),
        ("face", lambda m: m.update(name=7), "name"),
        ("face", lambda m: m.update(timestamp="now"), "timestamp"),
        ("lpr", lambda m: m.pop("plate"), "plate"),
        ("lpr", lambda m: m.update(plate="A" * 40), "plate"),
        ("description", lambda m: m.update(description=None), "description"),
        ("description", lambda m: m.update(description="x" * 9000), "description"),
        ("classification-attribute", lambda m: m.pop("model"), "model"),
        ("classification-attribute", lambda m: m.pop("attribute"), "sub_label"),
    ],
)
def test_each_bad_frigate_update_field_is_named(name: str, change: Callable[[dict[str, Any]], None],
                                                field: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_frigate_update(_update_with(name, change), cameras=CAMERAS)
    assert err.value.field == field


def test_frigate_snapshot_is_a_whole_jpeg_from_a_mapped_camera() -> None:
    snap = parse_frigate_snapshot("front_door", "person", GOOD_JPEG, cameras=CAMERAS)
    assert (snap.camera, snap.label, snap.content_type, snap.data) == ("cam-xixing-17", "person", "image/jpeg",
                                                                       GOOD_JPEG)
    assert snap.sha256 == hashlib.sha256(GOOD_JPEG).hexdigest()
    with pytest.raises(UnknownCamera) as unknown:
        parse_frigate_snapshot("back_yard", "person", GOOD_JPEG, cameras=CAMERAS)
    assert unknown.value.camera == "back_yard"


@pytest.mark.parametrize(("payload", "why"), [
    (b"", "empty payload"),
    (GOOD_PNG, "not a JPEG image (starts 89 50 4e 47"),
    (b"ON", "not a JPEG image (starts 4f 4e)"),
    (GOOD_JPEG[:-7], "JPEG without its end marker FF D9: cut short"),
    (GOOD_JPEG[:-2] + b"\x00" * (MAX_SNAPSHOT_BYTES + 1) + b"\xff\xd9", "exceeds the 5000000-byte limit"),
])
def test_a_bad_frigate_snapshot_is_refused_with_its_reason(payload: bytes, why: str) -> None:
    with pytest.raises(FeedError) as err:
        parse_frigate_snapshot("front_door", "person", payload, cameras=CAMERAS)
    assert why in str(err.value)


# --- categories ------------------------------------------------------------------------------


def test_default_categories_map_street_event_labels_and_leave_ordinary_objects_alone() -> None:
    assert set(filter(None, DEFAULT_CATEGORIES.values())) == STREET_EVENT_CATEGORIES
    for category in STREET_EVENT_CATEGORIES:
        assert DEFAULT_CATEGORIES[category] == category  # each category is also a label of itself
    expected = {
        "business_outside_shop": "shop_spillover",
        "roadside_stall": "street_stall",
        "stacked_materials": "stacked_materials",
        "unauthorized_umbrella": "unauthorised_umbrella",
        "outdoor_ad": "outdoor_advertising",
        "hanging_clothes": "street_laundry",
        "garbage": "exposed_garbage",
        "garbage_bag": "bagged_garbage",
        "overflowing_trash_can": "overflowing_bin",
        "illegally_parked_bicycle": "illegally_parked_non_motor",
        "person": None,
        "car": None,
        "umbrella": None,  # a pedestrian's umbrella is no street event
        "zebra": None,  # not in the table at all
    }
    assert {label: category_for(label) for label in expected} == expected


def test_categories_argument_extends_and_overrides() -> None:
    categories = {"Hawker Cart": "street_stall", "person": "loitering", "garbage": None}
    assert category_for("hawker-cart", categories) == "street_stall"
    assert category_for("person", categories) == "loitering"
    assert category_for("garbage", categories) is None
    assert category_for("trash_bag", categories) == "bagged_garbage"  # defaults still apply
    d = parse_generic("cam-3", b'{"label": "Hawker  Cart"}', now=NOW, categories=categories)
    assert (d.label, d.category) == ("hawker_cart", "street_stall")
    d2 = parse_frigate((FRIGATE / "events-new.json").read_bytes(), cameras=CAMERAS, categories=categories)
    assert d2 is not None and d2.category == "loitering"


# --- garbage never crashes, never hides the good input around it -----------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_GENERIC_KEYS = ["label", "score", "time", "position", "snapshot_url", "clip_url", "id", "zones", "camera", "detail"]
_FRIGATE_KEYS = ["id", "camera", "label", "top_score", "score", "false_positive", "start_time", "end_time",
                 "current_zones", "entered_zones", "has_snapshot", "has_clip", "sub_label", "box", "stationary",
                 "active", "recognized_license_plate", "recognized_license_plate_score", "current_estimated_speed",
                 "average_estimated_speed", "velocity_angle"]
_UPDATE_KEYS = ["type", "id", "camera", "name", "plate", "score", "description", "timestamp", "model", "sub_label",
                "attribute"]
_UPDATES = sorted(p.name.removeprefix("tracked-object-update-").removesuffix(".json")
                  for p in FRIGATE.glob("tracked-object-update-*.json"))
generic_like = st.dictionaries(st.sampled_from([*_GENERIC_KEYS, "lat"]), json_values)
frigate_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["new", "update", "end", "created"]) | json_values},
    optional={"before": json_values, "after": st.dictionaries(st.sampled_from(_FRIGATE_KEYS), json_values)},
)
# A good payload with one field replaced by any JSON value reaches every field's validator.
generic_mutants = st.tuples(st.sampled_from(_GENERIC_KEYS), json_values).map(
    lambda kv: dumps(FULL_GENERIC | {kv[0]: kv[1]}))
frigate_mutants = st.tuples(st.sampled_from(_FRIGATE_KEYS), json_values).map(
    lambda kv: _frigate_with(lambda m: m["after"].update({kv[0]: kv[1]})))
update_like = st.dictionaries(st.sampled_from(_UPDATE_KEYS), json_values).map(dumps)
update_mutants = st.tuples(st.sampled_from(_UPDATES), st.sampled_from(_UPDATE_KEYS), json_values).map(
    lambda t: _update_with(t[0], lambda m: m.update({t[1]: t[2]})))
garbage = (
    st.binary(max_size=300)
    | json_values.map(dumps)
    | generic_like.map(dumps)
    | frigate_like.map(dumps)
    | generic_mutants
    | frigate_mutants
    # a good payload cut short, with its bytes flipped, or with a byte inserted
    | st.tuples(st.sampled_from([dumps(FULL_GENERIC), (FRIGATE / "events-end.json").read_bytes()]),
                st.integers(0, 2000), st.binary(min_size=1, max_size=3)).map(
        lambda t: t[0][: t[1] % len(t[0])] + t[2])
)


def _parse_both(payload: bytes) -> list[Detection | None]:
    out: list[Detection | None] = []
    parsers: tuple[Callable[[], Detection | None], ...] = (
        lambda: parse_generic("cam-xixing-17", payload, now=NOW),
        lambda: parse_frigate(payload, cameras=CAMERAS, frigate_url="http://frigate:5000"))
    for parse in parsers:
        try:
            out.append(parse())
        except FeedError:
            pass
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_nothing_but_feed_error(payload: bytes) -> None:
    _parse_both(payload)


@settings(max_examples=300, deadline=None)
@given(json_values.map(dumps) | generic_like.map(dumps) | frigate_like.map(dumps) | generic_mutants | frigate_mutants)
def test_arbitrary_json_raises_nothing_but_feed_error(payload: bytes) -> None:
    _parse_both(payload)


good_generic = st.builds(
    lambda label, score, t, lat, lon: {
        "label": label, "score": score, "time": t.isoformat().replace("+00:00", "Z"),
        "position": {"lat": lat, "lon": lon},
    },
    st.sampled_from(sorted(DEFAULT_CATEGORIES)),
    st.none() | st.floats(0, 1),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.floats(-90, 90),
    st.floats(-180, 180),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), good_generic, garbage), min_size=1, max_size=12))
def test_generic_good_payloads_between_garbage_all_come_through(
    stream: list[tuple[bool, dict[str, Any], bytes]],
) -> None:
    sent: list[str] = []
    received: list[str] = []
    for i, (is_good, good, junk) in enumerate(stream):
        if is_good:
            good = good | {"id": f"good-{i}"}
            sent.append(good["id"])
        try:
            d = parse_generic("cam-xixing-17", dumps(good) if is_good else junk, now=NOW)
        except FeedError:
            assert not is_good
            continue
        if is_good:
            assert (d.label, d.lat, d.lon) == (good["label"], good["position"]["lat"], good["position"]["lon"])
            received.append(d.source_id or "")
    assert received == sent


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(sorted(p.name for p in FRIGATE.glob("events-*.json"))),
                          garbage), min_size=1, max_size=12))
def test_frigate_good_payloads_between_garbage_all_come_through(stream: list[tuple[bool, str, bytes]]) -> None:
    sent: list[str] = []
    received: list[str] = []
    for i, (is_good, name, junk) in enumerate(stream):
        msg = frigate(name)
        msg["after"]["id"] = f"{DOC_ID}-{i}"
        if is_good and not msg["after"]["false_positive"]:
            sent.append(msg["after"]["id"])
        try:
            d = parse_frigate(dumps(msg) if is_good else junk, cameras=CAMERAS)
        except FeedError:
            assert not is_good
            continue
        if is_good and d is not None:
            received.append(d.source_id or "")
    assert received == sent


# --- Frigate's snapshots and tracked-object updates: garbage ------------------------------------


def _parse_update(payload: bytes) -> ObjectUpdate | None:
    try:
        return parse_frigate_update(payload, cameras=CAMERAS)
    except FeedError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | json_values.map(dumps) | update_like | update_mutants | garbage)
def test_arbitrary_updates_raise_nothing_but_feed_error(payload: bytes) -> None:
    _parse_update(payload)


jpeg_mutants = st.tuples(st.integers(0, len(GOOD_JPEG)), st.binary(max_size=8)).map(
    lambda t: GOOD_JPEG[: t[0]] + t[1] + GOOD_JPEG[t[0]:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | jpeg_mutants | garbage, st.text(max_size=12), st.text(max_size=12))
def test_arbitrary_snapshots_raise_nothing_but_feed_error(payload: bytes, camera: str, label: str) -> None:
    for name in (camera, "front_door"):
        try:
            snap = parse_frigate_snapshot(name, label or "person", payload, cameras=CAMERAS)
        except FeedError:
            continue
        assert snap.data.startswith(b"\xff\xd8\xff") and snap.data.endswith(b"\xff\xd9")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(_UPDATES), garbage | update_mutants), min_size=1,
                max_size=12))
def test_frigate_good_updates_between_garbage_all_come_through(stream: list[tuple[bool, str, bytes]]) -> None:
    sent: list[str] = []
    received: list[str] = []
    for i, (is_good, name, junk) in enumerate(stream):
        source_id = f"{DOC_ID}-{i}"
        good = _update_with(name, lambda m: m.update(id=source_id))  # noqa: B023 - called at once
        if is_good:
            sent.append(source_id)
        update = _parse_update(good if is_good else junk)
        if is_good:
            assert update is not None
            received.append(update.source_id)
    assert received == sent
