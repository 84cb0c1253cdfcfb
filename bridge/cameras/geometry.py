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
- Distances are great-circle distances on a sphere of the mean Earth radius. Over a city the spherical
  error against the WGS 84 ellipsoid is below 0.5 %, far below a camera's range accuracy; the
  antimeridian and the poles get no special care.

How the exact test is computed, and why so. Each position becomes its unit vector P (x towards 0 deg E
on the equator, z towards the north pole), and each camera also gets its local east and north unit
vectors E and N. With D = P - C (point minus camera) and chord c = |D|::

    distance = 2 R asin(c / 2)                 the haversine, hav(d / R) = (c / 2)^2, in chord form
    bearing  = atan2(D . E, D . N)             the initial great-circle bearing (P . E, P . N, as C . E
                                               = C . N = 0)

Per pair of positions this takes only +, -, * and sqrt, which IEEE 754 rounds exactly and which numpy
and Python therefore compute bit for bit alike; the trigonometry (sin, cos per position, asin and atan2
on the few candidates left) is done by Python's ``math`` once. That is what lets the camera index sift
many cameras with numpy and still answer exactly what :func:`sees` answers, to the last bit.

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
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple, cast
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import ArrayLike, NDArray

# IUGG mean Earth radius R1 = (2a + b) / 3 of the GRS 80 ellipsoid, in metres: H. Moritz, "Geodetic
# Reference System 1980", Bulletin Géodésique 54 (1980), and Journal of Geodesy 74 (2000) 128-133.
EARTH_RADIUS_M = 6371008.8
_DIAMETER_M = 2.0 * EARTH_RADIUS_M
_DEGREES = 180.0 / math.pi  # what math.degrees() multiplies by

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
        object.__setattr__(self, "lat", _latitude(self.lat))
        object.__setattr__(self, "lon", _longitude(self.lon))
        for field, value in {"fov_deg": self.fov_deg, "range_m": self.range_m}.items():
            object.__setattr__(self, field, _number(field, value))
        if not 0.0 < self.fov_deg <= 360.0:
            raise ValueError(f"fov_deg: expected more than 0 and at most 360 degrees, got {self.fov_deg!r}")
        if not self.range_m > 0.0:
            raise ValueError(f"range_m: expected more than 0 metres, got {self.range_m!r}")
        if self.heading_deg is None:
            if self.fov_deg != 360.0:
                raise ValueError(f"heading_deg: required unless fov_deg is 360 (fov_deg is {self.fov_deg!r})")
        else:
            object.__setattr__(self, "heading_deg", _heading(self.heading_deg))
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "vehicle":
            if not isinstance(self.unit, str) or not self.unit:
                raise ValueError(f"unit: a vehicle camera needs the radio unit that moves it, got {self.unit!r}")
        elif self.unit is not None:
            raise ValueError(f"unit: only a vehicle camera follows a unit ({self.kind} camera), got {self.unit!r}")
        _url("stream_url", self.stream_url, ("rtsp", "rtsps", "http", "https", "rtmp", "srt"))
        _url("snapshot_url", self.snapshot_url, ("http", "https"))
        if self.credentials_env is not None and (
                not isinstance(self.credentials_env, str) or not _ENV_NAME.fullmatch(self.credentials_env)):
            raise ValueError("credentials_env: expected the name of an environment variable "
                             "([A-Za-z_][A-Za-z0-9_]*), not its value")
        object.__setattr__(self, "presets", _presets(self.presets, self.kind))

    @property
    def omnidirectional(self) -> bool:
        return self.fov_deg >= 360.0

    def moved(self, lat: float, lon: float, heading_deg: float | None = None) -> Camera:
        """This camera at a new position; the heading is kept unless one is given. The new values are
        validated as the constructor does (ValueError naming the field)."""
        # Only what changes is checked again: a vehicle camera moves with every beacon of its unit, and a
        # batch of thousands must not pay for URL parsing each time.
        return moved_unchecked(self, _latitude(lat), _longitude(lon),
                               self.heading_deg if heading_deg is None else _heading(heading_deg))


