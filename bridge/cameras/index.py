"""An in-memory spatial index of road cameras: which cameras see a point, which are near it. No I/O.

The Earth is cut into cells about ``cell`` metres square, in a local equirectangular projection::

    row = floor((lat + 90) / h)          h = cell / R in degrees: every row is cell tall
    col = floor((lon + 180) / w_row)     w_row = 360 / n_row, n_row = floor(2 pi R cos(lat_row) / cell):
                                         columns are cell wide at the row's latitude, a whole number of
                                         them round the parallel so that columns wrap at the antimeridian

Three grids of such cells, for ``CameraIndex(cell_m=200)``::

    grid       cell        holds                                              asked by
    positions  2 cell_m    every camera, in the cell of its position          near(p, r): every cell a disc
                                                                              of radius r touches
    fixed      cell_m / 4  a camera that follows no unit, in every cell       seeing(p): the cell of p
                           where it may see something (range and sector)
    moving     cell_m      a vehicle camera, in every cell its range disc     seeing(p): the cell of p
                           touches (cheap to redo at every beacon)

A camera whose cells would be too many (more than about 3 km of range) is kept in a short list that
every ``seeing()`` checks instead: one odd long-range camera must not cost a million cells.

The cells a disc touches come from its bounding box on the sphere: latitude +- r/R, longitude +-
asin(sin(r/R) / cos(lat)) (whole rows when the box reaches a pole), widened by a metre against rounding
at cell boundaries. A fixed camera is then left out of a cell of its box only when no point of the cell
can pass its exact test. With D the distance from the camera to the cell's centre and rho the cell's
radius (its farthest corner from the centre, plus a metre), every point of the cell is at least D - rho
from the camera (triangle inequality), and, for D > rho, its bearing from the camera is within
asin(sin(rho/R) / sin(D/R)) of the centre's (spherical trigonometry: the tangent to a small circle). So
the cell is left out when D - rho is beyond the range, or when the centre's bearing is off the sector
by more than that angle; both with margins (1 mm, 1e-4 degree, and no angular cut nearer than 1 m to
the camera, where rounding moves a bearing most) that are orders of magnitude above the rounding of
the exact test (nanometres, and 3e-7 degree at 1 m). Cells of a row that touches a pole, or of fewer
than four columns, are never cut.

Every candidate left is judged by :func:`~bridge.cameras.geometry.judge`, the exact test that
:func:`~bridge.cameras.geometry.sees` is, on the cameras' packed records (one numpy array, rows by slot,
read with ``struct``: a candidate costs a few cache lines, not a dozen scattered float objects).
``near()`` computes squared chords with numpy, which is bit for bit what ``haversine_m`` computes
(geometry's docstring says why), and ``asin`` with ``math``. So the index answers exactly what a scan
over every camera answers, to the last bit of every distance and score.

Batches: ``seeing_many()`` runs that exact test over every (point, candidate) pair at once with numpy
(the same arithmetic, so the same bits, with ``math``'s asin and atan2 mapped over the pairs that need
them), and ``move_units()`` moves the vehicle cameras of many units in place: each keeps its slot, its
record is rewritten, and only the cells it leaves or enters are touched.

Thread-safe: the bridge's ingest thread moves vehicle cameras while console queries read; one lock
guards every method, and what is returned (frozen cameras and sightings) is immutable.
"""

from __future__ import annotations

import math
import operator
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import chain, repeat
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from bridge.cameras.geometry import (
    ANGLE_TOLERANCE_DEG,
    DISTANCE_TOLERANCE_M,
    EARTH_RADIUS_M,
    SIGHT_RECORD,
    Camera,
    Ranked,
    Sighting,
    chord2_within,
    haversine_m_np,
    judge,
    local_frame,
    moved_unchecked,
    sight_record,
    unit_vector,
)

Ints: TypeAlias = NDArray[np.int64]
Floats: TypeAlias = NDArray[np.float64]

_DIAMETER_M = 2.0 * EARTH_RADIUS_M
_DEGREES = 180.0 / math.pi  # as judge() and math.degrees()
_CELL_SLACK_M = 1.0
# near()'s cells are this many times coarser than cell_m: a disc of 500 m then touches about 14 of the
# default 400 m, each a few numpy arrays; finer cells would leave fewer cameras to sift but cost more
# Python per cell than numpy saves.
_POSITIONS_SCALE = 2
# The fixed cameras' cells are this many times finer than cell_m: the cell of a query then holds about
# two cameras for each that sees it (in the benchmark's city); finer costs memory faster than it saves.
_FIXED_SPLIT = 4
# The vehicle cameras' cells: finer means fewer candidates per query but more cells to redo per move.
_MOVING_SPLIT = 1
# Beyond this many cells (about 3 km of range whatever the cell size) a camera goes to the list that every
# seeing() checks.
_MAX_CELLS = 1024
# The margins of the cut of fixed cameras' cells (module docstring).
_CUT_DISTANCE_M = 1e-3
_CUT_ANGLE_DEG = 1e-4
_CUT_NEAREST_M = 1.0
# (camera, cell) pairs judged at once when fixed cameras are added: bounds the memory of a bulk load.
_CHUNK_PAIRS = 1 << 18
_FIELDS = len(SIGHT_RECORD.unpack(bytes(SIGHT_RECORD.size)))


