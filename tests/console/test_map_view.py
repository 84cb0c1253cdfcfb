"""The map screen against the real chain: bytes on a pty -> gateway -> Mosquitto -> bridge -> database ->
a console driven headless. A unit's beacon puts it on the map at its cell, an emergency puts the incident
marker there, the keys pan, zoom, follow and centre, a configured camera draws its wedge and the GeoJSON
overlay its road; the mouse drags the map, zooms it around the pointer and picks units and incidents; a
vehicle camera goes where its unit's beacons say."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rig import CountingApp, pklds_emergency, run, screenshot, until
from support import Mosquitto, SocatLink, site_config, wait_until
from textual import events
from textual.pilot import Pilot

from bridge.cameras.geometry import Camera, destination, haversine_m
from bridge.service import Bridge
from bridge.views import IncidentView, UnitView
from config.schema import Config, load_config
from console.mapgeo import M_PER_DEG, Projection
from console.screens.map import MapScreen
from console.widgets.map_view import MapView
from drivers.nmea import checksum
from gateway.events import Position
from gateway.runner import Gateway

LAT, LON = 30.2095, 120.2107  # where unit 1001's beacon says it is ("3012.5700,N", "12012.6420,E")
# The map's centre: 30 m north and 25 m east of the unit, so at 10 m a column the unit is 5 dots left and
# 6 dots down of the centre (which lies on a cell boundary): 3 columns left, 1 row down.
CENTRE_LAT = LAT + 30 / M_PER_DEG
CENTRE_LON = LON + 25 / (M_PER_DEG * math.cos(math.radians(CENTRE_LAT)))
CAMERA = destination(CENTRE_LAT, CENTRE_LON, 90.0, 250.0)  # 250 m east of the centre, looking north
ROAD_LAT = destination(CENTRE_LAT, CENTRE_LON, 180.0, 102.0)[0]  # an east-west road 102 m south (mid-dot)
UNIT = "fleetsync:100-1001"
CAR = "fleetsync:100-1004"  # carries the vehicle camera, registered 200 m north of the centre
CAR_CAMERA = destination(CENTRE_LAT, CENTRE_LON, 0.0, 200.0)


def pklds(unit: int, lat: str, lon: str, status: str = "00") -> bytes:
    """A Kenwood ``$PKLDS`` position from fleet 100, ``unit``; status 99 would be an emergency."""
    now = datetime.now(UTC)
    body = f"PKLDS,{now:%H%M%S},A,{lat},{lon},001.1,194.9,{now:%d%m%y},,,100,{unit:04d},{status},00,"
    return f"${body}*{checksum(body):02X}\r\n".encode()


@dataclass
class MapSite:
    config: Config
    radio: SocatLink


@pytest.fixture
def map_site(tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink) -> Iterator[MapSite]:
    """A gateway and a bridge (SQLite) with a camera and a map overlay configured."""
    road = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "Wenyi Rd"},
            "geometry": {"type": "LineString", "coordinates": [[LON - 0.01, ROAD_LAT], [LON + 0.01, ROAD_LAT]]}}]}
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "roads.geojson").write_text(json.dumps(road))
    console = f"""
map_center = [{CENTRE_LAT!r}, {CENTRE_LON!r}]
map_zoom_m = 10.0
map_overlay = "maps/roads.geojson"

[[cameras]]
id = "cam-n"
name = "Wenyi Rd, looking north"
lat = {CAMERA[0]!r}
lon = {CAMERA[1]!r}
heading_deg = 0
fov_deg = 60
range_m = 150

