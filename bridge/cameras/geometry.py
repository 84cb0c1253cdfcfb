"""Road-camera geometry, with no I/O: what a camera is, how far and in which direction a point lies, and
whether a camera can see it.

A camera sees a point when the point is inside its range and inside its field-of-view sector::

                      N (0 deg)
                      |        heading  h = 30 deg
              .       |      /           field of view f = 60 deg: sees bearings 0..60
                 .    |    /  .
     edge h-f/2 ---.  |  /     .  <- edge h+f/2          a point P at distance d <= range and bearing b
                     .|/  P     .                        is seen when the angle between b and h,
                      C---------.-------- E (90 deg)     off_axis = |((b - h + 180) mod 360) - 180|,
                       `.       .                        is at most f/2 (edges inclusive)
                          `-- range --'

- Bearings are initial great-circle bearings from the camera to the point, in degrees clockwise from
  true north, 0 <= b < 360. Sectors may cross north: heading 0 with f = 20 covers 350..360 and 0..10.
- A 360-degree camera (``fov_deg == 360``; ``heading_deg`` may then be ``None``) sees everything in range.
- A point at the camera itself (closer than :data:`DISTANCE_TOLERANCE_M`) is seen, dead centre: its
  bearing is meaningless there.
- Distances are great-circle (haversine) distances on a sphere of the mean Earth radius. Over a city
  the spherical error against the WGS 84 ellipsoid is below 0.5 %, far below a camera's range accuracy;
  the antimeridian and the poles get no special care.

Ranking (:attr:`Sighting.score`, 0..1, higher is better)::

    score = 0.5 * (1 - d / range) + 0.5 * (1 - off_axis / (fov / 2))     sector cameras
    score = 0.5 * (1 - d / range) + 0.5                                   360-degree cameras

so a point at the camera and on its axis scores 1, a point at the far corner of the sector scores 0, and a
360-degree camera counts every point as centred. Ties are broken by distance, then camera id
(:func:`best_first`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, cast
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import ArrayLike, NDArray

# IUGG mean Earth radius R1 = (2a + b) / 3 of the GRS 80 ellipsoid, in metres: H. Moritz, "Geodetic
# Reference System 1980", Bulletin Géodésique 54 (1980), and Journal of Geodesy 74 (2000) 128-133.
EARTH_RADIUS_M = 6371008.8

# Points on a sector edge or at exactly the range are seen. Computing such a point (e.g. a destination at
# a given distance and bearing) and measuring it back loses a few ulps, so the comparisons allow this
# much; 1e-7 degree is 0.2 mm at 100 m.
DISTANCE_TOLERANCE_M = 1e-3
ANGLE_TOLERANCE_DEG = 1e-7

CameraKind = Literal["fixed", "ptz", "vehicle"]
KINDS: tuple[CameraKind, ...] = ("fixed", "ptz", "vehicle")

# The id is one MQTT topic level (cam/{camera}/event): no separators, no wildcards, no NUL.
_TOPIC_LEVEL_FORBIDDEN = re.compile(r"[/+#\x00]")
# A POSIX environment variable name; anything else (say "admin:secret") is probably the secret itself.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return float(value)


def _url(field: str, value: object, schemes: tuple[str, ...]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a URL string or None, got {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not parts.netloc:
        raise ValueError(f"{field}: expected a {'/'.join(schemes)} URL with a host, got {value!r}")
    if parts.password is not None:
        # Not echoed: the value holds a secret that must not reach a log.
        raise ValueError(f"{field}: the URL contains a password; name an environment variable holding "
                         "user:password in credentials_env instead")


@dataclass(frozen=True, slots=True)
class Camera:
    """One road camera. Positions are WGS 84 degrees; headings are degrees clockwise from true north.

    ``unit`` ties a vehicle-mounted camera to the radio unit whose beacons move it (``"mdc:1234"``).
    ``credentials_env`` names an environment variable holding ``user:password`` for the snapshot URL; the
    secret itself is never stored here. ``presets`` are a PTZ camera's named headings.
    """

    id: str
    name: str
    lat: float
    lon: float
    heading_deg: float | None
    fov_deg: float
    range_m: float
    kind: CameraKind = "fixed"
    unit: str | None = None
    stream_url: str | None = None
    snapshot_url: str | None = None
    credentials_env: str | None = None
    presets: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        # Every error names the field, so that a registry import can say which column of which row is wrong.
        if not isinstance(self.id, str) or not self.id or _TOPIC_LEVEL_FORBIDDEN.search(self.id):
            raise ValueError(f"id: expected a non-empty string usable as one MQTT topic level "
                             f"(no '/', '+', '#'), got {self.id!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"name: expected a string, got {type(self.name).__name__}")
        numbers = {"lat": self.lat, "lon": self.lon, "fov_deg": self.fov_deg, "range_m": self.range_m}
        for field, value in numbers.items():
            object.__setattr__(self, field, _number(field, value))
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"lat: expected -90..90 degrees, got {self.lat!r}")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"lon: expected -180..180 degrees, got {self.lon!r}")
        if not 0.0 < self.fov_deg <= 360.0:
            raise ValueError(f"fov_deg: expected more than 0 and at most 360 degrees, got {self.fov_deg!r}")
        if not self.range_m > 0.0:
            raise ValueError(f"range_m: expected more than 0 metres, got {self.range_m!r}")
        self._check_heading()
        self._check_kind_and_unit()
        _url("stream_url", self.stream_url, ("rtsp", "rtsps", "http", "https", "rtmp", "srt"))
        _url("snapshot_url", self.snapshot_url, ("http", "https"))
        if self.credentials_env is not None and (
                not isinstance(self.credentials_env, str) or not _ENV_NAME.fullmatch(self.credentials_env)):
            raise ValueError("credentials_env: expected the name of an environment variable "
                             "([A-Za-z_][A-Za-z0-9_]*), not its value")
        object.__setattr__(self, "presets", _presets(self.presets, self.kind))

    def _check_heading(self) -> None:
        if self.heading_deg is None:
            if self.fov_deg != 360.0:
                raise ValueError(f"heading_deg: required unless fov_deg is 360 (fov_deg is {self.fov_deg!r})")
            return
        heading = _number("heading_deg", self.heading_deg)
        if not 0.0 <= heading <= 360.0:
            raise ValueError(f"heading_deg: expected 0..360 degrees or None, got {heading!r}")
        object.__setattr__(self, "heading_deg", heading)

    def _check_kind_and_unit(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "vehicle":
            if not isinstance(self.unit, str) or not self.unit:
                raise ValueError(f"unit: a vehicle camera needs the radio unit that moves it, got {self.unit!r}")
        elif self.unit is not None:
            raise ValueError(f"unit: only a vehicle camera follows a unit ({self.kind} camera), got {self.unit!r}")

    @property
    def omnidirectional(self) -> bool:
        return self.fov_deg >= 360.0

    def moved(self, lat: float, lon: float, heading_deg: float | None = None) -> Camera:
        """This camera at a new position; the heading is kept unless one is given. Validated again."""
        return replace(self, lat=lat, lon=lon, heading_deg=self.heading_deg if heading_deg is None else heading_deg)


def _presets(value: object, kind: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise ValueError(f"presets: expected a sequence of (name, heading_deg), got {value!r}")
    presets: list[tuple[str, float]] = []
    for item in value:
        if not isinstance(item, tuple | list) or len(item) != 2 or not isinstance(item[0], str) or not item[0]:
            raise ValueError(f"presets: expected (name, heading_deg) pairs, got {item!r}")
        heading = _number(f"presets[{item[0]}]", item[1])
        if not 0.0 <= heading <= 360.0:
            raise ValueError(f"presets[{item[0]}]: expected 0..360 degrees, got {heading!r}")
        presets.append((item[0], heading))
    if presets and kind != "ptz":
        raise ValueError(f"presets: only a PTZ camera has presets ({kind} camera)")
    return tuple(presets)


@dataclass(frozen=True, slots=True)
class Sighting:
    """A camera that sees a point: how far, how far off its axis (degrees, 0 for 360-degree cameras
    without a heading) and the ranking score in 0..1 (formula in the module docstring)."""

    camera: Camera
    distance_m: float
    off_axis_deg: float
    score: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS 84 positions, on the mean-radius sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    # min(): rounding can push a a hair above 1 for antipodal points, outside asin's domain.
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_m_np(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    """:func:`haversine_m` over numpy arrays (broadcast), e.g. one point against many cameras."""
    p1, p2 = np.radians(np.asarray(lat1, dtype=np.float64)), np.radians(np.asarray(lat2, dtype=np.float64))
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return cast(NDArray[np.float64], 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a))))


def box_deg(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-sizes in degrees (latitude, longitude) of a box holding every point within ``radius_m`` of a
    point at ``lat``: a cheap prefilter (e.g. a database range query) before exact distances."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    return dlat, dlat / max(0.01, abs(math.cos(math.radians(lat))))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north, 0 <= b < 360."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    b = math.degrees(math.atan2(y, x)) % 360.0
    # -1e-20 % 360.0 is 360.0 in floating point; keep the documented half-open range.
    return 0.0 if b >= 360.0 else b


def angle_between_deg(a: float, b: float) -> float:
    """The smaller angle between two bearings, 0..180 degrees (so 350 and 10 are 20 apart)."""
    return abs((b - a + 180.0) % 360.0 - 180.0)


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lat, lon) going distance_m along the great circle at the initial bearing."""
    p1, l1 = math.radians(lat), math.radians(lon)
    t, d = math.radians(bearing), distance_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(t))
    l2 = l1 + math.atan2(math.sin(t) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def sees(camera: Camera, lat: float, lon: float) -> Sighting | None:
    """The camera's sighting of the point, or None when the point is out of range or outside the sector."""
    d = haversine_m(camera.lat, camera.lon, lat, lon)
    if d > camera.range_m + DISTANCE_TOLERANCE_M:
        return None
    nearness = max(0.0, 1.0 - d / camera.range_m)
    if camera.heading_deg is None or d <= DISTANCE_TOLERANCE_M:
        # No heading, or at the camera where a bearing means nothing: dead centre.
        off_axis = 0.0
    else:
        off_axis = angle_between_deg(camera.heading_deg, bearing_deg(camera.lat, camera.lon, lat, lon))
    if camera.omnidirectional:
        centred = 1.0
    else:
        half = camera.fov_deg / 2.0
        if off_axis > half + ANGLE_TOLERANCE_DEG:
            return None
        centred = max(0.0, 1.0 - off_axis / half)
    return Sighting(camera, d, off_axis, 0.5 * nearness + 0.5 * centred)


def _rank(s: Sighting) -> tuple[float, float, str]:
    return (-s.score, s.distance_m, s.camera.id)


def best_first(sightings: Iterable[Sighting], limit: int | None = None) -> list[Sighting]:
    """Sightings ordered best first: highest score, then nearest, then by camera id (deterministic)."""
    ordered = sorted(sightings, key=_rank)
    return ordered if limit is None else ordered[:limit]
