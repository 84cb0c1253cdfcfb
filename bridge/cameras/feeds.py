"""Camera event feeds: sans-I/O parsers that turn camera payloads into :class:`Detection` facts.

Two feeds of detections reach the bridge over MQTT, and Frigate sends two more things: snapshots
(:class:`FrigateSnapshot`) and what it recognised later (:class:`ObjectUpdate`). Each parser takes the
payload bytes (and what the topic said) and returns its fact, or raises :class:`FeedError` naming the
offending field. They hold no state and do no I/O, so a bad payload never affects the next one.

Generic form, topic ``cam/{camera}/event`` (our own format; at most 64 KiB of UTF-8 JSON)::

    {
      "label": "street_stall",                      required; detector label, 1-64 characters
      "score": 0.91,                                optional; 0..1 or null
      "time": "2026-11-26T19:30:01.123Z",           optional; RFC 3339 UTC (an offset is converted),
                                                    when it was detected; missing or null: received
      "position": {"lat": 30.2095, "lon": 120.2107},optional; where the detection is, WGS-84 degrees
      "snapshot_url": "https://cam-17.example/s.jpg",  optional; http(s), no user:password@
      "clip_url": "https://cam-17.example/c.mp4",   optional; http(s), no user:password@
      "id": "cam17-000123",                         optional; the camera's own id for the detection
      "zones": ["crossing-north"],                  optional; names of the camera's zones it is in
      "camera": "cam-17",                           optional; must equal the topic's camera
      "detail": {...}                               optional; anything vendor-specific, kept in raw
    }

Unknown top-level fields are refused (a misspelt ``"socre"`` would otherwise vanish silently); put
vendor data under ``detail``. The label is normalised: trimmed, lower-case, runs of spaces and
hyphens turned into ``_`` (``"Street Stall"`` -> ``street_stall``).

Frigate form, topic ``frigate/events`` (Frigate's format, see ``docs/docs/integrations/mqtt.md`` in
blakeblackshear/frigate; examples in ``tests/data/frigate/``)::

    {
      "type": "new" | "update" | "end",
      "before": {...},                              the tracked object before this change (unused)
      "after": {
        "id": "1607123955.475377-mxklsc",           -> source_id, and the event id in the URLs
        "camera": "front_door",                     -> mapped to a registry id through ``cameras``
        "label": "person",
        "top_score": 0.958984375, "score": 0.87890625,  -> score (top_score first)
        "false_positive": false,                    true: not a detection, the parser returns None
        "start_time": 1607123955.475377,            epoch seconds -> time
        "end_time": null,
        "current_zones": ["yard", "driveway"], "entered_zones": ["yard", "driveway"],  -> zones
        "has_snapshot": true, "has_clip": true,     -> snapshot/clip URLs on ``frigate_url``
        "sub_label": ["John Smith", 0.79],          -> sub_label, sub_label_score: a recognised person
                                                       (face) or a known plate's name; older releases
                                                       send a bare string, a cleared one [null, null]
        "recognized_license_plate": "ABC12345",     -> plate; the page documents a string and a
        "recognized_license_plate_score": 0.93,        separate score, Frigate's code sends [plate, score]
        "box": [432, 496, 544, 854],                -> box: x1, y1, x2, y2 in the detect frame (pixels)
        "stationary": false, "active": true,        -> stationary (active is its opposite)
        "end_time": 1607123970.1,                   -> end_time, epoch seconds, once the object left
        "current_estimated_speed": 0.77,            -> speed_kmh  } only in a zone with speed estimation;
        "average_estimated_speed": 14.31,           -> avg_speed_kmh } km/h or mph by Frigate's
        "velocity_angle": 180,                      -> direction_deg } ui.unit_system; 0 means none
        ...                                         other fields ignored (Frigate adds some per release)
      }
    }

``velocity_angle`` is the direction of travel in the picture, not a compass bearing: Frigate computes
it as ``atan2(dy, dx)`` of the object's pixel velocity (frigate/util/velocity.py), 0..360 degrees with
0 pointing right and 90 pointing down the frame.

Frigate's other topics under its prefix (``frigate`` by default; ``docs/docs/integrations/mqtt.md``):

``frigate/<camera>/<label>/snapshot``: the best JPEG of the object so far, as bytes, published retained
whenever Frigate finds a better one (frigate/track/object_processing.py); :func:`parse_frigate_snapshot`.

``frigate/tracked_object_update``: what Frigate learns about a tracked object after the fact, by its
id; :func:`parse_frigate_update`::

    {"type": "face", "id": "...", "name": "John", "score": 0.95, "camera": "front_door_cam",
     "timestamp": 1607123958.748393}                    a face, recognised or not (name null: cleared)
    {"type": "lpr", "id": "...", "name": "John's Car", "plate": "123ABC", "score": 0.95,
     "camera": "driveway_cam", "timestamp": 1607123958.748393}     a licence plate read (name: known)
    {"type": "description", "id": "...", "description": "The car is a red sedan ...", "camera": "..."}
                                                        a generative-AI description (newer releases
                                                        add the camera)
    {"type": "classification", "id": "...", "camera": "...", "timestamp": ..., "model": "person_classifier",
     "sub_label": "delivery_person" | "attribute": "yes", "score": 0.87}   a custom classification

Frigate URLs, from its HTTP API (``docs/docs/integrations/api.md``):
``{frigate_url}/api/events/{id}/snapshot.jpg`` and ``{frigate_url}/api/events/{id}/clip.mp4`` (Frigate
serves the clip once the event has ended).

Street-event categories: a detection's ``label`` maps to a ``category`` through
:data:`DEFAULT_CATEGORIES`, extended or overridden by the ``categories`` argument (a label mapped to
``None`` there has no category). Labels not in the table have none.

==================================== ===========================================================
category                             detector labels
==================================== ===========================================================
``shop_spillover``                   shop_spillover, business_outside_shop, outside_shop_business,
                                     out_of_store_business
``street_stall``                     street_stall, roadside_stall, road_occupying_stall,
                                     street_vendor, mobile_vendor
``stacked_materials``                stacked_materials, material_stacking, stacked_goods
``unauthorised_umbrella``            unauthorised_umbrella, unauthorized_umbrella, outdoor_umbrella,
                                     sunshade_umbrella
``outdoor_advertising``              outdoor_advertising, outdoor_ad, unauthorised_advertising,
                                     unauthorized_advertising, advertising_board, banner
``street_laundry``                   street_laundry, hanging_laundry, hanging_clothes
``exposed_garbage``                  exposed_garbage, garbage, litter, trash_pile
``bagged_garbage``                   bagged_garbage, garbage_bag, trash_bag
``overflowing_bin``                  overflowing_bin, overflowing_trash_can, full_bin
``illegally_parked_non_motor``       illegally_parked_non_motor, illegally_parked_bicycle,
                                     illegally_parked_ebike, illegally_parked_non_motor_vehicle,
                                     disorderly_parked_bicycle
(none)                               person, car, bicycle, motorcycle, bus, truck, umbrella, dog,
                                     cat, bird, face, license_plate, package (ordinary objects)
==================================== ===========================================================
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from gateway.events import EventError, load_json, parse_time

#: Payloads larger than this are refused before parsing; a detection is well under 4 KiB.
MAX_FEED_BYTES = 64 * 1024

Source = Literal["generic", "frigate"]
Phase = Literal["new", "update", "end"]

# Generous bounds for strings we store and show; they stop a hostile payload filling the database.
_MAX_LABEL = 64
_MAX_ID = 128
_MAX_ZONES = 64
_MAX_URL = 2048

# Frigate's start_time is epoch seconds; outside 2000..2200 it is not a time but garbage.
_EPOCH_MIN = 946_684_800.0
_EPOCH_MAX = 7_258_118_400.0

_MAX_NAME = 128  # a person's or a vehicle's name (sub_label, face)
_MAX_PLATE = 32  # plates are at most about 10 characters; room for separators and odd formats
_MAX_DESCRIPTION = 8000  # a generative-AI description is a paragraph or two
_MAX_PIXELS = 100_000  # a box coordinate beyond any camera's frame is garbage
_MAX_SPEED = 1000.0  # km/h or mph: an estimate beyond this is a wrong calibration, not a vehicle
_MPH_KMH = 1.609344  # international mile, by definition

#: Frigate's ``ui.unit_system``: the unit of its speed estimates (km/h when metric, its default).
UnitSystem = Literal["metric", "imperial"]

#: Frigate's snapshots over MQTT are JPEG frames, 270 pixels high by default; the HTTP fetcher of
#: bridge/cameras/evidence.py takes up to the same size.
MAX_SNAPSHOT_BYTES = 5_000_000

#: JPEG's start-of-image marker followed by the next marker's FF, and its end-of-image marker
#: (ITU-T T.81 B.1.1.3, B.2.1).
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"

_STREET_EVENTS: dict[str, tuple[str, ...]] = {
    "shop_spillover": ("shop_spillover", "business_outside_shop", "outside_shop_business", "out_of_store_business"),
    "street_stall": ("street_stall", "roadside_stall", "road_occupying_stall", "street_vendor", "mobile_vendor"),
    "stacked_materials": ("stacked_materials", "material_stacking", "stacked_goods"),
    "unauthorised_umbrella": (
        "unauthorised_umbrella", "unauthorized_umbrella", "outdoor_umbrella", "sunshade_umbrella",
    ),
    "outdoor_advertising": (
        "outdoor_advertising", "outdoor_ad", "unauthorised_advertising", "unauthorized_advertising",
        "advertising_board", "banner",
    ),
    "street_laundry": ("street_laundry", "hanging_laundry", "hanging_clothes"),
    "exposed_garbage": ("exposed_garbage", "garbage", "litter", "trash_pile"),
    "bagged_garbage": ("bagged_garbage", "garbage_bag", "trash_bag"),
    "overflowing_bin": ("overflowing_bin", "overflowing_trash_can", "full_bin"),
    "illegally_parked_non_motor": (
        "illegally_parked_non_motor", "illegally_parked_bicycle", "illegally_parked_ebike",
        "illegally_parked_non_motor_vehicle", "disorderly_parked_bicycle",
    ),
}

# Ordinary objects of general detectors (COCO labels, Frigate's attribute labels) are no street
# event by themselves: a pedestrian's umbrella is not an unauthorised one.
_NO_CATEGORY = (
    "person", "car", "bicycle", "motorcycle", "bus", "truck", "umbrella", "dog", "cat", "bird",
    "face", "license_plate", "package",
)

#: The street-event categories a detection may map to.
STREET_EVENT_CATEGORIES: frozenset[str] = frozenset(_STREET_EVENTS)

#: Detector label -> street-event category (``None``: an ordinary object, no street event).
DEFAULT_CATEGORIES: dict[str, str | None] = {
    **{label: category for category, labels in _STREET_EVENTS.items() for label in labels},
    **dict.fromkeys(_NO_CATEGORY),
}


class FeedError(ValueError):
    """A camera payload that is not a valid detection; the message names the offending field."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path}: {problem}")
        self.field = field_path
        self.problem = problem


