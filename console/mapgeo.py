"""The map's drawing arithmetic, with no I/O and no Textual: projection, braille rasterising, the scale
bar, the fading of old fixes, and reading a GeoJSON overlay from text.

Projection: local equirectangular around a centre, fine over a city (the error at 5 km from the centre is
a fraction of a cell at any zoom a dispatcher uses). A terminal cell is about twice as tall as it is
wide, so with ``m`` metres per cell column a cell row is ``2 m`` metres, and a braille cell (2 x 4 dots,
Unicode U+2800..U+28FF) has square dots of ``m / 2`` metres::

    cell:  dot 1 (0x01)  dot 4 (0x08)      dot coordinates: x grows east, y grows south,
           dot 2 (0x02)  dot 5 (0x10)      dot (0, 0) is the top-left dot of the top-left cell;
           dot 3 (0x04)  dot 6 (0x20)      the centre (lat, lon) is the middle of the canvas
           dot 7 (0x40)  dot 8 (0x80)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gateway.events import load_json

# The mean Earth radius, as bridge.cameras.geometry uses (IUGG R1 of GRS 80).
EARTH_RADIUS_M = 6371008.8
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0

DOTS_X, DOTS_Y = 2, 4  # braille dots per cell
BRAILLE_BASE = 0x2800
# Bit of the dot at (x, y) inside a cell: Unicode's braille numbering (dots 7 and 8 came later, hence 0x40).
_BIT = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))

ZOOM_MIN_M, ZOOM_MAX_M = 0.25, 20_000.0  # metres per cell column: a crossing .. a province
SCALE_STEPS_M = tuple(m * 10**e for e in range(-1, 6) for m in (1, 2, 5))  # 0.1 m .. 500 km, 1-2-5

FRESH_S = 120.0  # a fix younger than this is drawn bright
RECENT_S = 15 * 60.0  # then dim until this, then grey

ARROWS = "↑↗→↘↓↙←↖"  # course 0 (north), 45, ... clockwise


Point = tuple[float, float]  # (lat, lon), degrees
Line = tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Projection:
    """Local equirectangular projection onto a canvas of ``width`` x ``height`` cells."""

    lat: float
    lon: float
    m_per_col: float
    width: int
    height: int

    @property
    def dot_m(self) -> float:
        return self.m_per_col / DOTS_X

    @property
    def _kx(self) -> float:
        # metres per degree of longitude at the centre; a floor keeps the poles from dividing by zero
        return M_PER_DEG * max(math.cos(math.radians(self.lat)), 1e-6)

    def metres(self, lat: float, lon: float) -> tuple[float, float]:
        """(east, north) metres from the centre."""
        dlon = (lon - self.lon + 540.0) % 360.0 - 180.0  # the short way round the antimeridian
        return dlon * self._kx, (lat - self.lat) * M_PER_DEG

    def to_dots(self, lat: float, lon: float) -> tuple[float, float]:
        east, north = self.metres(lat, lon)
        return self.from_metres(east, north)

    def from_metres(self, east: float, north: float) -> tuple[float, float]:
        cx, cy = self.width * DOTS_X / 2.0, self.height * DOTS_Y / 2.0
        return cx + east / self.dot_m, cy - north / self.dot_m

    def to_latlon(self, x: float, y: float) -> Point:
        """The inverse of :meth:`to_dots`."""
        cx, cy = self.width * DOTS_X / 2.0, self.height * DOTS_Y / 2.0
        east, north = (x - cx) * self.dot_m, (cy - y) * self.dot_m
        lon = (self.lon + east / self._kx + 540.0) % 360.0 - 180.0
        return self.lat + north / M_PER_DEG, lon

    def to_cell(self, lat: float, lon: float) -> tuple[int, int] | None:
        """The cell (column, row) a point falls in, or None off the canvas."""
        x, y = self.to_dots(lat, lon)
        col, row = math.floor(x / DOTS_X), math.floor(y / DOTS_Y)
        if 0 <= col < self.width and 0 <= row < self.height:
            return col, row
        return None

    def moved(self, cols: float, rows: float) -> Projection:
        """The centre moved by this many cells (east, south)."""
        lat, lon = self.to_latlon(self.width * DOTS_X / 2.0 + cols * DOTS_X, self.height * DOTS_Y / 2.0 + rows * DOTS_Y)
        return Projection(max(-89.9, min(89.9, lat)), lon, self.m_per_col, self.width, self.height)


class BrailleCanvas:
    """A ``width`` x ``height`` cell canvas of braille dots."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = max(0, width), max(0, height)
        self.cells = bytearray(self.width * self.height)

    @property
    def dots_w(self) -> int:
        return self.width * DOTS_X

    @property
    def dots_h(self) -> int:
        return self.height * DOTS_Y

    def set(self, x: int, y: int) -> None:
        if 0 <= x < self.dots_w and 0 <= y < self.dots_h:
            col, dx = divmod(x, DOTS_X)
            row, dy = divmod(y, DOTS_Y)
            self.cells[row * self.width + col] |= _BIT[dx][dy]

    def get(self, x: int, y: int) -> bool:
        col, dx = divmod(x, DOTS_X)
        row, dy = divmod(y, DOTS_Y)
        return bool(self.cells[row * self.width + col] & _BIT[dx][dy])

    def bits(self, col: int, row: int) -> int:
        return self.cells[row * self.width + col]

    def char(self, col: int, row: int) -> str:
        bits = self.cells[row * self.width + col]
        return chr(BRAILLE_BASE + bits) if bits else " "

    def rows(self) -> Iterator[str]:
        for row in range(self.height):
            yield "".join(self.char(col, row) for col in range(self.width))

    def line(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """A straight line between two dot positions, clipped to the canvas first, so that a road running
        kilometres off screen costs only the dots that are seen."""
        clipped = clip(x0, y0, x1, y1, -0.5, -0.5, self.dots_w - 0.5, self.dots_h - 0.5)
        if clipped is None:
            return
        ax, ay, bx, by = (round(v) for v in clipped)
        # Bresenham, all octants; the dot-setting is inlined, as this loop is most of a map's drawing time.
        cells, width, w_dots, h_dots = self.cells, self.width, self.dots_w, self.dots_h
        dx, dy = abs(bx - ax), -abs(by - ay)
        sx, sy = (1 if ax < bx else -1), (1 if ay < by else -1)
        err = dx + dy
        while True:
            if 0 <= ax < w_dots and 0 <= ay < h_dots:
                cells[(ay >> 2) * width + (ax >> 1)] |= _BIT[ax & 1][ay & 3]
            if ax == bx and ay == by:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                ax += sx
            if e2 <= dx:
                err += dx
                ay += sy

    def polyline(self, points: Sequence[tuple[float, float]]) -> None:
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            self.line(x0, y0, x1, y1)


def clip(x0: float, y0: float, x1: float, y1: float, xmin: float, ymin: float, xmax: float,
         ymax: float) -> tuple[float, float, float, float] | None:
    """Liang-Barsky: the part of the segment inside the rectangle, or None."""
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - xmin), (dx, xmax - x0), (-dy, y0 - ymin), (dy, ymax - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            if t > t1:
                return None
            t0 = max(t0, t)
        else:
            if t < t0:
                return None
            t1 = min(t1, t)
    return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy


# --- shapes, in metres from their origin ------------------------------------------------------------


def sector_outline(heading_deg: float | None, fov_deg: float, range_m: float, step_deg: float = 5.0
                   ) -> list[tuple[float, float]]:
    """A camera's field of view as (east, north) metres from the camera: apex, arc from heading - fov/2
    to heading + fov/2 clockwise, back to the apex; a closed circle for a 360-degree camera. The arc is
    walked without wrapping at 360, so a sector across north (heading 0, fov 20: 350..10) is one arc."""
    if heading_deg is None or fov_deg >= 360.0:
        n = max(12, int(360 / step_deg))
        return [(range_m * math.sin(2 * math.pi * k / n), range_m * math.cos(2 * math.pi * k / n))
                for k in range(n + 1)]
    start = heading_deg - fov_deg / 2.0
    n = max(2, math.ceil(fov_deg / step_deg))
    arc = [(range_m * math.sin(math.radians(start + fov_deg * k / n)),
            range_m * math.cos(math.radians(start + fov_deg * k / n))) for k in range(n + 1)]
    return [(0.0, 0.0), *arc, (0.0, 0.0)]


def arrow(course_deg: float | None) -> str | None:
    """The arrow nearest a course over ground, or None when the course is not known."""
    if course_deg is None or not math.isfinite(course_deg):
        return None
    return ARROWS[round((course_deg % 360.0) / 45.0) % 8]


def age_band(age_s: float | None) -> str:
    """How a fix is drawn: "fresh" (bright), "recent" (dim) or "old" (grey); no time at all is old."""
    if age_s is None:
        return "old"
    if age_s < FRESH_S:
        return "fresh"
    return "recent" if age_s < RECENT_S else "old"


@dataclass(frozen=True, slots=True)
class ScaleBar:
    metres: float
    cells: int
    label: str


def distance_label(metres: float) -> str:
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} km"
    return f"{metres:g} m"