class _Grid:
    """The cell arithmetic (see the module docstring); holds no cameras. A cell's key is row * stride + col."""

    def __init__(self, cell_m: float) -> None:
        self.cell_m = cell_m
        self.h = math.degrees(cell_m / EARTH_RADIUS_M)
        self.rows = math.ceil(180.0 / self.h)
        self.stride = math.floor(2.0 * math.pi * EARTH_RADIUS_M / cell_m) + 2
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

    def key(self, lat: float, lon: float) -> int:
        """The cell of a position (-90 <= lat <= 90, -180 <= lon <= 180: int() is floor() here)."""
        row = int((lat + 90.0) / self.h)
        if row >= self.rows:
            row = self.rows - 1
        n = self._cols.get(row) or self.cols(row)
        col = int((lon + 180.0) / (360.0 / n))
        return row * self.stride + (col if col < n else col - n)

    def keys(self, lats: Floats, lons: Floats) -> Ints:
        """:meth:`key` of many positions: the same numbers (the same arithmetic, with numpy)."""
        rows = np.minimum(((lats + 90.0) / self.h).astype(np.int64), self.rows - 1)  # int(), not //: as key()
        distinct, where = np.unique(rows, return_inverse=True)
        n = np.array([self.cols(r) for r in distinct.tolist()], dtype=np.int64)[where]
        cols = ((lons + 180.0) / (360.0 / n)).astype(np.int64)
        return rows * self.stride + np.where(cols < n, cols, cols - n)

    def spans(self, lat: float, lon: float, radius_m: float,
              max_cells: int | None = None) -> list[tuple[int, int, int, int]] | None:
        """(row, first col, last col, cols in the row) of every cell that could hold a point within
        radius_m of (lat, lon); columns may run past the row's end (take them modulo its cols). None if
        there are more than max_cells."""
        ang = (radius_m + _CELL_SLACK_M) / EARTH_RADIUS_M
        dlat = math.degrees(ang)
        row_lo, row_hi = self.row(lat - dlat), self.row(lat + dlat)
        ratio = math.sin(ang) / max(1e-300, math.cos(math.radians(lat)))
        # The box reaches a pole (or the disc is a hemisphere): every longitude is possible.
        polar = lat + dlat >= 90.0 or lat - dlat <= -90.0 or ang >= math.pi / 2 or ratio >= 1.0
        dlon = 180.0 if polar else math.degrees(math.asin(ratio))
        spans: list[tuple[int, int, int, int]] = []
        total = 0
        for row in range(row_lo, row_hi + 1):
            n = self.cols(row)
            w = 360.0 / n
            lo, hi = math.floor((lon - dlon + 180.0) / w), math.floor((lon + dlon + 180.0) / w)
            if polar or hi - lo + 1 >= n:
                lo, hi = 0, n - 1
            spans.append((row, lo, hi, n))
            total += hi - lo + 1
            if max_cells is not None and total > max_cells:
                return None
        return spans

    def cover(self, lats: Floats, lons: Floats, reach_m: Floats, max_cells: int) -> _Cover:
        """:meth:`spans` of many discs at once (see :class:`_Cover`)."""
        ang = (reach_m + _CELL_SLACK_M) / EARTH_RADIUS_M
        dlat = np.degrees(ang)
        row_lo = np.clip(np.floor((lats - dlat + 90.0) / self.h), 0, self.rows - 1).astype(np.int64)
        row_hi = np.clip(np.floor((lats + dlat + 90.0) / self.h), 0, self.rows - 1).astype(np.int64)
        ratio = np.sin(np.minimum(ang, math.pi / 2)) / np.maximum(1e-300, np.cos(np.radians(lats)))
        polar = (lats + dlat >= 90.0) | (lats - dlat <= -90.0) | (ang >= math.pi / 2) | (ratio >= 1.0)
        dlon = np.where(polar, 180.0, np.degrees(np.arcsin(np.minimum(ratio, 1.0))))
        # One (disc, row) pair per row of each disc's box; none for a disc wide by its rows alone.
        rows = row_hi - row_lo + 1
        owner, row = _expand(row_lo, np.where(rows > max_cells, 0, rows))
        distinct, where = np.unique(row, return_inverse=True)
        n = np.array([self.cols(r) for r in distinct.tolist()], dtype=np.int64)[where]
        w = 360.0 / n
        lo = np.floor((lons[owner] - dlon[owner] + 180.0) / w).astype(np.int64)
        hi = np.floor((lons[owner] + dlon[owner] + 180.0) / w).astype(np.int64)
        full = polar[owner] | (hi - lo + 1 >= n)
        lo, hi = np.where(full, 0, lo), np.where(full, n - 1, hi)
        wide = (np.bincount(owner, weights=hi - lo + 1, minlength=len(lats)) > max_cells) | (rows > max_cells)
        keep = ~wide[owner]
        cover = _Cover(self, owner[keep], row[keep], n[keep], wide)
        cover.pair, col = _expand(lo[keep], (hi - lo + 1)[keep])
        cover.col = col % cover.n[cover.pair]
        return cover