class UnknownCamera(FeedError):
    """A well-formed payload from a camera the registry does not know (counted apart from garbage)."""

    def __init__(self, field_path: str, camera: str) -> None:
        super().__init__(field_path, f"camera {camera!r} is not mapped to a registered camera")
        self.camera = camera


@dataclass(frozen=True, slots=True)
class Detection:
    """Something a camera detected, whichever feed carried it."""

    camera: str  # registry id
    label: str  # normalised: lower-case snake_case
    category: str | None  # street-event category, None for ordinary objects
    score: float | None  # 0..1
    time: datetime  # aware, UTC: when it was detected
    source: Source
    phase: Phase = "new"  # generic detections are always "new"
    source_id: str | None = None  # Frigate's event id, or the generic payload's "id"
    lat: float | None = None
    lon: float | None = None
    snapshot_url: str | None = None
    clip_url: str | None = None
    zones: tuple[str, ...] = ()
    # What Frigate adds (the generic form carries these under "detail", which is kept in raw only):
    sub_label: str | None = None  # a recognised person (face) or vehicle (a known plate's name)
    sub_label_score: float | None = None
    plate: str | None = None  # a licence plate read on it
    plate_score: float | None = None
    box: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 in the camera's detect frame, pixels
    stationary: bool | None = None
    end_time: datetime | None = None  # when the object left the picture (aware, UTC)
    speed_kmh: float | None = None  # estimated now, in a speed zone
    avg_speed_kmh: float | None = None  # average of the last estimates
    direction_deg: float | None = None  # of travel in the picture: 0 right, 90 down (not a bearing)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


