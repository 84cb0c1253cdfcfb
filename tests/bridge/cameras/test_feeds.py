"""Camera event feeds: the generic ``cam/{camera}/event`` form and Frigate's ``frigate/events``.

The Frigate payloads are the examples of Frigate's own documentation (see tests/data/frigate/README.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.feeds import (
    DEFAULT_CATEGORIES,
    MAX_FEED_BYTES,
    STREET_EVENT_CATEGORIES,
    Detection,
    FeedError,
    UnknownCamera,
    category_for,
    parse_frigate,
    parse_generic,
)

FRIGATE = Path(__file__).resolve().parents[2] / "data" / "frigate"
NOW = datetime(2026, 11, 26, 19, 30, 5, 250000, tzinfo=UTC)
CAMERAS = {"front_door": "cam-xixing-17"}
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
    with pytest.raises(FeedError) as err:
        if parse == "generic":
            parse_generic("cam-3", payload, now=NOW)
        else:
            parse_frigate(payload, cameras=CAMERAS)
    assert err.value.field == "$"


def test_the_topic_must_name_a_camera() -> None:
    with pytest.raises(FeedError) as err:
        parse_generic("", b'{"label": "litter"}', now=NOW)
    assert err.value.field == "topic"


# --- Frigate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events-update-doc-5e68fab.json", "events-update-doc-0065693.json"])
def test_frigate_documented_update(name: str) -> None:
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
        # has_snapshot and has_clip are false: no URLs even though Frigate's address is known
    )
    assert d.raw == frigate(name)


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
                 "current_zones", "entered_zones", "has_snapshot", "has_clip"]
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
    for parse in (lambda: parse_generic("cam-xixing-17", payload, now=NOW),
                  lambda: parse_frigate(payload, cameras=CAMERAS, frigate_url="http://frigate:5000")):
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