class _Cover:
    """Which cells many discs touch: per (disc, row) pair its ``owner`` disc, ``row`` and ``n`` columns;
    per (disc, cell) pair its row pair ``pair`` and ``col``; both in disc order. ``wide``: the discs with
    more than max_cells, which have no pairs."""

    def __init__(self, grid: _Grid, owner: Ints, row: Ints, n: Ints, wide: NDArray[np.bool_]) -> None:
        self.grid, self.owner, self.row, self.n, self.wide = grid, owner, row, n, wide
        self.pair = self.col = np.zeros(0, dtype=np.int64)

    def keys(self) -> Ints:
        return self.row[self.pair] * self.grid.stride + self.col

    def cell_owner(self) -> Ints:
        return self.owner[self.pair]

    def radius(self) -> Floats:
        """Each row pair's cell radius in metres: its farthest corner from its centre, plus a metre for
        rounding; infinite for a row that touches a pole or has fewer than four columns."""
        h = self.grid.h
        lat0 = self.row * h - 90.0
        lat1 = lat0 + h
        mid = lat0 + h / 2.0
        half_w = 180.0 / self.n
        corner = np.maximum(haversine_m_np(mid, 0.0, lat0, half_w), haversine_m_np(mid, 0.0, lat1, half_w))
        return np.where((lat0 <= -90.0) | (lat1 >= 90.0) | (self.n < 4), math.inf, corner + _CELL_SLACK_M)


def _expand(start: Ints, count: Ints) -> tuple[Ints, Ints]:
    """For each i, count[i] pairs (i, start[i] + k), k = 0..count[i] - 1."""
    owner = np.repeat(np.arange(len(start), dtype=np.int64), count)
    first = np.cumsum(count) - count
    return owner, start[owner] + (np.arange(len(owner), dtype=np.int64) - first[owner])