# The slots' own setters, which a frozen dataclass's __init__ reaches through object.__setattr__: a copy
# of a camera with every field set through them costs a fifth of dataclasses.replace(), which runs every
# check of __post_init__ again (URLs parsed, presets walked).
_CAMERA_FIELDS = ("id", "name", "lat", "lon", "heading_deg", "fov_deg", "range_m", "kind", "unit", "stream_url",
                  "snapshot_url", "credentials_env", "presets")
if tuple(f.name for f in fields(Camera)) != _CAMERA_FIELDS:
    raise AssertionError("moved_unchecked() must copy every field of Camera")
(_SET_ID, _SET_NAME, _SET_LAT, _SET_LON, _SET_HEADING, _SET_FOV, _SET_RANGE, _SET_KIND, _SET_UNIT, _SET_STREAM,
 _SET_SNAPSHOT, _SET_CREDENTIALS, _SET_PRESETS) = (Camera.__dict__[name].__set__ for name in _CAMERA_FIELDS)


def moved_unchecked(camera: Camera, lat: float, lon: float, heading_deg: float | None) -> Camera:
    """:meth:`Camera.moved` for values already checked (the camera index checks a batch of beacons at
    once): the camera at (lat, lon) with this heading (None only where the camera has none)."""
    c = object.__new__(Camera)
    _SET_ID(c, camera.id)
    _SET_NAME(c, camera.name)
    _SET_LAT(c, lat)
    _SET_LON(c, lon)
    _SET_HEADING(c, heading_deg)
    _SET_FOV(c, camera.fov_deg)
    _SET_RANGE(c, camera.range_m)
    _SET_KIND(c, camera.kind)
    _SET_UNIT(c, camera.unit)
    _SET_STREAM(c, camera.stream_url)
    _SET_SNAPSHOT(c, camera.snapshot_url)
    _SET_CREDENTIALS(c, camera.credentials_env)
    _SET_PRESETS(c, camera.presets)
    return c


def _latitude(value: object) -> float:
    lat = _number("lat", value)
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat: expected -90..90 degrees, got {lat!r}")
    return lat


def _longitude(value: object) -> float:
    lon = _number("lon", value)
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon: expected -180..180 degrees, got {lon!r}")
    return lon


def _heading(value: object) -> float:
    heading = _number("heading_deg", value)
    if not 0.0 <= heading <= 360.0:
        raise ValueError(f"heading_deg: expected 0..360 degrees or None, got {heading!r}")
    return heading


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


class Sighting(NamedTuple):
    """A camera that sees a point: how far, how far off its axis (degrees, 0 for 360-degree cameras
    without a heading) and the ranking score in 0..1 (formula in the module docstring).

    A named tuple rather than a frozen dataclass: a batch of 5,000 moving units makes 30,000 of them,
    and ``tuple.__new__`` makes one in C (a frozen dataclass's ``__init__`` is five Python calls)."""

    camera: Camera
    distance_m: float
    off_axis_deg: float
    score: float


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """The position on the unit sphere: x towards (0, 0), y towards (0, 90 E), z towards the north pole."""
    p, lam = math.radians(lat), math.radians(lon)
    c = math.cos(p)
    return c * math.cos(lam), c * math.sin(lam), math.sin(p)


def chord_m(chord2: float) -> float:
    """The great-circle distance in metres for a squared chord between two unit vectors."""
    # min(): rounding can push the half chord a hair above 1 for antipodal points, outside asin's domain.
    return _DIAMETER_M * math.asin(min(1.0, math.sqrt(chord2) * 0.5))