def scale_bar(m_per_col: float, max_cells: int) -> ScaleBar | None:
    """The longest round distance (1-2-5 series) that fits in ``max_cells`` columns, drawn to scale."""
    best = None
    for metres in SCALE_STEPS_M:
        cells = round(metres / m_per_col)
        if cells > max_cells:
            break
        if cells >= 2:
            best = ScaleBar(metres, cells, distance_label(metres))
    return best


def zoom_steps(m_per_col: float, steps: int) -> float:
    """Zoom in (steps > 0) or out by factors of sqrt 2, kept within the zoom limits."""
    return min(ZOOM_MAX_M, max(ZOOM_MIN_M, m_per_col / math.sqrt(2.0) ** steps))


# --- GeoJSON ---------------------------------------------------------------------------------------


class GeoJsonError(ValueError):
    """An overlay that cannot be drawn; the message names the file and where in it the fault is."""


_LINEAR = {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}
_SKIPPED = {"Point", "MultiPoint"}  # places are not outlines: an overlay draws lines only


def parse_geojson(text: str | bytes, source: str = "<geojson>") -> list[Line]:
    """The outlines of a GeoJSON document (RFC 7946) as (lat, lon) polylines: LineString and
    MultiLineString as they are, Polygon and MultiPolygon rings (closed) as outlines; points are
    skipped. A FeatureCollection, a Feature, a GeometryCollection or a bare geometry may be given."""
    try:
        doc = load_json(text)
    except ValueError as exc:
        raise GeoJsonError(f"{source}: {exc}") from None
    lines: list[Line] = []
    _walk(doc, "$", source, lines, depth=0)
    return lines