class CameraIndex:
    """Cameras by position: ``seeing(lat, lon)`` best first, ``near(lat, lon, r)`` nearest first,
    ``seeing_many(lats, lons)`` for a batch of points.

    Vehicle cameras follow their unit: ``move_units([(unit, lat, lon, heading), ...])`` for a batch of
    beacons, ``move_unit(unit, lat, lon)`` for one (or ``move`` by camera id). ``cell_m`` sets the grids'
    cells (module docstring); the answers do not depend on it, only the speed.
    """

    def __init__(self, cameras: Iterable[Camera] = (), cell_m: float = 200.0) -> None:
        if isinstance(cell_m, bool) or not isinstance(cell_m, int | float) or not 0 < cell_m < math.inf:
            raise ValueError(f"cell_m: expected a positive number of metres, got {cell_m!r}")
        self._positions_grid = _Grid(float(cell_m) * _POSITIONS_SCALE)
        self._fixed_grid = _Grid(float(cell_m) / _FIXED_SPLIT)
        self._moving_grid = _Grid(float(cell_m) / _MOVING_SPLIT)
        self._lock = threading.Lock()
        self._cameras: dict[str, Camera] = {}
        self._units: dict[str, set[str]] = {}
        # Slots number the cameras for the arrays; a slot is reused after a removal.
        self._slot_of: dict[str, int] = {}
        self._camera_at: list[Camera | None] = []
        self._camera_array: NDArray[np.object_] = np.full(64, None, dtype=object)  # the same, for numpy
        self._free: list[int] = []
        self._records: Floats = np.zeros((64, _FIELDS))  # SIGHT_RECORDs by slot (unit vector first)
        self._view = memoryview(self._records).cast("B")  # type: ignore[arg-type]
        self._positions: dict[int, set[int]] = {}  # cell -> slots
        self._position_key: Ints = np.zeros(64, dtype=np.int64)  # slot -> its cell
        self._position_arrays: dict[int, NDArray[np.intp]] = {}  # the same as arrays, made when asked for
        # Fine cell -> the slots (int64s) of the fixed cameras that may see into it. bytes, not array('q'):
        # the garbage collector tracks every array (a full collection would visit 160,000 more objects in
        # the benchmark's city), and a fixed camera seldom changes.
        self._fixed: dict[int, bytes] = {}
        self._fixed_cells: dict[int, Ints] = {}  # slot -> its fine cells
        self._moving: dict[int, array[int]] = {}  # cell -> vehicle cameras whose range disc touches it
        self._moving_cells: dict[int, tuple[int, ...]] = {}  # slot -> those cells
        self._wide: array[int] = array("q")
        # A later duplicate replaces an earlier one, as upsert does.
        self._insert_many(list({camera.id: camera for camera in cameras}.values()))

    # -- changes -------------------------------------------------------------------------------------

    def upsert(self, camera: Camera) -> None:
        """Add the camera, or replace the one with its id."""
        with self._lock:
            self._discard(camera.id)
            self._insert_many([camera])

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
            self._insert_many([moved])
            return moved

    def move_unit(self, unit: str, lat: float, lon: float, heading_deg: float | None = None) -> list[Camera]:
        """Move every camera that follows this unit (a beacon arrived); returns them, updated."""
        return self.move_units([(unit, lat, lon, heading_deg)])

    def move_units(self, moves: Iterable[tuple[str, float, float, float | None]]) -> list[Camera]:
        """Move the cameras of many units at once, each (unit, lat, lon, heading or None to keep it), in
        order (a unit named twice ends where it is named last); units without cameras are passed over.
        Returns the cameras moved, updated. A bad position raises ValueError (naming the unit and the
        field) before anything moves."""
        moves = list(moves)
        # The usual batch (floats in range, headings None or in range) is checked at once; anything else
        # goes through Camera.moved(), which names what is wrong.
        checked = all(type(m[1]) is float and type(m[2]) is float and (m[3] is None or type(m[3]) is float)
                      for m in moves)
        if checked and moves:
            values = np.array([(m[1], m[2], 0.0 if m[3] is None else m[3]) for m in moves])
            checked = bool((np.abs(values[:, 0]) <= 90.0).all() and (np.abs(values[:, 1]) <= 180.0).all()
                           and ((values[:, 2] >= 0.0) & (values[:, 2] <= 360.0)).all())
        with self._lock:
            moved: dict[str, Camera] = {}
            units, cameras = self._units, self._cameras
            for unit, lat, lon, heading in moves:
                ids = units.get(unit)
                if not ids:
                    continue
                for camera_id in ids if len(ids) == 1 else sorted(ids):
                    camera = moved.get(camera_id) or cameras[camera_id]
                    if checked:
                        moved[camera_id] = moved_unchecked(camera, lat, lon,
                                                           camera.heading_deg if heading is None else heading)
                        continue
                    try:
                        moved[camera_id] = camera.moved(lat, lon, heading)
                    except ValueError as exc:
                        raise ValueError(f"unit {unit!r}: {exc}") from None
            done = list(moved.values())
            wide = {self._camera_at[s].id for s in self._wide} if self._wide else set()  # type: ignore[union-attr]
            self._relocate([c for c in done if c.id not in wide] if wide else done)
            for camera in (c for c in done if c.id in wide):  # rare: a vehicle camera of huge range
                self._discard(camera.id)
                self._insert_many([camera])
            return done

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
        point = unit_vector(lat, lon)
        found: list[Ranked] = []
        with self._lock:
            # The candidates: the fixed cameras of the point's fine cell, the vehicle cameras of its cell,
            # the wide list; one pass of the exact test over them all.
            fixed = self._fixed.get(self._fixed_grid.key(lat, lon), b"")
            moving = self._moving.get(self._moving_grid.key(lat, lon), ())
            judge(point, chain(memoryview(fixed).cast("q"), moving, self._wide), self._view, self._camera_at, found)
        found.sort()
        return [f[3] for f in (found if limit is None else found[:limit])]

    def seeing_many(self, lats: Sequence[float], lons: Sequence[float],
                    limit: int | None = None) -> list[list[Sighting]]:
        """:meth:`seeing` for each point (lats[i], lons[i]), in one go: the same answers, in the same order.
        ValueError, naming the point, if any point is bad (then nothing is answered).

        The exact test runs over every (point, candidate) pair at once with numpy: its arithmetic is
        IEEE's +, -, *, / and sqrt, the same bits as :func:`~bridge.cameras.geometry.judge` computes one
        at a time, and its asin and atan2 are ``math``'s, mapped over the pairs that need them."""
        lats = lats.tolist() if isinstance(lats, np.ndarray) else list(lats)
        lons = lons.tolist() if isinstance(lons, np.ndarray) else list(lons)
        if len(lats) != len(lons):
            raise ValueError(f"lats and lons: expected as many of each, got {len(lats)} and {len(lons)}")
        if not lats:
            return []
        lat_array, lon_array = np.array(lats, dtype=np.float64), np.array(lons, dtype=np.float64)
        if not (all(type(x) is float for x in chain(lats, lons))  # the usual batch: checked at once
                and (np.abs(lat_array) <= 90.0).all() and (np.abs(lon_array) <= 180.0).all()):
            for i, (lat, lon) in enumerate(zip(lats, lons, strict=True)):
                try:
                    _check_point(lat, lon)
                except ValueError as exc:
                    raise ValueError(f"point {i}: {exc}") from None
        points = np.array([unit_vector(lat, lon) for lat, lon in zip(lats, lons, strict=True)])
        with self._lock:
            # The candidates of each point: its cell of fixed cameras, of vehicle cameras, the wide list.
            fixed = list(map(self._fixed.get, self._fixed_grid.keys(lat_array, lon_array).tolist(), repeat(b"")))
            moving = list(map(self._moving.get, self._moving_grid.keys(lat_array, lon_array).tolist(), repeat(b"")))
            wide = [self._wide] * len(lats)
            every = np.arange(len(lats))
            slots = np.frombuffer(b"".join(chain(fixed, moving, wide)), dtype=np.int64)
            owner = np.concatenate([np.repeat(every, np.fromiter(map(len, fixed), np.int64, len(lats)) // 8),
                                    np.repeat(every, np.fromiter(map(len, moving), np.int64, len(lats))),
                                    np.repeat(every, len(self._wide))])
            ranked = self._judge_pairs(points, slots, owner)
        answers: list[list[Sighting]] = [[] for _ in lats]
        for point, sightings in ranked:
            answers[point] = sightings if limit is None else sightings[:limit]
        return answers

    def near(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[Camera, float]]:
        """The cameras within radius_m of the point (inclusive, to DISTANCE_TOLERANCE_M), with their
        distances, nearest first (then by id)."""
        _check_point(lat, lon)
        if isinstance(radius_m, bool) or not isinstance(radius_m, int | float) or not 0 <= radius_m < math.inf:
            raise ValueError(f"radius_m: expected a non-negative number of metres, got {radius_m!r}")
        point = np.array(unit_vector(lat, lon))
        reach = radius_m + DISTANCE_TOLERANCE_M
        within = chord2_within(reach)
        with self._lock:
            # A radius wider than the occupied cells: scanning every camera is cheaper than every cell.
            spans = self._positions_grid.spans(lat, lon, radius_m, max_cells=len(self._positions))
            slots = np.array(sorted(self._slot_of.values()), dtype=np.intp) if spans is None else self._slots_in(spans)
            squares = self._records[slots, :3]
            squares -= point
            squares *= squares
            chord2 = squares[:, 0] + squares[:, 1]
            chord2 += squares[:, 2]  # bit for bit as haversine_m (geometry's docstring)
            close = np.flatnonzero(chord2 <= within)
            # chord_m() in two halves: sqrt, halving and min() are exact in numpy too; asin is math's.
            half = np.sqrt(chord2[close])
            half *= 0.5
            if within > 4.0:  # else every chord2 here is below 4: half below 1, min() a no-op
                np.minimum(half, 1.0, out=half)
            d = np.fromiter(map(math.asin, half.tolist()), dtype=np.float64, count=len(half))
            d *= _DIAMETER_M
            if len(d) and d.max() > reach:  # within's margin let one in: d <= reach decides, as for a scan
                inside = np.flatnonzero(d <= reach)
                close, d = close[inside], d[inside]
            order = np.argsort(d)  # equal distances are put in id order below
            d = d[order]
            # numpy's own gather of the cameras: their reference counts are touched at C speed, where the
            # CPU overlaps the cache misses (twice as fast as a Python loop over a list here).
            found = list(zip(self._camera_array[slots[close[order]]].tolist(), d.tolist(), strict=True))
        if len(d) > 1 and bool((d[1:] == d[:-1]).any()):
            found.sort(key=lambda cd: (cd[1], cd[0].id))  # equal distances (cameras on one mast): by id
        return found if limit is None else found[:limit]

    # -- internals (caller holds the lock) -----------------------------------------------------------

    def _judge_pairs(self, points: Floats, slots: Ints, owner: Ints) -> list[tuple[int, list[Sighting]]]:
        """:func:`~bridge.cameras.geometry.judge` of the camera in ``slots[i]`` at point ``owner[i]`` (a row
        of ``points``, unit vectors), for every i at once: (point, its sightings best first) for each point
        seen by any."""
        r = self._records[slots]
        cx, cy, cz, ex, ey, nx, ny, nz, within, range_m, heading, half = r.T
        p = points[owner]
        dx, dy, dz = p[:, 0] - cx, p[:, 1] - cy, p[:, 2] - cz
        chord2 = dx * dx + dy * dy
        chord2 += dz * dz
        keep = np.flatnonzero(~(chord2 > within))
        h = np.sqrt(chord2[keep]) * 0.5
        d = _DIAMETER_M * _mapped(math.asin, np.where(h < 1.0, h, 1.0))
        inside = ~(d > range_m[keep] + DISTANCE_TOLERANCE_M)
        keep, d = keep[inside], d[inside]
        heading, half = heading[keep], half[keep]
        # No heading (NaN), or at the camera: dead centre. The others' bearings, as judge() has them.
        centre = (heading != heading) | (d <= DISTANCE_TOLERANCE_M)
        off_axis = np.zeros(len(keep))
        aim = np.flatnonzero(~centre)
        if len(aim):
            at = keep[aim]
            north = dx[at] * nx[at] + dy[at] * ny[at]
            north += dz[at] * nz[at]
            b = _mapped(math.atan2, dx[at] * ex[at] + dy[at] * ey[at], north) * _DEGREES
            b = np.where(b <= 0.0, b + 360.0, b)
            b = np.where(b >= 360.0, 0.0, b)
            h = heading[aim]
            off = np.where(b >= h, b - h, h - b)
            off_axis[aim] = np.where(off > 180.0, 360.0 - off, off)
        seen = centre | ~(off_axis > half + ANGLE_TOLERANCE_DEG)
        keep, d, off_axis, half = keep[seen], d[seen], off_axis[seen], half[seen]
        nearness = 1.0 - d / range_m[keep]
        centred = 1.0 - off_axis / half
        score = 0.5 * np.where(nearness > 0.0, nearness, 0.0) + 0.5 * np.where(centred > 0.0, centred, 0.0)
        # Best first within each point: score down, then distance, then camera id. One argsort of a float
        # key, the point less half the score, puts them nearly so (a point's key loses the score's last
        # bits); the order is then checked exactly, and a point found out of order (or with two equal
        # scores and distances, to be told apart by id) is sorted again the slow way.
        who = owner[keep]
        order = np.argsort(who - 0.5 * score)
        who, d, off_axis, score = who[order], d[order], off_axis[order], score[order]
        if not len(order):
            return []
        cameras = self._camera_array[slots[keep][order]].tolist()
        fields = zip(cameras, d.tolist(), off_axis.tolist(), score.tolist(), strict=True)
        sightings: list[Sighting] = list(map(tuple.__new__, repeat(Sighting), fields))
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        ends = [*starts[1:].tolist(), len(sightings)]
        out = list(zip(who[starts].tolist(), map(sightings.__getitem__, map(slice, starts.tolist(), ends)),
                       strict=True))
        ordered = (score[:-1] > score[1:]) | ((score[:-1] == score[1:]) & (d[:-1] < d[1:]))
        for i in np.unique(np.searchsorted(who[starts], who[1:][(who[1:] == who[:-1]) & ~ordered])).tolist():
            out[i][1].sort(key=lambda s: (-s.score, s.distance_m, s.camera.id))
        return out

    def _slots_in(self, spans: list[tuple[int, int, int, int]]) -> NDArray[np.intp]:
        positions, arrays = self._positions, self._position_arrays
        stride = self._positions_grid.stride
        parts: list[NDArray[np.intp] | None] = []
        for row, lo, hi, n in spans:
            base = row * stride
            keys = range(base + lo, base + hi + 1) if lo >= 0 and hi < n else [base + c % n for c in range(lo, hi + 1)]
            got = list(map(arrays.get, keys))
            if any(map(_is_none, got)):  # an empty cell, or one whose array is to be made again
                for i, key in enumerate(keys):
                    if got[i] is None and (members := positions.get(key)) is not None:
                        got[i] = arrays[key] = np.array(sorted(members), dtype=np.intp)
            parts += got
        found: list[NDArray[np.intp]] = list(filter(_is_not_none, parts))  # type: ignore[arg-type]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)

    def _insert_many(self, cameras: list[Camera]) -> None:
        """Add cameras whose ids are not in the index."""
        if not cameras:
            return
        lats = np.array([c.lat for c in cameras])
        lons = np.array([c.lon for c in cameras])
        keys = self._positions_grid.keys(lats, lons)
        # Neighbours get neighbouring slots (by cell): a query then reads few cache lines of the records.
        order = np.argsort(keys, kind="stable")
        cameras, lats, lons, keys = [cameras[i] for i in order.tolist()], lats[order], lons[order], keys[order]
        slots = []
        for camera in cameras:
            if self._free:
                slot = self._free.pop()
            else:
                slot = len(self._camera_at)
                self._camera_at.append(None)
            self._camera_at[slot] = camera
            self._slot_of[camera.id] = slot
            self._cameras[camera.id] = camera
            if camera.unit is not None:
                self._units.setdefault(camera.unit, set()).add(camera.id)
            slots.append(slot)
        if len(self._camera_at) > len(self._records):
            size = max(2 * len(self._records), len(self._camera_at))
            grown = np.zeros((size, _FIELDS))
            grown[: len(self._records)] = self._records
            self._view.release()
            self._records, self._view = grown, memoryview(grown).cast("B")  # type: ignore[arg-type]
            self._camera_array = np.concatenate([self._camera_array, np.full(size - len(self._camera_array), None)])
            self._position_key = np.concatenate([self._position_key, np.zeros(size - len(self._position_key),
                                                                               dtype=np.int64)])
        slot_of = np.array(slots, dtype=np.int64)
        self._records[slot_of] = [sight_record(c) for c in cameras]
        self._camera_array[slot_of] = np.fromiter(cameras, dtype=object, count=len(cameras))
        self._position_key[slot_of] = keys
        for slot, key in zip(slots, keys.tolist(), strict=True):
            self._positions.setdefault(key, set()).add(slot)
            self._position_arrays.pop(key, None)
        reach = np.array([c.range_m for c in cameras]) + DISTANCE_TOLERANCE_M
        moving = np.array([c.unit is not None for c in cameras])
        if moving.any():
            self._cover_moving(slot_of[moving], lats[moving], lons[moving], reach[moving])
        if not moving.all():
            fixed = np.flatnonzero(~moving)
            # In chunks of about _CHUNK_PAIRS pairs: a bulk load of 100,000 cameras must not hold them all.
            boxes = (2.0 * (reach[fixed] + _CELL_SLACK_M) / self._fixed_grid.cell_m + 2.0) ** 2
            bounds = np.searchsorted(np.cumsum(boxes), np.arange(_CHUNK_PAIRS, boxes.sum(), _CHUNK_PAIRS))
            for chunk in np.split(fixed, bounds):
                if len(chunk):
                    self._cover_fixed(slot_of[chunk], lats[chunk], lons[chunk], reach[chunk])

    def _relocate(self, cameras: list[Camera]) -> None:
        """Vehicle cameras of the index (none in the wide list) at a new position and heading (nothing else
        changed: :meth:`Camera.moved`): their slots kept, only the cells they leave or enter touched."""
        if not cameras:
            return
        slot_of = np.array([self._slot_of[c.id] for c in cameras], dtype=np.int64)
        slots = slot_of.tolist()
        for camera, slot in zip(cameras, slots, strict=True):
            self._cameras[camera.id] = self._camera_at[slot] = camera
        self._camera_array[slot_of] = np.fromiter(cameras, dtype=object, count=len(cameras))
        # Range and field of view stay as they were: only the position (unit vector, east, north) and the
        # heading of each record change.
        self._records[slot_of, :8] = [local_frame(c.lat, c.lon) for c in cameras]
        self._records[slot_of, 10] = [math.nan if c.heading_deg is None else c.heading_deg for c in cameras]
        lats = np.array([c.lat for c in cameras])
        lons = np.array([c.lon for c in cameras])
        was, now = self._position_key[slot_of], self._positions_grid.keys(lats, lons)
        changed = np.flatnonzero(was != now)
        for slot, old, new in zip(slot_of[changed].tolist(), was[changed].tolist(), now[changed].tolist(), strict=True):
            _leave(self._positions, old, slot)
            self._positions.setdefault(new, set()).add(slot)
            self._position_arrays.pop(old, None)
            self._position_arrays.pop(new, None)
        self._position_key[slot_of] = now
        reach = np.array([c.range_m for c in cameras]) + DISTANCE_TOLERANCE_M
        cover = self._moving_grid.cover(lats, lons, reach, _MAX_CELLS * _MOVING_SPLIT ** 2)
        keys = cover.keys().tolist()
        bounds = np.searchsorted(cover.cell_owner(), np.arange(len(slots) + 1)).tolist()
        moving, cells_of = self._moving, self._moving_cells
        for i, slot in enumerate(slots):
            if cover.wide[i]:  # now too far-reaching for cells (its range did not change: it went polar)
                _take(moving, cells_of.pop(slot), slot)
                self._wide.append(slot)
                continue
            cells, old_cells = tuple(keys[bounds[i]:bounds[i + 1]]), cells_of[slot]
            if cells == old_cells:
                continue  # a short step: the same cells
            cells_of[slot] = cells
            _take(moving, [key for key in old_cells if key not in cells], slot)
            for key in cells:
                if key not in old_cells:
                    members = moving.get(key)
                    if members is None:
                        moving[key] = array("q", (slot,))
                    else:
                        members.append(slot)

    def _cover_moving(self, slots: Ints, lats: Floats, lons: Floats, reach: Floats) -> None:
        cover = self._moving_grid.cover(lats, lons, reach, _MAX_CELLS * _MOVING_SPLIT ** 2)
        keys = cover.keys().tolist()
        bounds = np.searchsorted(cover.cell_owner(), np.arange(len(slots) + 1)).tolist()
        moving = self._moving
        for i, slot in enumerate(slots.tolist()):
            if cover.wide[i]:
                self._wide.append(slot)
                continue
            cells = keys[bounds[i]:bounds[i + 1]]
            self._moving_cells[slot] = tuple(cells)
            for key in cells:
                members = moving.get(key)
                if members is None:
                    moving[key] = array("q", (slot,))
                else:
                    members.append(slot)

    def _cover_fixed(self, slots: Ints, lats: Floats, lons: Floats, reach: Floats) -> None:
        grid = self._fixed_grid
        cover = grid.cover(lats, lons, reach, _MAX_CELLS * _FIXED_SPLIT ** 2)
        self._wide.extend(slots[cover.wide].tolist())
        # The cut (module docstring): distance and bearing from each camera to each cell's centre.
        rho = cover.radius()[cover.pair]
        owner = cover.cell_owner()
        records = self._records[slots]  # of these cameras; records[owner] would be of every pair
        centre = np.radians(cover.row * grid.h - 90.0 + grid.h / 2.0)
        cos_lat, sin_lat = np.cos(centre)[cover.pair], np.sin(centre)[cover.pair]
        lon = np.radians((cover.col + 0.5) * (360.0 / cover.n[cover.pair]) - 180.0)
        dx = cos_lat * np.cos(lon) - records[owner, 0]
        dy = cos_lat * np.sin(lon) - records[owner, 1]
        dz = sin_lat - records[owner, 2]
        d = _DIAMETER_M * np.arcsin(np.minimum(1.0, np.sqrt(dx * dx + dy * dy + dz * dz) * 0.5))
        keep = d - rho <= reach[owner] + _CUT_DISTANCE_M
        sector = np.isfinite(records[:, 11])[owner]
        angular = keep & sector & (d - rho >= _CUT_NEAREST_M) & ((d + rho) / EARTH_RADIUS_M < math.pi / 2)
        a = np.flatnonzero(angular)
        if len(a):
            r = records[owner[a]]
            bearing = np.degrees(np.arctan2(dx[a] * r[:, 3] + dy[a] * r[:, 4],
                                            dx[a] * r[:, 5] + dy[a] * r[:, 6] + dz[a] * r[:, 7]))
            off_axis = np.abs((bearing - r[:, 10] + 180.0) % 360.0 - 180.0)
            spread = np.degrees(np.arcsin(np.minimum(1.0, np.sin(rho[a] / EARTH_RADIUS_M)
                                                     / np.sin(d[a] / EARTH_RADIUS_M))))
            keep[a] = off_axis <= r[:, 11] + ANGLE_TOLERANCE_DEG + spread + _CUT_ANGLE_DEG
        owner, keys = owner[keep], cover.keys()[keep]
        # Per camera (owner is in camera order), then per cell.
        bounds = np.searchsorted(owner, np.arange(len(slots) + 1))
        for i, slot in enumerate(slots.tolist()):
            if not cover.wide[i]:
                self._fixed_cells[slot] = keys[bounds[i]:bounds[i + 1]]
        if not len(keys):
            return
        order = np.argsort(keys, kind="stable")
        keys, members = keys[order], slots[owner[order]]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        fixed = self._fixed
        for key, part in zip(keys[starts].tolist(), np.split(members, starts[1:]), strict=True):
            fixed[key] = fixed.get(key, b"") + part.tobytes()

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
        key = int(self._position_key[slot])
        _leave(self._positions, key, slot)
        self._position_arrays.pop(key, None)
        if slot in self._wide:
            self._wide.remove(slot)
        elif camera.unit is not None:
            _take(self._moving, self._moving_cells.pop(slot), slot)
        else:
            fixed = self._fixed
            for key in self._fixed_cells.pop(slot).tolist():
                members = array("q", fixed[key])
                members.remove(slot)
                if members:
                    fixed[key] = members.tobytes()
                else:
                    del fixed[key]
        self._records[slot] = np.nan
        self._camera_at[slot] = self._camera_array[slot] = None
        self._free.append(slot)
        return camera


_is_none, _is_not_none = partial(operator.is_, None), partial(operator.is_not, None)


def _mapped(function: Callable[..., float], *arrays: Floats) -> Floats:
    """``math``'s function over arrays, element by element (numpy's own may differ in the last bit)."""
    return np.fromiter(map(function, *(a.tolist() for a in arrays)), dtype=np.float64, count=len(arrays[0]))


def _leave(cells: dict[int, set[int]], key: int, slot: int) -> None:
    members = cells[key]
    members.discard(slot)
    if not members:
        del cells[key]  # empty cells would make near()'s "more cells than occupied" test lie


def _take(cells: dict[int, array[int]], keys: Iterable[int], slot: int) -> None:
    for key in keys:
        members = cells[key]
        members.remove(slot)
        if not members:
            del cells[key]


def _check_point(lat: float, lon: float) -> None:
    if type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        return  # the usual case, checked at the least cost
    if isinstance(lat, bool) or not isinstance(lat, int | float) or not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat: expected -90..90 degrees, got {lat!r}")
    if isinstance(lon, bool) or not isinstance(lon, int | float) or not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon: expected -180..180 degrees, got {lon!r}")