[[cameras]]
id = "car-4"
name = "Car 4 roof camera"
kind = "vehicle"
unit = "{CAR}"
lat = {CAR_CAMERA[0]!r}
lon = {CAR_CAMERA[1]!r}
fov_deg = 360
range_m = 60
"""
    path = site_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path / 'bridge.sqlite'}", socat_link.radio,
                       bridge={"reannounce_s": 600}, console=console)
    config = load_config(path)
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: bridge.connected, 10, "bridge to connect")
        wait_until(lambda: gateway.publisher.connected, 10, "gateway to connect")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port to open")
        yield MapSite(config, socat_link)
    finally:
        gateway.stop()
        bridge.stop()


def shown(view: MapView) -> list[str]:
    return view.text_lines()


def at(view: MapView, lat: float | None, lon: float | None) -> bool:
    """The map is centred there (to a few millimetres: the centre is normalised to -180..180)."""
    return lat is not None and lon is not None and abs(view.lat - lat) < 1e-9 and abs(view.lon - lon) < 1e-9


def braille(ch: str) -> bool:
    return 0x2800 < ord(ch) <= 0x28FF


def test_the_map_shows_units_incidents_cameras_and_the_overlay_and_its_keys_move_it(
        map_site: MapSite, tmp_path: Path) -> None:
    assert map_site.config.console.map_overlay == tmp_path / "maps" / "roads.geojson"  # relative to the file
    app = CountingApp(map_site.config, "alice")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: bool(app.broker) and app.database == "ok", "console ready")
            map_site.radio.write(pklds(1001, "3012.5700,N", "12012.6420,E"))  # a beacon: no emergency
            await until(pilot, lambda: UNIT in app.state.units, "the unit")

            await pilot.press("m")
            assert isinstance(app.screen, MapScreen)
            screen = app.screen
            view = screen.map
            assert (view.lat, view.lon, view.m_per_col) == (CENTRE_LAT, CENTRE_LON, 10.0)
            w, h = view.size
            assert (w, h) == (120, 38)  # all but the status line and the footer

            # The unit at its cell: course 194.9 is an arrow pointing south, the identity beside it.
            col, row = w // 2 - 3, h // 2 + 1
            assert Projection(view.lat, view.lon, 10.0, w, h).to_cell(LAT, LON) == (col, row)
            await until(pilot, lambda: UNIT in shown(view)[row], "the unit on the map")
            assert shown(view)[row][col:col + 1 + len(UNIT)] == "↓" + UNIT
            assert not app.state.incidents

            # The camera: its mark, and its wedge reaching 150 m north; the road of the overlay.
            await until(pilot, lambda: "2 cameras" in str(screen.status.render()), "the cameras")
            await until(pilot, lambda: len(view.overlay) == 1, "the overlay")
            proj = view.projection()
            cam_col, cam_row = proj.to_cell(*CAMERA) or (-1, -1)
            assert shown(view)[cam_row][cam_col] == "◘"
            tip_col, tip_row = proj.to_cell(*destination(*CAMERA, 0.0, 149.0)) or (-1, -1)
            assert tip_row < cam_row - 5 and braille(shown(view)[tip_row][tip_col])
            edge_col, edge_row = proj.to_cell(*destination(*CAMERA, 330.0, 100.0)) or (-1, -1)
            assert braille(shown(view)[edge_row][edge_col])  # the sector's left edge
            road_col, road_row = proj.to_cell(ROAD_LAT, LON - 0.002) or (-1, -1)
            assert braille(shown(view)[road_row][road_col])
            assert "N" in shown(view)[0][-3:] and "200 m" in shown(view)[h - 1]  # north, scale bar

            # Another radio's emergency, 130 m south-west: its incident marker there, with its number.
            map_site.radio.write(pklds_emergency(1002, lat="3012.5000,N", lon="12012.6000,E"))
            await until(pilot, lambda: len(app.state.incidents) == 1, "the incident")
            [incident] = app.state.incidents.values()
            assert incident.lat is not None and incident.lon is not None
            i_col, i_row = view.projection().to_cell(incident.lat, incident.lon) or (-1, -1)
            tag = f"#{incident.id}▲"
            await until(pilot, lambda: tag in shown(view)[i_row], "the incident marker")
            assert shown(view)[i_row][i_col - len(tag) + 1:i_col + 1] == tag

            # Zoom: + and - by sqrt 2; the scale bar follows.
            await pilot.press("plus")
            assert view.m_per_col == pytest.approx(10 / math.sqrt(2))
            await pilot.press("minus", "minus")
            assert view.m_per_col == pytest.approx(10 * math.sqrt(2))
            assert "14.14m/col" in str(screen.status.render())
            await pilot.press("plus")

            # Pan: a quarter of the view a key; arrows and hjkl alike.
            await pilot.press("right")
            assert haversine_m(CENTRE_LAT, CENTRE_LON, CENTRE_LAT, view.lon) == pytest.approx(300.0, rel=0.01)
            assert view.lon > CENTRE_LON
            await pilot.press("h", "k")
            assert view.lon == pytest.approx(CENTRE_LON, abs=1e-9) and view.lat > CENTRE_LAT
            await pilot.press("down")
            assert at(view, CENTRE_LAT, CENTRE_LON)

            # Follow the incident: the map centres on it, and again when it moves.
            await pilot.press("f")
            assert view.following and at(view, incident.lat, incident.lon)
            assert f"following #{incident.id}" in str(screen.status.render())
            map_site.radio.write(pklds_emergency(1002, lat="3012.4000,N", lon="12012.5000,E"))
            await until(pilot, lambda: app.state.incidents[incident.id].lat != incident.lat, "the incident to move")
            moved = app.state.incidents[incident.id]
            await until(pilot, lambda: at(view, moved.lat, moved.lon), "the map to follow it")
            assert f"#{incident.id}▲" in shown(view)[h // 2]

            # Panning by hand stops following; c centres on the incident again.
            await pilot.press("left")
            assert not view.following and view.lon < (moved.lon or 0)
            await pilot.press("c")
            assert at(view, moved.lat, moved.lon)

            svg = app.export_screenshot()
            assert UNIT in svg and "#" in svg
            screenshot(app, tmp_path, "console-map-120x40")

            await pilot.press("escape")
            assert not isinstance(app.screen, MapScreen)

    run(scenario())


async def open_map(app: CountingApp, pilot: Pilot[None]) -> MapView:
    await pilot.press("m")
    assert isinstance(app.screen, MapScreen)
    screen = app.screen
    await until(pilot, lambda: "2 cameras" in str(screen.status.render()), "the cameras")
    return screen.map


def glyph_at(view: MapView, lat: float, lon: float) -> tuple[int, int, str]:
    """The cell a place falls in on the map as it is now, and what is drawn there."""
    col, row = view.projection().to_cell(lat, lon) or (-1, -1)
    return col, row, shown(view)[row][col] if row >= 0 else ""


def highlighted(view: MapView, incident: IncidentView) -> bool:
    """Whether the incident's label ("#12", left of its marker) is drawn in reverse video."""
    assert incident.lat is not None and incident.lon is not None
    col, row, _ = glyph_at(view, incident.lat, incident.lon)
    label = f"#{incident.id}"
    styles: list[bool] = []  # per cell of the row
    for segment in view.render_line(row):
        styles += [bool(segment.style and segment.style.reverse)] * len(segment.text)
    styles = styles[col - len(label):col]
    assert len(styles) == len(label)
    return all(styles)