def _walk(obj: object, where: str, source: str, out: list[Line], depth: int) -> None:
    if depth > 32:
        raise GeoJsonError(f"{source}: {where}: nested too deeply")
    if not isinstance(obj, dict):
        raise GeoJsonError(f"{source}: {where}: expected a GeoJSON object, got {_kind(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise GeoJsonError(f"{source}: {where}.type: expected a GeoJSON type name, got {kind!r:.40}")
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list):
            raise GeoJsonError(f"{source}: {where}.features: expected a list, got {_kind(features)}")
        for n, feature in enumerate(features):
            _walk(feature, f"{where}.features[{n}]", source, out, depth + 1)
    elif kind == "Feature":
        geometry = obj.get("geometry")
        if geometry is not None:  # a feature without a place is allowed (RFC 7946, 3.2)
            _walk(geometry, f"{where}.geometry", source, out, depth + 1)
    elif kind == "GeometryCollection":
        geometries = obj.get("geometries")
        if not isinstance(geometries, list):
            raise GeoJsonError(f"{source}: {where}.geometries: expected a list, got {_kind(geometries)}")
        for n, geometry in enumerate(geometries):
            _walk(geometry, f"{where}.geometries[{n}]", source, out, depth + 1)
    elif kind in _LINEAR:
        out.extend(_lines_of(kind, obj.get("coordinates"), f"{where}.coordinates", source))
    elif kind in _SKIPPED:
        return
    else:
        raise GeoJsonError(f"{source}: {where}.type: expected a GeoJSON type (FeatureCollection, Feature, "
                           f"LineString, Polygon, ...), got {kind!r}")


def _lines_of(kind: str, coords: object, at: str, source: str) -> list[Line]:
    """The lines a LineString, MultiLineString, Polygon or MultiPolygon draws (a polygon: its rings)."""
    if kind == "LineString":
        return [_line(coords, at, source)]
    if kind in ("MultiLineString", "Polygon"):
        return [_line(c, f"{at}[{n}]", source) for n, c in enumerate(_list(coords, at, source))]
    out: list[Line] = []
    for n, polygon in enumerate(_list(coords, at, source)):
        rings = _list(polygon, f"{at}[{n}]", source)
        out.extend(_line(c, f"{at}[{n}][{m}]", source) for m, c in enumerate(rings))
    return out


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _list(value: object, where: str, source: str) -> list[object]:
    if not isinstance(value, list):
        raise GeoJsonError(f"{source}: {where}: expected a list, got {_kind(value)}")
    return value


def _line(value: object, where: str, source: str) -> Line:
    points = _list(value, where, source)
    if len(points) < 2:
        raise GeoJsonError(f"{source}: {where}: a line needs at least 2 positions, got {len(points)}")
    return tuple(_position(p, f"{where}[{n}]", source) for n, p in enumerate(points))


def _position(value: object, where: str, source: str) -> Point:
    if not isinstance(value, list) or len(value) < 2:
        raise GeoJsonError(f"{source}: {where}: expected a position [lon, lat], got {value!r:.60}")
    lon, lat = value[0], value[1]
    for name, v, limit in (("longitude", lon, 180.0), ("latitude", lat, 90.0)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > limit:
            raise GeoJsonError(f"{source}: {where}: expected a {name} within +-{limit:g} degrees, got {v!r:.40}")
    return float(lat), float(lon)


def bounds(lines: Sequence[Line]) -> tuple[float, float, float, float] | None:
    """(south, west, north, east) of the overlay, or None when it is empty."""
    lats = [p[0] for line in lines for p in line]
    if not lats:
        return None
    lons = [p[1] for line in lines for p in line]
    return min(lats), min(lons), max(lats), max(lons)