def chord2_within(distance_m: float) -> float:
    """A squared chord above which :func:`chord_m` is surely more than ``distance_m`` (by a relative
    1e-9 margin, far above asin's rounding); infinity when every chord is within reach."""
    if distance_m >= math.pi * EARTH_RADIUS_M * (1.0 - 1e-9):
        return math.inf
    return (2.0 * math.sin(distance_m / _DIAMETER_M)) ** 2 * (1.0 + 1e-9)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS 84 positions, on the mean-radius sphere (the
    haversine in chord form, see the module docstring)."""
    x1, y1, z1 = unit_vector(lat1, lon1)
    x2, y2, z2 = unit_vector(lat2, lon2)
    dx, dy, dz = x2 - x1, y2 - y1, z2 - z1
    return chord_m(dx * dx + dy * dy + dz * dz)


def haversine_m_np(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> NDArray[np.float64]:
    """:func:`haversine_m` over numpy arrays (broadcast), e.g. one point against many cameras. numpy's
    trigonometry may differ from ``math``'s in the last bits: equal to rounding, not bit for bit."""
    p1, p2 = np.radians(np.asarray(lat1, dtype=np.float64)), np.radians(np.asarray(lat2, dtype=np.float64))
    l1, l2 = np.radians(np.asarray(lon1, dtype=np.float64)), np.radians(np.asarray(lon2, dtype=np.float64))
    c1, c2 = np.cos(p1), np.cos(p2)
    dx, dy, dz = c2 * np.cos(l2) - c1 * np.cos(l1), c2 * np.sin(l2) - c1 * np.sin(l1), np.sin(p2) - np.sin(p1)
    half = np.minimum(1.0, np.sqrt(dx * dx + dy * dy + dz * dz) * 0.5)
    return cast(NDArray[np.float64], _DIAMETER_M * np.arcsin(half))


def box_deg(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-sizes in degrees (latitude, longitude) of a box holding every point within ``radius_m`` of a
    point at ``lat``: a cheap prefilter (e.g. a database range query) before exact distances."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    return dlat, dlat / max(0.01, abs(math.cos(math.radians(lat))))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north, 0 <= b < 360."""
    x1, y1, z1, ex, ey, nx, ny, nz = local_frame(lat1, lon1)
    x2, y2, z2 = unit_vector(lat2, lon2)
    dx, dy, dz = x2 - x1, y2 - y1, z2 - z1
    return _bearing(dx * ex + dy * ey, dx * nx + dy * ny + dz * nz)


def local_frame(lat: float, lon: float) -> tuple[float, float, float, float, float, float, float, float]:
    """The position's unit vector (x, y, z), then its local east (ex, ey; ez is 0) and north (nx, ny, nz)."""
    p, lam = math.radians(lat), math.radians(lon)
    cp, sp, cl, sl = math.cos(p), math.sin(p), math.cos(lam), math.sin(lam)
    return cp * cl, cp * sl, sp, -sl, cl, -sp * cl, -sp * sl, cp


def _bearing(east: float, north: float) -> float:
    b = math.atan2(east, north) * _DEGREES
    # As b % 360.0 (-0.0 included), without its cost; -1e-20 + 360.0 is 360.0 in floating point: keep the
    # documented half-open range.
    if b <= 0.0:
        b += 360.0
        if b >= 360.0:
            b = 0.0
    return b


def angle_between_deg(a: float, b: float) -> float:
    """The smaller angle between two bearings, 0..180 degrees (so 350 and 10 are 20 apart)."""
    d = abs(b - a) % 360.0  # exact; a no-op for bearings in 0..360
    return 360.0 - d if d > 180.0 else d


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lat, lon) going distance_m along the great circle at the initial bearing."""
    p1, l1 = math.radians(lat), math.radians(lon)
    t, d = math.radians(bearing), distance_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(t))
    l2 = l1 + math.atan2(math.sin(t) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


# What the exact test needs of a camera, computed once, as 12 doubles: its unit vector (cx, cy, cz), east
# (ex, ey) and north (nx, ny, nz) vectors, the squared chord beyond which it surely sees nothing, its range,
# heading (NaN: none) and half field of view (infinite for 360 degrees: off_axis / half is then 0 and the
# point counts as centred, as the ranking says). Packed, so that the camera index keeps all of them in one
# array: a query then reads a few cache lines per candidate, not a dozen scattered float objects.
SIGHT_RECORD = struct.Struct("12d")
# A sighting with its ranking in front, as best_first orders them: (-score, distance, camera id, sighting).
Ranked = tuple[float, float, str, Sighting]



def sight_record(camera: Camera) -> tuple[float, ...]:
    """The camera's :data:`SIGHT_RECORD`, for :func:`judge`."""
    cx, cy, cz, ex, ey, nx, ny, nz = local_frame(camera.lat, camera.lon)
    return (cx, cy, cz, ex, ey, nx, ny, nz, chord2_within(camera.range_m + DISTANCE_TOLERANCE_M), camera.range_m,
            math.nan if camera.heading_deg is None else camera.heading_deg,
            math.inf if camera.omnidirectional else camera.fov_deg / 2.0)


