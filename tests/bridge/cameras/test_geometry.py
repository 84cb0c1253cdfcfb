"""Camera geometry and the camera index: sectors (across north, edges, 360 degrees), distances around a
real district checked against an independent formula, ranking, and the index against a scan of every
camera over random cameras, points, moves and removals."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.geometry import (
    DISTANCE_TOLERANCE_M,
    EARTH_RADIUS_M,
    Camera,
    Sighting,
    angle_between_deg,
    bearing_deg,
    best_first,
    destination,
    haversine_m,
    haversine_m_np,
    sees,
)
from bridge.cameras.index import CameraIndex

# Xixing, Binjiang district, Hangzhou: a patrol area south of the Qiantang river.
XIXING = (30.1855, 120.1600)


def reference_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance from the angle between the two positions' unit vectors (atan2 of cross and
    dot product): a different formula from the haversine, on the same sphere."""
    def unit(lat: float, lon: float) -> np.ndarray:
        p, lam = math.radians(lat), math.radians(lon)
        return np.array([math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p)])
    a, b = unit(lat1, lon1), unit(lat2, lon2)
    return EARTH_RADIUS_M * math.atan2(float(np.linalg.norm(np.cross(a, b))), float(np.dot(a, b)))


def camera(**fields: Any) -> Camera:
    base: dict[str, Any] = {"id": "cam-1", "name": "Jiangling Rd / Binsheng Rd", "lat": XIXING[0],
                            "lon": XIXING[1], "heading_deg": 0.0, "fov_deg": 20.0, "range_m": 100.0}
    return Camera(**(base | fields))


def at(cam: Camera, bearing: float, distance_m: float) -> tuple[float, float]:
    return destination(cam.lat, cam.lon, bearing, distance_m)


# -- sectors ---------------------------------------------------------------------------------------------


def test_a_sector_across_north_covers_350_to_10_degrees() -> None:
    cam = camera(heading_deg=0.0, fov_deg=20.0)
    for bearing in (350.5, 355.0, 359.9, 0.0, 0.1, 5.0, 9.5):
        assert sees(cam, *at(cam, bearing, 50.0)) is not None, bearing
    for bearing in (340.0, 349.0, 11.0, 20.0, 90.0, 180.0, 270.0):
        assert sees(cam, *at(cam, bearing, 50.0)) is None, bearing
    # The same sector expressed with heading 360 is the same sector.
    assert sees(camera(heading_deg=360.0), *at(cam, 355.0, 50.0)) is not None


def test_points_exactly_on_the_sector_edges_and_at_exactly_the_range_are_seen() -> None:
    cam = camera(heading_deg=0.0, fov_deg=20.0, range_m=100.0)
    for bearing in (350.0, 10.0):
        edge = sees(cam, *at(cam, bearing, 100.0))  # the far corners of the sector
        assert edge is not None
        assert edge.distance_m == pytest.approx(100.0, abs=1e-6)
        assert edge.off_axis_deg == pytest.approx(10.0, abs=1e-6)
        assert edge.score == pytest.approx(0.0, abs=1e-6)
        assert sees(cam, *at(cam, bearing, 100.01)) is None
    assert sees(cam, *at(cam, 349.99, 50.0)) is None
    assert sees(cam, *at(cam, 10.01, 50.0)) is None
    on_axis = sees(cam, *at(cam, 0.0, 100.0))
    assert on_axis is not None and on_axis.score == pytest.approx(0.5)
    assert sees(cam, *at(cam, 0.0, 100.01)) is None


def test_a_point_behind_the_camera_is_not_seen_even_when_close() -> None:
    cam = camera(heading_deg=90.0, fov_deg=90.0, range_m=200.0)
    assert sees(cam, *at(cam, 270.0, 5.0)) is None
    assert sees(cam, *at(cam, 180.0, 5.0)) is None
    assert sees(cam, *at(cam, 90.0, 5.0)) is not None


def test_the_camera_sees_its_own_position_dead_centre() -> None:
    cam = camera(heading_deg=123.0, fov_deg=10.0)
    seen = sees(cam, cam.lat, cam.lon)
    assert seen == Sighting(cam, 0.0, 0.0, 1.0)


