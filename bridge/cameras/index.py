"""An in-memory spatial index of road cameras: which cameras see a point, which are near it. No I/O.

The Earth is cut into cells about ``cell_m`` metres square, in a local equirectangular projection::

    row = floor((lat + 90) / h)          h = cell_m / R in degrees: every row is cell_m tall
    col = floor((lon + 180) / w_row)     w_row = 360 / n_row, n_row = floor(2 pi R cos(lat_row) / cell_m):
                                         columns are cell_m wide at the row's latitude, a whole number of
                                         them round the parallel so that columns wrap at the antimeridian

Two grids share these cells:

- *positions*: each camera is in the one cell holding its position. ``near(p, r)`` visits the cells that
  a disc of radius r around p touches.
- *coverage*: each camera is in every cell that its range disc touches (about (2 range / cell_m + 2)^2
  cells). ``seeing(p)`` visits one cell, the one holding p, whatever the ranges: a single long-range
  camera does not slow down every query. (A camera whose disc would cover more than 1024 cells is kept
  in a short list that every query checks instead.)

The cells a disc touches come from its bounding box on the sphere: latitude +- r/R, longitude +-
asin(sin(r/R) / cos(lat)) (whole rows when the box reaches a pole), widened by a metre against rounding
at cell boundaries. Candidates from the cells are cut down by distance with numpy, then every survivor
is judged by the exact scalar :func:`~bridge.cameras.geometry.sees` / ``haversine_m``, so that the index
answers exactly what a scan over all cameras would.

Thread-safe: the bridge's ingest thread moves vehicle cameras while console queries read; one lock
guards every method, and what is returned (frozen cameras and sightings) is immutable.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator

import numpy as np

from bridge.cameras.geometry import (
    DISTANCE_TOLERANCE_M,
    EARTH_RADIUS_M,
    Camera,
    Sighting,
    best_first,
    haversine_m,
    haversine_m_np,
    sees,
)

Cell = tuple[int, int]

# Below this many candidates one numpy pass costs more than judging each in Python.
_NUMPY_MIN = 24
# numpy's and libm's trigonometry may differ in the last ulps; the prefilter keeps this much extra.
_PREFILTER_SLACK_M = DISTANCE_TOLERANCE_M + 1e-3
_CELL_SLACK_M = 1.0
# A camera whose range disc would cover more cells than this (3 km of range in 200 m cells) is kept in a
# short list that every seeing() checks instead: one odd long-range camera must not cost a million cells.
_MAX_COVER_CELLS = 1024


class _Grid:
    """The cell arithmetic (see the module docstring); holds no cameras."""

    def __init__(self, cell_m: float) -> None:
        self.cell_m = cell_m
        self.h = math.degrees(cell_m / EARTH_RADIUS_M)
        self.rows = math.ceil(180.0 / self.h)
        self._cols: dict[int, int] = {}

    def cols(self, row: int) -> int:
        n = self._cols.get(row)
        if n is None:
            lat = (row + 0.5) * self.h - 90.0
            circumference = 2.0 * math.pi * EARTH_RADIUS_M * math.cos(math.radians(min(lat, 90.0)))
            n = self._cols[row] = max(1, math.floor(circumference / self.cell_m))
        return n

    def row(self, lat: float) -> int:
        return min(self.rows - 1, max(0, math.floor((lat + 90.0) / self.h)))

    def key(self, lat: float, lon: float) -> Cell:
        row = self.row(lat)
        n = self.cols(row)
        return row, math.floor((lon + 180.0) / (360.0 / n)) % n

    def around(self, lat: float, lon: float, radius_m: float, max_cells: int | None = None) -> list[Cell] | None:
        """Every cell that could hold a point within radius_m of (lat, lon); None if more than max_cells."""
        ang = (radius_m + _CELL_SLACK_M) / EARTH_RADIUS_M
        dlat = math.degrees(ang)
        row_lo, row_hi = self.row(lat - dlat), self.row(lat + dlat)
        ratio = math.sin(ang) / max(1e-300, math.cos(math.radians(lat)))
        # The box reaches a pole (or the disc is a hemisphere): every longitude is possible.
        polar = lat + dlat >= 90.0 or lat - dlat <= -90.0 or ang >= math.pi / 2 or ratio >= 1.0
        dlon = 180.0 if polar else math.degrees(math.asin(ratio))
        spans: list[tuple[int, int, int]] = []
        total = 0
        for row in range(row_lo, row_hi + 1):
            n = self.cols(row)
            w = 360.0 / n
            lo, hi = math.floor((lon - dlon + 180.0) / w), math.floor((lon + dlon + 180.0) / w)
            if polar or hi - lo + 1 >= n:
                lo, hi = 0, n - 1
            spans.append((row, lo, hi))
            total += hi - lo + 1
            if max_cells is not None and total > max_cells:
                return None
        return [(row, c % self.cols(row)) for row, lo, hi in spans for c in range(lo, hi + 1)]


class CameraIndex:
    """Cameras by position: ``seeing(lat, lon)`` best first, ``near(lat, lon, r)`` nearest first.

    Vehicle cameras follow their unit: ``move_unit(unit, lat, lon)`` on each beacon (or ``move`` by id).
    """

    def __init__(self, cameras: Iterable[Camera] = (), cell_m: float = 200.0) -> None:
        if isinstance(cell_m, bool) or not isinstance(cell_m, int | float) or not 0 < cell_m < math.inf:
            raise ValueError(f"cell_m: expected a positive number of metres, got {cell_m!r}")
        self._grid = _Grid(float(cell_m))
        self._lock = threading.Lock()
        self._cameras: dict[str, Camera] = {}
        self._units: dict[str, set[str]] = {}
        # Slot arrays for the numpy prefilter; slot numbers are reused after removals.
        self._slot_of: dict[str, int] = {}
        self._id_at: list[str | None] = []
        self._free: list[int] = []
        self._lat = np.zeros(0)
        self._lon = np.zeros(0)
        self._range = np.zeros(0)
        self._positions: dict[Cell, set[int]] = {}
        self._coverage: dict[Cell, set[int]] = {}
        self._covered: dict[int, list[Cell]] = {}
        self._wide: set[int] = set()
        for camera in cameras:
            self._discard(camera.id)  # a later duplicate replaces an earlier one, as upsert does
            self._insert(camera)

    # -- changes -------------------------------------------------------------------------------------

    def upsert(self, camera: Camera) -> None:
        """Add the camera, or replace the one with its id."""
        with self._lock:
            self._discard(camera.id)
            self._insert(camera)

    def remove(self, camera_id: str) -> Camera | None:
        """Take the camera out; returns it, or None if there was none with that id."""
        with self._lock:
            return self._discard(camera_id)

    def move(self, camera_id: str, lat: float, lon: float, heading_deg: float | None = None) -> Camera:
        """Put the camera at a new position (heading kept unless given); returns the updated camera.
        KeyError for an unknown id; ValueError (naming the field) for a bad position."""
        with self._lock:
            camera = self._cameras.get(camera_id)
            if camera is None:
                raise KeyError(camera_id)
            moved = camera.moved(lat, lon, heading_deg)  # validates before anything changes
            self._discard(camera_id)
            self._insert(moved)
            return moved

    def move_unit(self, unit: str, lat: float, lon: float, heading_deg: float | None = None) -> list[Camera]:
        """Move every camera that follows this unit (a beacon arrived); returns them, updated."""
        with self._lock:
            moved = [self._cameras[i].moved(lat, lon, heading_deg) for i in sorted(self._units.get(unit, ()))]
            for camera in moved:
                self._discard(camera.id)
                self._insert(camera)
            return moved

    # -- queries -------------------------------------------------------------------------------------

    def get(self, camera_id: str) -> Camera | None:
        with self._lock:
            return self._cameras.get(camera_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cameras)

    def __contains__(self, camera_id: object) -> bool:
        with self._lock:
            return camera_id in self._cameras

    def __iter__(self) -> Iterator[Camera]:
        """A snapshot of the cameras, by id."""
        with self._lock:
            return iter(sorted(self._cameras.values(), key=lambda c: c.id))

    def cameras_of_unit(self, unit: str) -> list[Camera]:
        """The cameras that follow this radio unit, by id."""
        with self._lock:
            return [self._cameras[i] for i in sorted(self._units.get(unit, ()))]

    def seeing(self, lat: float, lon: float, limit: int | None = None) -> list[Sighting]:
        """The cameras that see the point, best first (:func:`~bridge.cameras.geometry.best_first`)."""
        _check_point(lat, lon)
        with self._lock:
            slots = self._coverage.get(self._grid.key(lat, lon), set()) | self._wide
            found = [s for slot in self._prefilter(slots, lat, lon, None)
                     if (s := sees(self._camera_at(slot), lat, lon)) is not None]
        return best_first(found, limit)

    def near(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[Camera, float]]:
        """The cameras within radius_m of the point (inclusive, to DISTANCE_TOLERANCE_M), with their
        distances, nearest first (then by id)."""
        _check_point(lat, lon)
        if isinstance(radius_m, bool) or not isinstance(radius_m, int | float) or not 0 <= radius_m < math.inf:
            raise ValueError(f"radius_m: expected a non-negative number of metres, got {radius_m!r}")
        with self._lock:
            # A radius wider than the occupied cells: scanning every camera is cheaper than every cell.
            cells = self._grid.around(lat, lon, radius_m, max_cells=len(self._positions))
            if cells is None:
                candidates: Iterable[int] = self._slot_of.values()
            else:
                candidates = [slot for cell in cells for slot in self._positions.get(cell, ())]
            found: list[tuple[Camera, float]] = []
            for slot in self._prefilter(candidates, lat, lon, radius_m):
                camera = self._camera_at(slot)
                d = haversine_m(camera.lat, camera.lon, lat, lon)
                if d <= radius_m + DISTANCE_TOLERANCE_M:
                    found.append((camera, d))
        found.sort(key=lambda cd: (cd[1], cd[0].id))
        return found if limit is None else found[:limit]

    # -- internals (caller holds the lock) -----------------------------------------------------------

    def _camera_at(self, slot: int) -> Camera:
        camera_id = self._id_at[slot]
        assert camera_id is not None
        return self._cameras[camera_id]

    def _prefilter(self, slots: Iterable[int], lat: float, lon: float, radius_m: float | None) -> list[int]:
        """The slots within radius_m (None: within each camera's range) by numpy, with slack for rounding."""
        slots = list(slots)
        if len(slots) < _NUMPY_MIN:
            return slots
        idx = np.fromiter(slots, dtype=np.intp, count=len(slots))
        d = haversine_m_np(lat, lon, self._lat[idx], self._lon[idx])
        limit = self._range[idx] if radius_m is None else radius_m
        near: list[int] = idx[d <= limit + _PREFILTER_SLACK_M].tolist()
        return near

    def _insert(self, camera: Camera) -> None:
        if self._free:
            slot = self._free.pop()
            self._id_at[slot] = camera.id
        else:
            slot = len(self._id_at)
            self._id_at.append(camera.id)
            if slot >= len(self._lat):
                size = max(64, 2 * len(self._lat))
                self._lat, self._lon, self._range = (np.resize(a, size) for a in (self._lat, self._lon, self._range))
        self._lat[slot], self._lon[slot], self._range[slot] = camera.lat, camera.lon, camera.range_m
        self._slot_of[camera.id] = slot
        self._cameras[camera.id] = camera
        if camera.unit is not None:
            self._units.setdefault(camera.unit, set()).add(camera.id)
        self._positions.setdefault(self._grid.key(camera.lat, camera.lon), set()).add(slot)
        covered = self._grid.around(camera.lat, camera.lon, camera.range_m + DISTANCE_TOLERANCE_M, _MAX_COVER_CELLS)
        if covered is None:
            self._wide.add(slot)
            covered = []
        for cell in covered:
            self._coverage.setdefault(cell, set()).add(slot)
        self._covered[slot] = covered

    def _discard(self, camera_id: str) -> Camera | None:
        camera = self._cameras.pop(camera_id, None)
        if camera is None:
            return None
        slot = self._slot_of.pop(camera_id)
        if camera.unit is not None:
            ids = self._units[camera.unit]
            ids.discard(camera_id)
            if not ids:
                del self._units[camera.unit]
        _take(self._positions, self._grid.key(camera.lat, camera.lon), slot)
        self._wide.discard(slot)
        for cell in self._covered.pop(slot):
            _take(self._coverage, cell, slot)
        self._id_at[slot] = None
        self._free.append(slot)
        return camera


def _take(cells: dict[Cell, set[int]], cell: Cell, slot: int) -> None:
    members = cells[cell]
    members.discard(slot)
    if not members:
        del cells[cell]  # empty cells would make near()'s "more cells than occupied" test lie


def _check_point(lat: float, lon: float) -> None:
    if isinstance(lat, bool) or not isinstance(lat, int | float) or not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat: expected -90..90 degrees, got {lat!r}")
    if isinstance(lon, bool) or not isinstance(lon, int | float) or not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon: expected -180..180 degrees, got {lon!r}")