def normalise_label(label: str) -> str:
    """``"Street Stall"`` -> ``street_stall``: trimmed, lower-case, spaces and hyphens to ``_``."""
    return re.sub(r"[\s\-]+", "_", label.strip().lower())


def category_for(label: str, categories: Mapping[str, str | None] | None = None) -> str | None:
    """The street-event category of a detector label; ``categories`` overrides the defaults."""
    key = normalise_label(label)
    if categories is not None:
        for name, category in categories.items():
            if normalise_label(name) == key:
                return category
    return DEFAULT_CATEGORIES.get(key)


# --- generic ---------------------------------------------------------------------------------

_GENERIC_FIELDS = frozenset(
    {"label", "score", "time", "position", "snapshot_url", "clip_url", "id", "zones", "camera", "detail"}
)


def parse_generic(
    topic_camera: str,
    payload: bytes,
    *,
    categories: Mapping[str, str | None] | None = None,
    now: datetime | None = None,
) -> Detection:
    """Parse one ``cam/{topic_camera}/event`` payload.

    ``now`` is the receive time, used when the payload carries no ``time``; if it is not given the
    clock is read (the only I/O, and only then).
    """
    if not isinstance(topic_camera, str) or not topic_camera or len(topic_camera) > _MAX_ID:
        raise FeedError("topic", f"expected a camera id of 1-{_MAX_ID} characters, got {topic_camera!r}")
    obj = _load_object(payload)
    extra = set(obj) - _GENERIC_FIELDS
    if extra:
        raise FeedError(sorted(extra)[0], "unknown field (vendor data goes under 'detail')")
    if "camera" in obj and obj["camera"] != topic_camera:
        raise FeedError("camera", f"{obj['camera']!r} disagrees with the topic's camera {topic_camera!r}")
    label = _label(obj.get("label"), "label")
    lat, lon = _position(obj.get("position"))
    if obj.get("detail") is not None and not isinstance(obj["detail"], dict):
        raise FeedError("detail", f"expected an object, got {_kind(obj['detail'])}")
    if obj.get("time") is None:
        when = _now(now)
    else:
        try:
            when = parse_time(obj["time"], "time")
        except EventError as exc:  # the event schema's error; re-raise as ours, same field path
            raise FeedError(exc.field, exc.problem) from None
    return Detection(
        camera=topic_camera,
        label=label,
        category=category_for(label, categories),
        score=_score(obj.get("score"), "score"),
        time=when,
        source="generic",
        phase="new",
        source_id=_optional_text(obj.get("id"), "id", _MAX_ID),
        lat=lat,
        lon=lon,
        snapshot_url=_url(obj.get("snapshot_url"), "snapshot_url"),
        clip_url=_url(obj.get("clip_url"), "clip_url"),
        zones=_zones(obj.get("zones"), "zones"),
        raw=obj,
    )