def test_a_360_degree_camera_sees_every_direction_within_range() -> None:
    cam = camera(id="van-7", kind="vehicle", unit="mdc:1234", heading_deg=None, fov_deg=360.0, range_m=80.0)
    for bearing in range(0, 360, 15):
        seen = sees(cam, *at(cam, bearing, 40.0))
        assert seen is not None
        assert seen.off_axis_deg == 0.0
        assert seen.score == pytest.approx(0.5 * (1 - 40.0 / 80.0) + 0.5)
        assert sees(cam, *at(cam, bearing, 80.5)) is None
    assert sees(cam, *at(cam, 200.0, 80.0)) is not None


# -- distances and bearings on real coordinates --------------------------------------------------------

# Places around Xixing (approximate positions, WGS 84).
PLACES = {
    "xixing": XIXING,
    "binjiang-gov": (30.2084, 120.2107),
    "qiantang-bridge": (30.2004, 120.1406),
    "wulin-square": (30.2744, 120.1629),
    "west-lake-broken-bridge": (30.2585, 120.1510),
}


@pytest.mark.parametrize("a", sorted(PLACES))
@pytest.mark.parametrize("b", sorted(PLACES))
def test_distances_around_xixing_match_an_independent_reference(a: str, b: str) -> None:
    (lat1, lon1), (lat2, lon2) = PLACES[a], PLACES[b]
    expected = reference_distance_m(lat1, lon1, lat2, lon2)
    assert haversine_m(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert float(haversine_m_np(lat1, lon1, lat2, lon2)) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_known_distances_and_bearings() -> None:
    lat, lon = XIXING
    # One degree of latitude on the mean sphere is R * pi / 180 = 111 195.08 m.
    assert haversine_m(lat, lon, lat + 1.0, lon) == pytest.approx(111_195.08, abs=0.01)
    # Xixing to Wulin Square by hand on a flat map, good to 1e-4 over 10 km: 0.0889 degrees north is
    # 9 885.3 m, 0.0029 degrees east at the mean latitude 30.23 is 278.7 m: 9 889.2 m at 1.615 degrees.
    assert haversine_m(lat, lon, *PLACES["wulin-square"]) == pytest.approx(9_889.2, abs=1.0)
    assert bearing_deg(lat, lon, *PLACES["wulin-square"]) == pytest.approx(1.615, abs=0.01)
    for expected in (0.0, 45.0, 90.0, 180.0, 270.0, 359.0):
        got = bearing_deg(lat, lon, *destination(lat, lon, expected, 300.0))
        assert angle_between_deg(got, expected) < 1e-6
    assert 0.0 <= bearing_deg(lat, lon, *destination(lat, lon, 359.9999999999, 1.0)) < 360.0


def test_the_vectorised_haversine_agrees_with_the_scalar_one() -> None:
    rng = np.random.default_rng(6)
    lats, lons = 30.15 + rng.random(500) * 0.2, 120.05 + rng.random(500) * 0.25
    got = haversine_m_np(XIXING[0], XIXING[1], lats, lons)
    want = [haversine_m(XIXING[0], XIXING[1], la, lo) for la, lo in zip(lats, lons, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-7)


# -- ranking ---------------------------------------------------------------------------------------------


def test_sightings_rank_by_distance_and_by_how_centred_the_point_is() -> None:
    lat, lon = XIXING
    point = destination(lat, lon, 45.0, 150.0)
    facing_near = Camera("facing-near", "", *destination(*point, 225.0, 30.0), heading_deg=45.0, fov_deg=60.0,
                         range_m=200.0)  # 30 m away, looking straight at it
    facing_far = Camera("facing-far", "", *destination(*point, 225.0, 150.0), heading_deg=45.0, fov_deg=60.0,
                        range_m=200.0)
    askew_near = Camera("askew-near", "", *destination(*point, 225.0, 30.0), heading_deg=70.0, fov_deg=60.0,
                        range_m=200.0)  # as near, 25 degrees off its axis
    omni = Camera("omni", "", *destination(*point, 0.0, 100.0), heading_deg=None, fov_deg=360.0, range_m=200.0)
    blind = Camera("blind", "", *destination(*point, 225.0, 30.0), heading_deg=225.0, fov_deg=60.0, range_m=200.0)
    index = CameraIndex([blind, omni, askew_near, facing_far, facing_near])
    ranked = index.seeing(*point)
    assert [s.camera.id for s in ranked] == ["facing-near", "omni", "facing-far", "askew-near"]
    by_id = {s.camera.id: s for s in ranked}
    # Not exact: the bearing back along a great circle differs from the way out by ~1e-4 degree here.
    assert by_id["facing-near"].score == pytest.approx(0.5 * (1 - 30 / 200) + 0.5, abs=1e-5)
    assert by_id["askew-near"].score == pytest.approx(0.5 * (1 - 30 / 200) + 0.5 * (1 - 25 / 30), abs=1e-5)
    assert by_id["omni"].score == pytest.approx(0.5 * (1 - 100 / 200) + 0.5, abs=1e-5)
    assert index.seeing(*point, limit=2) == ranked[:2]
    assert best_first(reversed(ranked)) == ranked


# -- the index against a scan of every camera ----------------------------------------------------------


def brute_seeing(cameras: dict[str, Camera], lat: float, lon: float) -> list[Sighting]:
    return best_first(s for c in cameras.values() if (s := sees(c, lat, lon)) is not None)


def brute_near(cameras: dict[str, Camera], lat: float, lon: float, radius_m: float) -> list[tuple[Camera, float]]:
    found = [(c, haversine_m(c.lat, c.lon, lat, lon)) for c in cameras.values()]
    return sorted(((c, d) for c, d in found if d <= radius_m + DISTANCE_TOLERANCE_M), key=lambda cd: (cd[1], cd[0].id))


def cameras_in(lat: tuple[float, float], lon: tuple[float, float], max_range: float) -> st.SearchStrategy[Camera]:
    @st.composite
    def build(draw: st.DrawFn) -> Camera:
        omni = draw(st.booleans())
        return Camera(
            id=f"c{draw(st.integers(0, 40))}", name="",
            lat=draw(st.floats(*lat)), lon=draw(st.floats(*lon)),
            heading_deg=None if omni and draw(st.booleans()) else draw(st.floats(0.0, 360.0)),
            fov_deg=360.0 if omni else draw(st.floats(1.0, 359.0)),
            range_m=draw(st.floats(1.0, max_range)))
    return build()


def probes(cameras: list[Camera], lat: tuple[float, float], lon: tuple[float, float]) -> st.SearchStrategy[
        tuple[float, float]]:
    """Random points, plus the awkward ones: camera positions, sector edges at the range, just beyond."""
    free = st.tuples(st.floats(*lat), st.floats(*lon))
    if not cameras:
        return free

    @st.composite
    def awkward(draw: st.DrawFn) -> tuple[float, float]:
        c = draw(st.sampled_from(cameras))
        heading = c.heading_deg or 0.0
        bearing = draw(st.sampled_from([heading, heading - c.fov_deg / 2, heading + c.fov_deg / 2,
                                        heading + 180.0])) % 360.0
        distance = draw(st.sampled_from([0.0, c.range_m, c.range_m + 0.002, c.range_m / 2]))
        la, lo = destination(c.lat, c.lon, bearing, distance)
        return max(-90.0, min(90.0, la)), lo
    return st.one_of(free, awkward())


Op = tuple[str, Any]


def run_against_brute_force(data: st.DataObject, lat: tuple[float, float], lon: tuple[float, float],
                            max_range: float, cell_m: float) -> None:
    initial = data.draw(st.lists(cameras_in(lat, lon, max_range), max_size=30))
    index = CameraIndex(initial, cell_m=cell_m)
    live = {c.id: c for c in initial}  # later duplicates replace earlier ones, as in the index
    assert len(index) == len(live)
    for _ in range(data.draw(st.integers(1, 12))):
        op = data.draw(st.sampled_from(["query", "query", "move", "remove", "upsert"]))
        if op == "move" and live:
            cid = data.draw(st.sampled_from(sorted(live)))
            la, lo = data.draw(st.tuples(st.floats(*lat), st.floats(*lon)))
            heading = data.draw(st.none() | st.floats(0.0, 360.0))
            if live[cid].fov_deg == 360.0 and live[cid].heading_deg is None:
                heading = None
            live[cid] = index.move(cid, la, lo, heading)
            assert live[cid].lat == la and live[cid].lon == lo
        elif op == "remove" and live:
            cid = data.draw(st.sampled_from(sorted(live)))
            assert index.remove(cid) == live.pop(cid)
            assert index.remove(cid) is None
        elif op == "upsert":
            cam = data.draw(cameras_in(lat, lon, max_range))
            index.upsert(cam)
            live[cam.id] = cam
        else:
            la, lo = data.draw(probes(list(live.values()), lat, lon))
            assert index.seeing(la, lo) == brute_seeing(live, la, lo)
            radius = data.draw(st.floats(0.0, 2 * max_range))
            assert index.near(la, lo, radius) == brute_near(live, la, lo, radius)
        assert len(index) == len(live)
        assert {c.id: c for c in index} == live


@settings(max_examples=400, deadline=None)
@given(data=st.data(), cell_m=st.sampled_from([25.0, 200.0, 1000.0]))
def test_the_index_answers_what_a_scan_of_every_camera_answers(data: st.DataObject, cell_m: float) -> None:
    # About 2 km by 2 km around Xixing, so that cameras overlap and points fall inside them.
    run_against_brute_force(data, (30.175, 30.195), (120.15, 120.17), 800.0, cell_m)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), cell_m=st.sampled_from([200_000.0, 1_000_000.0]))