def judge(point: tuple[float, float, float], slots: Iterable[int], records: bytes | memoryview,
          cameras: Sequence[Camera | None], out: list[Ranked]) -> None:
    """Append to ``out`` the sighting of the point (a :func:`unit_vector`) by each camera in ``slots`` that
    sees it: slot i's camera is ``cameras[i]``, its :data:`SIGHT_RECORD` the i-th in ``records``.

    This is the exact test (:func:`sees` is this with one camera); the camera index runs it on the few
    candidates its cells leave. One loop, all inline and without min()/max() calls: it is the hot path
    of every ``seeing()``. Its arithmetic is that of :func:`haversine_m`, :func:`bearing_deg` and
    :func:`angle_between_deg`, bit for bit."""
    px, py, pz = point
    asin, sqrt, atan2 = math.asin, math.sqrt, math.atan2
    unpack, size = SIGHT_RECORD.unpack_from, SIGHT_RECORD.size
    new = tuple.__new__
    for slot in slots:
        cx, cy, cz, ex, ey, nx, ny, nz, within, range_m, heading, half = unpack(records, slot * size)
        dx, dy, dz = px - cx, py - cy, pz - cz
        chord2 = dx * dx + dy * dy + dz * dz
        if chord2 > within:
            continue  # surely out of range: the distance is not needed to know it
        h = sqrt(chord2) * 0.5
        d = _DIAMETER_M * asin(h if h < 1.0 else 1.0)  # chord_m()
        if d > range_m + DISTANCE_TOLERANCE_M:
            continue
        if heading != heading or d <= DISTANCE_TOLERANCE_M:
            # No heading (NaN), or at the camera where a bearing means nothing: dead centre.
            off_axis = 0.0
        else:
            b = atan2(dx * ex + dy * ey, dx * nx + dy * ny + dz * nz) * _DEGREES  # bearing_deg()
            if b <= 0.0:
                b += 360.0
                if b >= 360.0:
                    b = 0.0
            off_axis = b - heading if b >= heading else heading - b  # angle_between_deg()
            if off_axis > 180.0:
                off_axis = 360.0 - off_axis
            if off_axis > half + ANGLE_TOLERANCE_DEG:
                continue
        nearness = 1.0 - d / range_m
        centred = 1.0 - off_axis / half
        score = 0.5 * (nearness if nearness > 0.0 else 0.0) + 0.5 * (centred if centred > 0.0 else 0.0)
        camera = cameras[slot]
        # Sighting(camera, d, off_axis, score), without the named tuple's Python-level __new__.
        out.append((-score, d, camera.id, new(Sighting, (camera, d, off_axis, score))))  # type: ignore[union-attr]


def sees(camera: Camera, lat: float, lon: float) -> Sighting | None:
    """The camera's sighting of the point, or None when the point is out of range or outside the sector."""
    if haversine_m(camera.lat, camera.lon, lat, lon) > camera.range_m + DISTANCE_TOLERANCE_M:
        return None  # judge() would compute this very distance and say the same, at thrice the cost
    found: list[Ranked] = []
    judge(unit_vector(lat, lon), (0,), SIGHT_RECORD.pack(*sight_record(camera)), (camera,), found)
    return found[0][3] if found else None


def _rank(s: Sighting) -> tuple[float, float, str]:
    return (-s.score, s.distance_m, s.camera.id)


def best_first(sightings: Iterable[Sighting], limit: int | None = None) -> list[Sighting]:
    """Sightings ordered best first: highest score, then nearest, then by camera id (deterministic)."""
    ordered = sorted(sightings, key=_rank)
    return ordered if limit is None else ordered[:limit]