# --- Frigate ---------------------------------------------------------------------------------


def parse_frigate(
    payload: bytes,
    *,
    cameras: Mapping[str, str],
    frigate_url: str | None = None,
    categories: Mapping[str, str | None] | None = None,
    unit_system: UnitSystem = "metric",
) -> Detection | None:
    """Parse one ``frigate/events`` message; ``None`` for a false positive.

    ``cameras`` maps Frigate camera names to registry ids; a camera not in it raises
    :class:`UnknownCamera`. ``frigate_url`` is Frigate's base URL (``http://frigate:5000``); without it
    no snapshot or clip URL is given. ``unit_system`` is Frigate's ``ui.unit_system``: its speeds are
    mph when imperial, and are stored in km/h.
    """
    obj = _load_object(payload)
    phase = obj.get("type")
    if phase not in ("new", "update", "end"):
        raise FeedError("type", f"expected one of new, update, end, got {phase!r}")
    after = obj.get("after")
    if not isinstance(after, dict):
        raise FeedError("after", f"expected an object, got {_kind(after)}")
    # Unknown fields are not refused here: Frigate adds fields in most releases.
    event_id = _optional_text(after.get("id"), "after.id", _MAX_ID)
    if event_id is None:
        raise FeedError("after.id", "required field is missing")
    name = after.get("camera")
    if not isinstance(name, str) or not name:
        raise FeedError("after.camera", f"expected a camera name, got {name!r}")
    camera = cameras.get(name)
    if camera is None:
        raise UnknownCamera("after.camera", name)
    label = _label(after.get("label"), "after.label")
    when = _epoch(after.get("start_time"), "after.start_time")
    # top_score is the best score over the object's life, what Frigate itself judges it by.
    score = _score(after.get("top_score"), "after.top_score")
    if score is None:
        score = _score(after.get("score"), "after.score")
    # Every zone the object entered over its life, then any it is in now that it did not "enter".
    zones = _zones(after.get("entered_zones"), "after.entered_zones")
    zones += tuple(z for z in _zones(after.get("current_zones"), "after.current_zones") if z not in zones)
    has_snapshot, has_clip = _flag(after, "has_snapshot"), _flag(after, "has_clip")
    snapshot_url = clip_url = None
    if frigate_url is not None:
        base = frigate_url.rstrip("/").removesuffix("/api")
        quoted = quote(event_id, safe="")
        if has_snapshot:
            snapshot_url = f"{base}/api/events/{quoted}/snapshot.jpg"
        if has_clip:
            clip_url = f"{base}/api/events/{quoted}/clip.mp4"
    sub_label, sub_label_score = _named_score(after.get("sub_label"), "after.sub_label", _MAX_NAME)
    plate, plate_score = _named_score(after.get("recognized_license_plate"), "after.recognized_license_plate",
                                      _MAX_PLATE)
    if plate is not None and plate_score is None:
        plate_score = _score(after.get("recognized_license_plate_score"), "after.recognized_license_plate_score")
    stationary = _optional_flag(after, "stationary")
    if stationary is None:
        active = _optional_flag(after, "active")
        stationary = None if active is None else not active
    end_time = None if after.get("end_time") is None else _epoch(after["end_time"], "after.end_time")
    # Frigate sends 0 (and an angle of 0) for an object outside every speed zone: no estimate.
    factor = _MPH_KMH if unit_system == "imperial" else 1.0
    speed = _speed(after.get("current_estimated_speed"), "after.current_estimated_speed", factor)
    avg_speed = _speed(after.get("average_estimated_speed"), "after.average_estimated_speed", factor)
    direction = _angle(after.get("velocity_angle"), "after.velocity_angle")
    if speed is None and avg_speed is None:
        direction = None
    box = _box(after.get("box"), "after.box")
    # Checked last, so that a false positive from an unmapped camera still counts as unknown.
    if _flag(after, "false_positive"):
        return None
    return Detection(
        camera=camera,
        label=label,
        category=category_for(label, categories),
        score=score,
        time=when,
        source="frigate",
        phase=phase,
        source_id=event_id,
        snapshot_url=snapshot_url,
        clip_url=clip_url,
        zones=zones,
        sub_label=sub_label,
        sub_label_score=sub_label_score,
        plate=plate,
        plate_score=plate_score,
        box=box,
        stationary=stationary,
        end_time=end_time,
        speed_kmh=speed,
        avg_speed_kmh=avg_speed,
        direction_deg=direction,
        raw=obj,
    )