def test_the_index_answers_what_a_scan_answers_anywhere_on_earth(data: st.DataObject, cell_m: float) -> None:
    # Not needed for a city, but the cells wrap at the antimeridian and close at the poles. Ranges up to
    # 3 000 km also put some cameras past the index's cell budget, in its always-scanned list.
    run_against_brute_force(data, (-90.0, 90.0), (-180.0, 180.0), 3_000_000.0, cell_m)


def test_a_query_near_the_antimeridian_finds_the_camera_across_it() -> None:
    cam = Camera("dateline", "", 0.0, 179.9995, heading_deg=None, fov_deg=360.0, range_m=200.0)
    index = CameraIndex([cam])
    assert [s.camera.id for s in index.seeing(0.0, -179.9995)] == ["dateline"]
    assert [c.id for c, _ in index.near(0.0, -179.9995, 150.0)] == ["dateline"]


# -- moving cameras --------------------------------------------------------------------------------------


def test_moving_a_vehicle_camera_changes_what_it_sees() -> None:
    van = Camera("van-3", "patrol van 3", *XIXING, heading_deg=None, fov_deg=360.0, range_m=60.0,
                 kind="vehicle", unit="mdc:1234")
    pole = Camera("pole-1", "", *XIXING, heading_deg=90.0, fov_deg=60.0, range_m=300.0)
    index = CameraIndex([van, pole])
    stall = destination(*XIXING, 90.0, 250.0)  # a street stall 250 m east
    assert [s.camera.id for s in index.seeing(*stall)] == ["pole-1"]
    assert index.cameras_of_unit("mdc:1234") == [van]
    assert index.cameras_of_unit("mdc:9999") == []

    moved = index.move_unit("mdc:1234", *destination(*stall, 180.0, 20.0))  # a beacon: the van drove there
    assert [c.id for c in moved] == ["van-3"]
    assert index.get("van-3") == moved[0]
    assert index.cameras_of_unit("mdc:1234") == moved
    assert [s.camera.id for s in index.seeing(*stall)] == ["van-3", "pole-1"]
    assert index.seeing(*destination(*XIXING, 270.0, 30.0)) == []  # where it was, nobody looks now

    back = index.move("van-3", *XIXING, heading_deg=45.0)
    assert (back.lat, back.lon, back.heading_deg) == (*XIXING, 45.0)
    assert [s.camera.id for s in index.seeing(*stall)] == ["pole-1"]
    assert index.move("pole-1", *XIXING).heading_deg == 90.0  # heading kept when none is given