def scroll(app: CountingApp, view: MapView, col: int, row: int, up: bool) -> None:
    """The wheel turned once with the pointer over the map's cell (col, row), posted as the terminal
    driver posts it (the pilot has no wheel)."""
    x, y = view.region.x + col, view.region.y + row
    kind = events.MouseScrollUp if up else events.MouseScrollDown
    app.post_message(kind(None, x, y, 0, 0, 0, False, False, False, screen_x=x, screen_y=y))


def test_the_mouse_drags_the_map_zooms_around_the_pointer_and_picks_what_is_clicked(map_site: MapSite) -> None:
    app = CountingApp(map_site.config, "alice")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: bool(app.broker) and app.database == "ok", "console ready")
            map_site.radio.write(pklds(1001, "3012.5700,N", "12012.6420,E"))
            await until(pilot, lambda: UNIT in app.state.units, "the unit")
            view = await open_map(app, pilot)
            screen = app.screen
            assert isinstance(screen, MapScreen)
            w, h = view.size
            col, row, mark = glyph_at(view, LAT, LON)
            assert (col, row, mark) == (w // 2 - 3, h // 2 + 1, "↓")

            # Drag the unit's arrow 10 columns right and 3 rows down: it is drawn where the pointer let go,
            # the map's centre moved 100 m west and 60 m north (10 m a column, 20 m a row).
            await pilot.mouse_down(view, offset=(col, row))
            await pilot.mouse_up(view, offset=(col + 10, row + 3))
            assert glyph_at(view, LAT, LON) == (col + 10, row + 3, "↓")
            assert view.lon < CENTRE_LON and view.lat > CENTRE_LAT
            assert haversine_m(CENTRE_LAT, CENTRE_LON, CENTRE_LAT, view.lon) == pytest.approx(100.0, rel=0.01)
            assert haversine_m(CENTRE_LAT, CENTRE_LON, view.lat, CENTRE_LON) == pytest.approx(60.0, rel=0.01)
            assert f"{view.lat:.5f},{view.lon:.5f}" in str(screen.status.render())
            col, row = col + 10, row + 3

            # The wheel over the unit zooms around it: the unit stays under the pointer, the map's centre
            # comes nearer to it when zooming in, and the scale bar and the status follow.
            bar = shown(view)[h - 1]
            assert "200 m" in bar
            away = haversine_m(view.lat, view.lon, LAT, LON)
            scroll(app, view, col, row, up=True)
            await until(pilot, lambda: view.m_per_col < 10.0, "zoomed in")
            assert view.m_per_col == pytest.approx(10 / math.sqrt(2))
            assert glyph_at(view, LAT, LON) == (col, row, "↓")
            assert haversine_m(view.lat, view.lon, LAT, LON) == pytest.approx(away / math.sqrt(2), rel=0.02)
            assert shown(view)[h - 1] != bar and "7.07m/col" in str(screen.status.render())
            scroll(app, view, col, row, up=False)
            scroll(app, view, col, row, up=False)
            await until(pilot, lambda: view.m_per_col > 10.0, "zoomed out")
            assert view.m_per_col == pytest.approx(10 * math.sqrt(2))
            assert glyph_at(view, LAT, LON) == (col, row, "↓")
            assert "500 m" in shown(view)[h - 1] and "14.14m/col" in str(screen.status.render())

            # Two emergencies; a click on the incident not selected selects it (f then follows it), a click
            # on a unit selects the unit (c then centres on it), a click on nothing changes nothing.
            map_site.radio.write(pklds_emergency(1002, lat="3012.5000,N", lon="12012.6000,E"))
            map_site.radio.write(pklds_emergency(1003, lat="3012.6000,N", lon="12012.5600,E"))
            await until(pilot, lambda: len(app.state.incidents) == 2, "the incidents")
            await until(pilot, lambda: len(view.incidents) == 2, "the incidents on the map")
            other = next(i for i in app.state.incidents.values() if i.id != view.selected_incident)
            assert other.lat is not None and other.lon is not None
            i_col, i_row, mark = glyph_at(view, other.lat, other.lon)
            assert mark == "▲"
            first = app.state.incidents[view.selected_incident]
            assert highlighted(view, first) and not highlighted(view, other)
            await pilot.click(view, offset=(i_col, i_row))
            assert view.selected_incident == other.id
            await pilot.pause()
            assert highlighted(view, other) and not highlighted(view, first)
            assert f"Incident #{other.id} selected: f follows it, c centres on it." in app.notes
            await pilot.press("f")
            assert view.following and at(view, other.lat, other.lon)
            await pilot.press("f")
            assert not view.following

            view.selected_unit = None
            u_col, u_row, mark = glyph_at(view, LAT, LON)
            assert mark == "↓"
            await pilot.click(view, offset=(u_col, u_row))
            assert view.selected_unit == UNIT and f"{UNIT} selected: c centres on it." in app.notes
            await pilot.press("c")
            assert at(view, LAT, LON)
            await pilot.click(view, offset=(1, 1))  # an empty corner
            assert view.selected_unit == UNIT and view.selected_incident == other.id
            assert at(view, LAT, LON)

    run(scenario())


def test_a_vehicle_camera_goes_where_its_unit_is(map_site: MapSite) -> None:
    app = CountingApp(map_site.config, "alice")

    def ring(view: MapView, lat: float, lon: float) -> bool:
        """The camera's 60 m all-round view is drawn around (lat, lon): its west edge (in that row, give or
        take a column: the circle is drawn in dots) and its north edge (that column, give or take a row)."""
        rows = shown(view)
        col, row, _ = glyph_at(view, *destination(lat, lon, 270.0, 60.0))
        west = any(braille(rows[row][c]) for c in (col - 1, col, col + 1))
        col, row, _ = glyph_at(view, *destination(lat, lon, 0.0, 60.0))
        north = any(braille(rows[r][col]) for r in (row - 1, row, row + 1))
        return west and north

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: bool(app.broker) and app.database == "ok", "console ready")
            view = await open_map(app, pilot)
            # Not heard from yet: where it is registered.
            assert glyph_at(view, *CAR_CAMERA)[2] == "◘" and ring(view, *CAR_CAMERA)

            map_site.radio.write(pklds(1004, "3012.5400,N", "12012.7000,E"))  # the car reports
            await until(pilot, lambda: CAR in view.units, "the car on the map")
            car = view.units[CAR].position
            assert car is not None
            await until(pilot, lambda: ring(view, car.lat, car.lon), "the camera at the car")
            assert glyph_at(view, *CAR_CAMERA)[2] != "◘" and not ring(view, *CAR_CAMERA)
            assert glyph_at(view, car.lat, car.lon)[2] == "↓"  # the car's arrow over the camera's mark

            map_site.radio.write(pklds(1004, "3012.6200,N", "12012.5600,E"))  # it drives 260 m north-west
            await until(pilot, lambda: (p := view.units[CAR].position) is not None and p.lat != car.lat,
                        "the car moves")
            moved = view.units[CAR].position
            assert moved is not None
            await until(pilot, lambda: ring(view, moved.lat, moved.lon), "the camera to follow the car")
            assert not ring(view, car.lat, car.lon)
            assert "2 cameras" in str(app.screen.status.render())  # type: ignore[attr-defined]

    run(scenario())


def test_every_camera_of_a_vehicle_moves_with_it() -> None:
    """A car with a front and a rear camera: both go where the car's state says, the fixed one stays."""
    cameras = [Camera("front", "front", 30.0, 120.0, None, 360.0, 50.0, kind="vehicle", unit="mdc:1"),
               Camera("rear", "rear", 30.0, 120.0, None, 360.0, 50.0, kind="vehicle", unit="mdc:1"),
               Camera("pole", "pole", 30.0, 120.0, 90.0, 60.0, 50.0)]
    view = MapView(30.0, 120.0)
    view.set_cameras(cameras)
    car = UnitView(unit="mdc:1", alias=None, position=Position(lat=30.001, lon=120.002, course_deg=90.0),
                   last_heard=datetime.now(UTC), last_kind="beacon", last_channel="patrol-1", last_gateway="gw1",
                   last_event_id="e1", gateway_online=True)
    view.sync({"mdc:1": car}, {}, datetime.now(UTC))
    assert [(c.id, c.lat, c.lon) for c in view.shown_cameras] == [
        ("front", 30.001, 120.002), ("rear", 30.001, 120.002), ("pole", 30.0, 120.0)]
    assert view.cameras == cameras  # as registered