# --- Frigate's snapshots and tracked-object updates --------------------------------------------


@dataclass(frozen=True, slots=True)
class FrigateSnapshot:
    """A JPEG that Frigate published for a camera and an object label."""

    camera: str  # registry id
    label: str  # normalised, as in a Detection
    data: bytes = field(repr=False)
    sha256: str
    content_type: str = "image/jpeg"


UpdateKind = Literal["face", "lpr", "description", "classification"]
_UPDATE_KINDS: tuple[UpdateKind, ...] = ("face", "lpr", "description", "classification")


@dataclass(frozen=True, slots=True)
class ObjectUpdate:
    """What ``frigate/tracked_object_update`` says about the tracked object (the detection) ``source_id``."""

    source_id: str  # Frigate's id of the tracked object: a Detection's source_id
    kind: UpdateKind
    camera: str | None = None  # registry id; None where the message names no camera
    time: datetime | None = None  # Frigate's timestamp of the recognition
    name: str | None = None  # face: the person; lpr: the plate's known name; classification: its sub_label
    plate: str | None = None
    score: float | None = None
    description: str | None = None
    model: str | None = None  # classification: the model's name
    attribute: str | None = None  # classification of the attribute type: its value


def parse_frigate_snapshot(camera_name: str, label: str, payload: bytes, *,
                           cameras: Mapping[str, str]) -> FrigateSnapshot:
    """Parse one ``frigate/{camera_name}/{label}/snapshot`` message: a whole JPEG, at most
    :data:`MAX_SNAPSHOT_BYTES`, from a camera that ``cameras`` maps to a registry id."""
    if not isinstance(payload, bytes | bytearray):
        raise FeedError("$", f"expected bytes, got {type(payload).__name__}")
    if not isinstance(camera_name, str) or not camera_name:
        raise FeedError("topic", f"expected a camera name, got {camera_name!r}")
    tag = _label(label, "topic")
    camera = cameras.get(camera_name)
    if camera is None:
        raise UnknownCamera("topic", camera_name)
    if not payload:
        raise FeedError("$", "empty payload: no picture")
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise FeedError("$", f"payload of {len(payload)} bytes exceeds the {MAX_SNAPSHOT_BYTES}-byte limit")
    data = bytes(payload)
    if not data.startswith(JPEG_SOI):
        raise FeedError("$", f"not a JPEG image (starts {data[:16].hex(' ')})")
    if not data.endswith(JPEG_EOI):
        raise FeedError("$", f"JPEG without its end marker FF D9: cut short (ends {data[-16:].hex(' ')})")
    return FrigateSnapshot(camera, tag, data, hashlib.sha256(data).hexdigest())