def test_moves_and_removals_of_unknown_or_invalid_cameras() -> None:
    index = CameraIndex([camera()])
    with pytest.raises(KeyError):
        index.move("nope", *XIXING)
    with pytest.raises(ValueError, match="lat"):
        index.move("cam-1", 91.0, 120.0)
    assert index.get("cam-1") == camera()  # a bad move changes nothing
    assert index.remove("nope") is None
    assert "cam-1" in index and len(index) == 1
    index.upsert(camera(range_m=500.0))
    assert len(index) == 1 and index.get("cam-1") == camera(range_m=500.0)
    with pytest.raises(ValueError, match="radius_m"):
        index.near(*XIXING, -1.0)
    with pytest.raises(ValueError, match="lon"):
        index.seeing(30.0, 181.0)


def test_queries_while_another_thread_moves_the_camera_see_it_somewhere_it_was() -> None:
    van = Camera("van-1", "", *XIXING, heading_deg=None, fov_deg=360.0, range_m=100.0, kind="vehicle", unit="u:1")
    index = CameraIndex([van])
    stops = [destination(*XIXING, 90.0, 50.0 * i) for i in range(20)]
    done = threading.Event()

    def drive() -> None:
        for _ in range(50):
            for stop in stops:
                index.move_unit("u:1", *stop)
        done.set()

    driver = threading.Thread(target=drive)
    driver.start()
    seen = 0
    while not done.is_set() or seen == 0:
        for c, _ in index.near(*XIXING, 2_000.0):
            assert (c.lat, c.lon) in stops or (c.lat, c.lon) == XIXING
            seen += 1
        assert len(index) == 1
    driver.join()
    last = index.get("van-1")
    assert last is not None and (last.lat, last.lon) == stops[-1]


