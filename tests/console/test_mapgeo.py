"""The map's drawing arithmetic: projection, braille lines and sectors, the scale bar, fading, GeoJSON."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.geometry import destination, haversine_m
from console import mapgeo
from console.mapgeo import BrailleCanvas, GeoJsonError, Projection, parse_geojson, scale_bar

LAT, LON = 30.2095, 120.2107


# --- projection --------------------------------------------------------------------------------------


def test_the_centre_is_the_middle_of_the_canvas_and_north_is_up() -> None:
    p = Projection(LAT, LON, 10.0, 80, 24)
    assert p.to_dots(LAT, LON) == (80.0, 48.0)
    north = destination(LAT, LON, 0.0, 100.0)
    east = destination(LAT, LON, 90.0, 100.0)
    nx, ny = p.to_dots(*north)
    ex, ey = p.to_dots(*east)
    # 10 m a column is 5 m a dot: 100 m is 20 dots, up for north and right for east, dots square.
    assert nx == pytest.approx(80.0, abs=0.01) and ny == pytest.approx(28.0, abs=0.05)
    assert ex == pytest.approx(100.0, abs=0.05) and ey == pytest.approx(48.0, abs=0.01)


def test_a_cell_is_twice_as_tall_as_wide_in_metres() -> None:
    p = Projection(LAT, LON, 10.0, 80, 24)
    # 25 m west and 30 m north: 5 dots left (3 cells, as the centre is on a cell boundary), 6 dots up
    lat, lon = p.to_latlon(80 - 5, 48 - 6)
    assert haversine_m(LAT, LON, lat, LON) == pytest.approx(30.0, rel=1e-3)
    assert haversine_m(LAT, LON, LAT, lon) == pytest.approx(25.0, rel=1e-3)
    assert p.to_cell(lat + 1e-7, lon + 1e-7) == (40 - 3, 12 - 2)
    assert p.to_cell(LAT + 0.1, LON) is None


@given(st.floats(-60, 60), st.floats(-179, 179), st.floats(0.25, 2000), st.floats(0, 160), st.floats(0, 96))
def test_projection_round_trips(lat: float, lon: float, zoom: float, x: float, y: float) -> None:
    p = Projection(lat, lon, zoom, 80, 24)
    back = p.to_dots(*p.to_latlon(x, y))
    assert back[0] == pytest.approx(x, abs=1e-6) and back[1] == pytest.approx(y, abs=1e-6)


def test_moving_the_view_moves_the_centre_by_cells() -> None:
    p = Projection(LAT, LON, 10.0, 80, 24)
    moved = p.moved(4, -2)  # 4 columns east (40 m), 2 rows north (40 m)
    assert haversine_m(LAT, LON, moved.lat, LON) == pytest.approx(40.0, rel=1e-3) and moved.lat > LAT
    assert haversine_m(LAT, LON, LAT, moved.lon) == pytest.approx(40.0, rel=1e-3) and moved.lon > LON


def test_the_antimeridian_is_crossed_the_short_way() -> None:
    p = Projection(0.0, 179.999, 1.0, 80, 24)
    x, _ = p.to_dots(0.0, -179.999)
    assert x == pytest.approx(80 + 2 * 222.6, abs=1.0)  # 0.002 degrees east, not 359.998 west


# --- braille ---------------------------------------------------------------------------------------


def test_a_horizontal_line_fills_the_top_dots_of_its_cells() -> None:
    c = BrailleCanvas(3, 1)
    c.line(0, 0, 5, 0)
    assert list(c.rows()) == ["⠉⠉⠉"]  # dots 1 and 4 of each cell
    c = BrailleCanvas(2, 1)
    c.line(0, 3, 3, 3)
    assert list(c.rows()) == ["⣀⣀"]  # dots 7 and 8: the bottom row


def test_a_diagonal_line_is_one_dot_a_step() -> None:
    c = BrailleCanvas(2, 1)
    c.line(0, 0, 3, 3)
    assert [(x, y) for x in range(4) for y in range(4) if c.get(x, y)] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert list(c.rows()) == ["⠑⢄"]


def test_a_line_far_off_the_canvas_is_clipped_not_walked() -> None:
    c = BrailleCanvas(4, 2)
    c.line(-1e9, 4, 1e9, 4)  # a road crossing kilometres of map: only its visible dots are drawn
    assert list(c.rows()) == ["    ", "⠉⠉⠉⠉"]
    c.line(-10, -10, -1, -20)
    c.line(math.nan, 0, 3, 3)
    assert list(c.rows()) == ["    ", "⠉⠉⠉⠉"]


def test_a_sector_crossing_north_is_drawn_either_side_of_north() -> None:
    outline = mapgeo.sector_outline(0.0, 60.0, 100.0)  # looks north: 330 .. 30 degrees
    assert outline[0] == outline[-1] == (0.0, 0.0)
    bearings = [math.degrees(math.atan2(e, n)) for e, n in outline[1:-1]]
    assert bearings[0] == pytest.approx(-30.0) and bearings[-1] == pytest.approx(30.0)
    assert all(b1 > b0 for b0, b1 in itertools.pairwise(bearings))  # one arc, not wrapped
    c = BrailleCanvas(20, 8)  # apex at the bottom middle, dots of 5 m: 100 m is 20 dots up
    apex = (20.0, 31.0)
    c.polyline([(apex[0] + e / 5, apex[1] - n / 5) for e, n in outline])
    dots = [(x, y) for x in range(c.dots_w) for y in range(c.dots_h) if c.get(x, y)]
    top = min(y for _, y in dots)
    assert top == 11  # the arc's top, straight north of the apex: 20 dots
    assert c.get(20, 11) and c.get(20, 31)  # on the arc due north, and the apex
    assert any(x < 20 for x, _ in dots) and any(x > 20 for x, _ in dots)
    # Symmetric about north (to a dot of rounding): a sector across 0 degrees is not split into two pieces,
    # and the arc is unbroken where it crosses north.
    xs = [x for x, _ in dots]
    assert abs((40 - max(xs)) - min(xs)) <= 1
    assert all(any(c.get(x, y) for y in range(11, 14)) for x in range(15, 26))


def test_an_all_round_camera_is_a_circle() -> None:
    outline = mapgeo.sector_outline(None, 360.0, 50.0)
    assert outline[0] == pytest.approx(outline[-1])
    assert all(math.hypot(e, n) == pytest.approx(50.0) for e, n in outline)


def test_arrows_and_age_bands() -> None:
    assert [mapgeo.arrow(c) for c in (0, 44, 90, 181, 359, 270)] == ["↑", "↗", "→", "↓", "↑", "←"]
    assert mapgeo.arrow(None) is None and mapgeo.arrow(math.nan) is None
    assert [mapgeo.age_band(a) for a in (0, 119, 120, 899, 900, None)] == \
        ["fresh", "fresh", "recent", "recent", "old", "old"]


# --- the scale bar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("m_per_col", "max_cells", "label", "cells"), [
    (10.0, 40, "200 m", 20),
    (10.0, 20, "200 m", 20),
    (10.0, 19, "100 m", 10),
    (2.0, 40, "50 m", 25),
    (50.0, 30, "1 km", 20),
    (100.0, 40, "2 km", 20),
    (1.0, 30, "20 m", 20),
])
def test_the_scale_bar_is_the_longest_round_distance_that_fits(m_per_col: float, max_cells: int, label: str,
                                                                cells: int) -> None:
    bar = scale_bar(m_per_col, max_cells)
    assert bar is not None and (bar.label, bar.cells) == (label, cells)
    assert bar.metres / m_per_col == pytest.approx(bar.cells, abs=0.5)  # drawn to scale


def test_no_scale_bar_fits_in_one_cell() -> None:
    assert scale_bar(10.0, 1) is None


def test_zoom_is_bounded() -> None:
    assert mapgeo.zoom_steps(10.0, 2) == pytest.approx(5.0)
    assert mapgeo.zoom_steps(10.0, -2) == pytest.approx(20.0)
    assert mapgeo.zoom_steps(0.3, 5) == mapgeo.ZOOM_MIN_M
    assert mapgeo.zoom_steps(15_000, -5) == mapgeo.ZOOM_MAX_M


# --- GeoJSON ---------------------------------------------------------------------------------------


def test_outlines_of_every_linear_geometry() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Xixi Rd"},
         "geometry": {"type": "LineString", "coordinates": [[120.20, 30.20], [120.21, 30.21, 12.0]]}},
        {"type": "Feature", "properties": {}, "geometry": None},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.2, 30.2]}},
        {"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": [
            [[1, 2], [3, 4]], [[5, 6], [7, 8]]]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": [
            {"type": "MultiPolygon", "coordinates": [[[[10, 10], [11, 10], [10, 10]]], [[[20, 20], [21, 20]]]]}]}},
    ]}
    lines = parse_geojson(json.dumps(doc), "district.geojson")
    assert lines[0] == ((30.20, 120.20), (30.21, 120.21))  # (lat, lon): GeoJSON is [lon, lat]
    assert len(lines) == 6
    assert lines[3][0] == lines[3][-1]  # a polygon's ring is closed
    assert mapgeo.bounds(lines) == (0.0, 0.0, 30.21, 120.21)
    assert parse_geojson('{"type": "LineString", "coordinates": [[1, 2], [3, 4]]}') == [((2.0, 1.0), (4.0, 3.0))]


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", "not JSON"),
    ("[]", "$: expected a GeoJSON object, got list"),
    ('{"type": "Topology"}', "$.type: expected a GeoJSON type"),
    ('{"type": "FeatureCollection"}', "$.features: expected a list, got null"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "LineString", '
     '"coordinates": [[1, 2], [3, 95]]}}]}',
     "$.features[0].geometry.coordinates[1]: expected a latitude within +-90 degrees, got 95"),
    ('{"type": "LineString", "coordinates": [[1, 2]]}', "$.coordinates: a line needs at least 2 positions"),
    ('{"type": "Polygon", "coordinates": [[[1, 2], "x"]]}', "$.coordinates[0][1]: expected a position [lon, lat]"),
    ('{"type": "LineString", "coordinates": [[true, 2], [3, 4]]}', "expected a longitude"),
    ("\xff\xfe", "not JSON"),
])
def test_a_bad_overlay_names_the_file_and_the_place(text: str, words: str) -> None:
    with pytest.raises(GeoJsonError) as err:
        parse_geojson(text, "/srv/maps/district.geojson")
    assert str(err.value).startswith("/srv/maps/district.geojson: ") and words in str(err.value)


def test_a_deeply_nested_overlay_is_refused_not_crashed() -> None:
    deep = '{"type": "GeometryCollection", "geometries": [' * 100 + "]}" * 100
    with pytest.raises(GeoJsonError, match="nested too deeply"):
        parse_geojson(deep, "deep.geojson")
    with pytest.raises(GeoJsonError, match=r"^deep\.geojson: "):
        parse_geojson("[" * 100_000, "deep.geojson")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "features", "geometry", "geometries", "coordinates", "x"]), inner, max_size=4),
    max_leaves=30,
)
_geometry = st.fixed_dictionaries({
    "type": st.sampled_from(["FeatureCollection", "Feature", "GeometryCollection", "LineString",
                             "MultiLineString", "Polygon", "MultiPolygon", "Point", "Nonsense"]),
    "features": _json, "geometry": _json, "geometries": _json, "coordinates": _json,
})


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, _geometry, st.binary(max_size=64)))
def test_garbage_is_an_overlay_or_a_clear_error(garbage: object) -> None:
    text = garbage if isinstance(garbage, bytes) else json.dumps(garbage)
    try:
        lines = parse_geojson(text, "junk.geojson")
    except GeoJsonError as exc:
        assert str(exc).startswith("junk.geojson: ")
        return
    for line in lines:
        assert len(line) >= 2
        assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon in line)
        # Whatever was accepted can be drawn.
        c = BrailleCanvas(10, 4)
        p = Projection(0.0, 0.0, 1000.0, 10, 4)
        c.polyline([p.to_dots(*pt) for pt in line])