def parse_frigate_update(payload: bytes, *, cameras: Mapping[str, str]) -> ObjectUpdate | None:
    """Parse one ``frigate/tracked_object_update`` message; ``None`` for a type this parser does not
    know (Frigate adds some per release: they are not errors). A camera that ``cameras`` does not map
    raises :class:`UnknownCamera`."""
    obj = _load_object(payload)
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        raise FeedError("type", f"expected the update's type, got {kind!r}")
    source_id = _optional_text(obj.get("id"), "id", _MAX_ID)
    if source_id is None:
        raise FeedError("id", "required field is missing")
    camera: str | None = None
    if obj.get("camera") is not None:
        name = obj["camera"]
        if not isinstance(name, str) or not name:
            raise FeedError("camera", f"expected a camera name, got {name!r}")
        camera = cameras.get(name)
        if camera is None:
            raise UnknownCamera("camera", name)
    if kind not in _UPDATE_KINDS:
        return None
    when = None if obj.get("timestamp") is None else _epoch(obj["timestamp"], "timestamp")
    score = _score(obj.get("score"), "score")
    if kind == "face":
        return ObjectUpdate(source_id, "face", camera, when, name=_optional_text(obj.get("name"), "name", _MAX_NAME),
                            score=score)
    if kind == "lpr":
        plate = _optional_text(obj.get("plate"), "plate", _MAX_PLATE)
        if plate is None:
            raise FeedError("plate", "required field is missing")
        return ObjectUpdate(source_id, "lpr", camera, when, name=_optional_text(obj.get("name"), "name", _MAX_NAME),
                            plate=plate, score=score)
    if kind == "description":
        text = _optional_text(obj.get("description"), "description", _MAX_DESCRIPTION)
        if text is None:
            raise FeedError("description", "required field is missing")
        return ObjectUpdate(source_id, "description", camera, when, description=text)
    model = _optional_text(obj.get("model"), "model", _MAX_LABEL)
    if model is None:
        raise FeedError("model", "required field is missing")
    sub_label = _optional_text(obj.get("sub_label"), "sub_label", _MAX_NAME)
    attribute = _optional_text(obj.get("attribute"), "attribute", _MAX_NAME)
    if sub_label is None and attribute is None:
        raise FeedError("sub_label", "a classification names a sub_label or an attribute")
    return ObjectUpdate(source_id, "classification", camera, when, name=sub_label, score=score, model=model,
                        attribute=attribute)


# --- field validators ------------------------------------------------------------------------


def _load_object(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, bytes | bytearray):
        raise FeedError("$", f"expected bytes, got {type(payload).__name__}")
    if len(payload) > MAX_FEED_BYTES:
        raise FeedError("$", f"payload of {len(payload)} bytes exceeds the {MAX_FEED_BYTES}-byte limit")
    try:
        obj = load_json(payload)
    except ValueError as exc:
        raise FeedError("$", str(exc)) from None
    if not isinstance(obj, dict):
        raise FeedError("$", f"expected a JSON object, got {_kind(obj)}")
    return obj


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _label(value: object, path: str) -> str:
    if value is None:
        raise FeedError(path, "required field is missing")
    if not isinstance(value, str):
        raise FeedError(path, f"expected a string, got {value!r}")
    label = normalise_label(value)
    if not label or len(label) > _MAX_LABEL:
        raise FeedError(path, f"expected 1-{_MAX_LABEL} characters, got {value!r}")
    return label