# -- near() ----------------------------------------------------------------------------------------------


def test_near_includes_a_camera_at_exactly_the_radius_and_orders_nearest_first() -> None:
    centre = XIXING
    cams = [Camera(f"r{d}", "", *destination(*centre, 30.0 * i, d), heading_deg=0.0, fov_deg=10.0, range_m=5.0)
            for i, d in enumerate((0.0, 120.0, 499.0, 500.0, 500.01, 800.0))]
    index = CameraIndex(cams)
    found = index.near(*centre, 500.0)
    assert [c.id for c, _ in found] == ["r0.0", "r120.0", "r499.0", "r500.0"]
    assert [d for _, d in found] == pytest.approx([0.0, 120.0, 499.0, 500.0], abs=1e-6)
    assert [c.id for c, _ in index.near(*centre, 500.0, limit=2)] == ["r0.0", "r120.0"]
    assert [c.id for c, _ in index.near(*centre, 0.0)] == ["r0.0"]
    assert len(index.near(*centre, 100_000.0)) == 6  # wider than every occupied cell: a full scan


# -- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "named"), [
    ({"lat": 90.5}, "lat"),
    ({"lat": -91.0}, "lat"),
    ({"lat": float("nan")}, "lat"),
    ({"lon": 180.01}, "lon"),
    ({"lon": "120.2"}, "lon"),
    ({"fov_deg": 0.0}, "fov_deg"),
    ({"fov_deg": 361.0}, "fov_deg"),
    ({"range_m": 0.0}, "range_m"),
    ({"range_m": float("inf")}, "range_m"),
    ({"heading_deg": -1.0}, "heading_deg"),
    ({"heading_deg": 360.5}, "heading_deg"),
    ({"heading_deg": None, "fov_deg": 90.0}, "heading_deg"),
    ({"kind": "drone"}, "kind"),
    ({"kind": "vehicle"}, "unit"),
    ({"unit": "mdc:1"}, "unit"),
    ({"id": ""}, "id"),
    ({"id": "cam/1"}, "id"),
    ({"id": "cam+"}, "id"),
    ({"presets": (("gate", 90.0),)}, "presets"),
    ({"kind": "ptz", "presets": (("gate", 400.0),)}, "presets"),
    ({"stream_url": "not a url"}, "stream_url"),
    ({"snapshot_url": "rtsp://10.0.0.5/snap"}, "snapshot_url"),
])
def test_bad_camera_fields_raise_value_error_naming_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=rf"^{named}\b"):
        camera(**fields)


def test_secrets_are_refused_and_not_echoed() -> None:
    with pytest.raises(ValueError, match=r"^snapshot_url") as info:
        camera(snapshot_url="http://admin:hunter2@10.0.0.5/cgi-bin/snapshot.cgi")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match=r"^credentials_env") as info:
        camera(credentials_env="admin:hunter2")
    assert "hunter2" not in str(info.value)


def test_a_full_ptz_camera_is_accepted_and_normalised() -> None:
    ptz = camera(kind="ptz", heading_deg=90, fov_deg=60, range_m=250, presets=[["gate", 0], ("market", 270.5)],
                 stream_url="rtsp://10.0.0.5:554/Streaming/Channels/101",
                 snapshot_url="http://10.0.0.5/ISAPI/Streaming/channels/101/picture", credentials_env="CAM_1_AUTH")
    assert ptz.presets == (("gate", 0.0), ("market", 270.5))
    assert isinstance(ptz.heading_deg, float) and isinstance(ptz.range_m, float)
    assert hash(ptz) == hash(camera(kind="ptz", heading_deg=90.0, fov_deg=60.0, range_m=250.0,
                                    presets=(("gate", 0.0), ("market", 270.5)),
                                    stream_url="rtsp://10.0.0.5:554/Streaming/Channels/101",
                                    snapshot_url="http://10.0.0.5/ISAPI/Streaming/channels/101/picture",
                                    credentials_env="CAM_1_AUTH"))