def _number(value: object) -> float | None:
    # bool is an int in Python, but true is no number; JSON ints may be too large for a float
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _score(value: object, path: str) -> float | None:
    if value is None:
        return None
    score = _number(value)
    if score is None or not 0.0 <= score <= 1.0:
        raise FeedError(path, f"expected a number 0..1, got {value!r}")
    return score


def _position(value: object) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise FeedError("position", f"expected an object with lat and lon, got {_kind(value)}")
    extra = set(value) - {"lat", "lon"}
    if extra:
        raise FeedError(f"position.{sorted(extra)[0]}", "unknown field")
    coords = []
    for key, limit in (("lat", 90.0), ("lon", 180.0)):
        if key not in value:
            raise FeedError(f"position.{key}", "required number is missing")
        number = _number(value[key])
        if number is None or not -limit <= number <= limit:
            raise FeedError(f"position.{key}", f"expected degrees -{limit:g}..{limit:g}, got {value[key]!r}")
        coords.append(number)
    return coords[0], coords[1]


def _optional_text(value: object, path: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise FeedError(path, f"expected a string of 1-{limit} characters, got {value!r}")
    return value


def _url(value: object, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= _MAX_URL:
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unbalanced [ in the host
            parts = None
        if parts is not None and parts.scheme in ("http", "https") and parts.netloc:
            # Stored URLs are shown to every console; camera credentials come from the environment.
            if "@" in parts.netloc:
                raise FeedError(path, "credentials in the URL are refused (not echoed here)")
            return value
    raise FeedError(path, f"expected an http(s) URL, got {value!r}")


def _zones(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise FeedError(path, f"expected a list of zone names, got {_kind(value)}")
    if len(value) > _MAX_ZONES:
        raise FeedError(path, f"expected at most {_MAX_ZONES} zone names, got {len(value)}")
    zones: list[str] = []
    for i, zone in enumerate(value):
        name = _optional_text(zone, f"{path}[{i}]", _MAX_LABEL)
        if name is None:
            raise FeedError(f"{path}[{i}]", "expected a zone name, got null")
        if name not in zones:
            zones.append(name)
    return tuple(zones)


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FeedError(f"after.{key}", f"expected true or false, got {value!r}")
    return value


def _optional_flag(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise FeedError(f"after.{key}", f"expected true or false, got {value!r}")


def _named_score(value: object, path: str, limit: int) -> tuple[str | None, float | None]:
    """A bare name, or Frigate's ``[name, score]`` pair (either may be null: a cleared one)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return _optional_text(value, path, limit), None
    if isinstance(value, list) and len(value) == 2:
        name = _optional_text(value[0], f"{path}[0]", limit)
        score = _score(value[1], f"{path}[1]")
        return name, score if name is not None else None
    raise FeedError(path, f"expected a name or a [name, score] pair, got {value!r}")


def _speed(value: object, path: str, factor: float) -> float | None:
    if value is None:
        return None
    speed = _number(value)
    if speed is None or not 0.0 <= speed <= _MAX_SPEED:
        raise FeedError(path, f"expected a speed of 0..{_MAX_SPEED:g}, got {value!r}")
    return speed * factor if speed > 0 else None


def _angle(value: object, path: str) -> float | None:
    if value is None:
        return None
    angle = _number(value)
    if angle is None or not -360.0 <= angle <= 360.0:
        raise FeedError(path, f"expected degrees, got {value!r}")
    return angle % 360.0


def _box(value: object, path: str) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 4:
        numbers = [_number(v) for v in value]
        if all(n is not None and 0 <= n <= _MAX_PIXELS for n in numbers):
            x1, y1, x2, y2 = (round(n) for n in numbers if n is not None)
            if x1 <= x2 and y1 <= y2:
                return x1, y1, x2, y2
    raise FeedError(path, f"expected [x1, y1, x2, y2] in pixels, got {value!r}")


def _epoch(value: object, path: str) -> datetime:
    if value is None:
        raise FeedError(path, "required number is missing")
    seconds = _number(value)
    if seconds is None or not _EPOCH_MIN <= seconds <= _EPOCH_MAX:
        raise FeedError(path, f"expected epoch seconds between the years 2000 and 2200, got {value!r}")
    return datetime.fromtimestamp(seconds, UTC)
