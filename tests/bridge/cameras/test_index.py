"""The camera index's batch paths and awkward places, against a scan of every camera: seeing_many(), a
batch of moving units, cameras at the poles and across the antimeridian, on range and sector edges and
exactly at the point; and the exact test's arithmetic against the public distance and bearing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.geometry import (
    DISTANCE_TOLERANCE_M,
    Camera,
    Sighting,
    angle_between_deg,
    bearing_deg,
    best_first,
    destination,
    haversine_m,
    sees,
)
from bridge.cameras.index import CameraIndex

XIXING = (30.1855, 120.1600)


def brute_seeing(cameras: dict[str, Camera], lat: float, lon: float) -> list[Sighting]:
    return best_first(s for c in cameras.values() if (s := sees(c, lat, lon)) is not None)


def brute_near(cameras: dict[str, Camera], lat: float, lon: float, radius_m: float) -> list[tuple[Camera, float]]:
    found = [(c, haversine_m(c.lat, c.lon, lat, lon)) for c in cameras.values()]
    return sorted(((c, d) for c, d in found if d <= radius_m + DISTANCE_TOLERANCE_M), key=lambda cd: (cd[1], cd[0].id))


def clamp(lat: float, lon: float) -> tuple[float, float]:
    return max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon))


@st.composite
def around(draw: st.DrawFn, centre: tuple[float, float], spread_m: float) -> tuple[float, float]:
    """A position within spread_m of centre (which may be a pole, or on the antimeridian)."""
    return clamp(*destination(*centre, draw(st.floats(0.0, 360.0)), draw(st.floats(0.0, spread_m))))


@st.composite
def cameras_near(draw: st.DrawFn, centre: tuple[float, float], spread_m: float, max_range: float,
                 vehicles: bool = True) -> Camera:
    lat, lon = draw(around(centre, spread_m))
    omni = draw(st.booleans())
    vehicle = vehicles and draw(st.booleans())
    return Camera(
        id=f"{'v' if vehicle else 'c'}{draw(st.integers(0, 30))}", name="", lat=lat, lon=lon,
        heading_deg=None if omni and draw(st.booleans()) else draw(st.floats(0.0, 360.0)),
        fov_deg=360.0 if omni else draw(st.floats(1.0, 359.0)), range_m=draw(st.floats(1.0, max_range)),
        kind="vehicle" if vehicle else "fixed", unit=f"u:{draw(st.integers(0, 12))}" if vehicle else None)


@st.composite
def probe(draw: st.DrawFn, cameras: list[Camera], centre: tuple[float, float], spread_m: float) -> tuple[float, float]:
    """A random point, or an awkward one: a camera's own position, its sector edges and axis at exactly
    its range and just beyond, a pole, the antimeridian."""
    kind = draw(st.sampled_from(["free", "camera", "camera", "pole", "dateline"] if cameras else ["free"]))
    if kind == "free":
        return draw(around(centre, spread_m))
    if kind == "pole":
        return draw(st.sampled_from([90.0, -90.0])), draw(st.floats(-180.0, 180.0))
    if kind == "dateline":
        return draw(st.floats(-90.0, 90.0)), draw(st.sampled_from([180.0, -180.0]))
    c = draw(st.sampled_from(cameras))
    heading = c.heading_deg or 0.0
    bearing = draw(st.sampled_from([heading, heading - c.fov_deg / 2, heading + c.fov_deg / 2, heading + 180.0]))
    distance = draw(st.sampled_from([0.0, c.range_m, c.range_m + 2 * DISTANCE_TOLERANCE_M, c.range_m / 2]))
    return clamp(*destination(c.lat, c.lon, bearing % 360.0, distance))


PLACES = {
    "city": XIXING,
    "north pole": (90.0, 0.0),
    "south pole": (-90.0, 135.0),
    "near the pole": (89.995, -40.0),
    "antimeridian": (-17.8, 180.0),  # Fiji
    "antimeridian north": (65.0, -179.999),  # Chukotka
}


@pytest.mark.parametrize("place", sorted(PLACES))
@settings(max_examples=60, deadline=None)
@given(data=st.data(), cell_m=st.sampled_from([50.0, 200.0, 1000.0]))
def test_seeing_many_and_near_answer_what_a_scan_answers_anywhere(place: str, data: st.DataObject,
                                                                   cell_m: float) -> None:
    centre, spread = PLACES[place], 1500.0
    cams = data.draw(st.lists(cameras_near(centre, spread, 600.0), max_size=25))
    live = {c.id: c for c in cams}
    index = CameraIndex(cams, cell_m=cell_m)
    points = data.draw(st.lists(probe(list(live.values()), centre, spread), min_size=1, max_size=8))
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    assert index.seeing_many(lats, lons) == [brute_seeing(live, *p) for p in points]
    assert index.seeing_many(lats, lons, limit=2) == [brute_seeing(live, *p)[:2] for p in points]
    radius = data.draw(st.floats(0.0, 2000.0))
    for p in points:
        assert index.seeing(*p) == brute_seeing(live, *p)
        assert index.near(*p, radius) == brute_near(live, *p, radius)


@pytest.mark.parametrize("place", ["city", "near the pole", "antimeridian north"])
@settings(max_examples=80, deadline=None)
@given(data=st.data(), cell_m=st.sampled_from([25.0, 200.0]))
def test_a_batch_of_beacons_moves_every_camera_of_each_unit_as_one_by_one_would(place: str, data: st.DataObject,
                                                                                 cell_m: float) -> None:
    # Near the pole a vehicle camera's cells are whole rows: it goes to the wide list and back as it moves.
    centre = PLACES[place]
    cams = data.draw(st.lists(cameras_near(centre, 1500.0, 300.0), max_size=30))
    initial = {c.id: c for c in cams}  # a later duplicate replaces an earlier one, as in the index
    live = dict(initial)
    index, one_by_one = CameraIndex(cams, cell_m=cell_m), CameraIndex(cams, cell_m=cell_m)
    beacons = data.draw(st.lists(st.tuples(st.sampled_from([f"u:{i}" for i in range(15)]), around(centre, 1500.0),
                                           st.none() | st.floats(0.0, 360.0)), max_size=20))
    moves = [(unit, lat, lon, heading) for unit, (lat, lon), heading in beacons]
    moved = index.move_units(moves)
    for unit, lat, lon, heading in moves:  # in order: a unit named twice ends where it was named last
        for c in [c for c in live.values() if c.unit == unit]:
            live[c.id] = c.moved(lat, lon, heading)
        one_by_one.move_unit(unit, lat, lon, heading)
    assert sorted(moved, key=lambda c: c.id) == sorted((live[c.id] for c in moved), key=lambda c: c.id)
    assert {c.id for c in moved} == {c.id for c in initial.values() if c.unit in {m[0] for m in moves}}
    assert {c.id: c for c in index} == live == {c.id: c for c in one_by_one}
    points = data.draw(st.lists(probe(list(live.values()), centre, 1500.0), min_size=1, max_size=6))
    assert index.seeing_many([p[0] for p in points], [p[1] for p in points]) == [brute_seeing(live, *p)
                                                                                 for p in points]
    for p in points:
        assert index.near(*p, 400.0) == brute_near(live, *p, 400.0)


def test_a_bad_position_in_a_batch_moves_nothing_and_names_the_unit() -> None:
    van = Camera("van-1", "", *XIXING, heading_deg=None, fov_deg=360.0, range_m=60.0, kind="vehicle", unit="u:1")
    car = Camera("car-2", "", *XIXING, heading_deg=90.0, fov_deg=90.0, range_m=60.0, kind="vehicle", unit="u:2")
    index = CameraIndex([van, car])
    there = destination(*XIXING, 0.0, 500.0)
    with pytest.raises(ValueError, match=r"unit 'u:2': lat: expected -90\.\.90 degrees, got 91\.0"):
        index.move_units([("u:1", *there, None), ("u:2", 91.0, 120.0, None)])
    assert index.get("van-1") == van and index.get("car-2") == car
    assert index.move_units([("u:9", *there, None)]) == []  # a unit without cameras is passed over
    assert index.move_units([("u:2", *there, 180.0)]) == [car.moved(*there, 180.0)]


def test_seeing_many_refuses_a_bad_point_and_answers_nothing() -> None:
    index = CameraIndex([Camera("c", "", *XIXING, heading_deg=None, fov_deg=360.0, range_m=50.0)])
    with pytest.raises(ValueError, match=r"point 1: lon: expected -180\.\.180 degrees, got 200\.0"):
        index.seeing_many([XIXING[0], XIXING[0]], [XIXING[1], 200.0])
    with pytest.raises(ValueError, match="as many of each"):
        index.seeing_many([XIXING[0]], [])
    assert index.seeing_many([], []) == []


def test_cameras_on_one_mast_all_see_the_point_under_it_and_are_near_in_id_order() -> None:
    mast = [Camera(f"mast-{name}", "", *XIXING, heading_deg=heading, fov_deg=40.0, range_m=80.0)
            for name, heading in (("c", 0.0), ("a", 120.0), ("b", 240.0))]
    index = CameraIndex(mast)
    under = index.seeing(*XIXING)
    assert [(s.camera.id, s.distance_m, s.off_axis_deg, s.score) for s in under] == [
        ("mast-a", 0.0, 0.0, 1.0), ("mast-b", 0.0, 0.0, 1.0), ("mast-c", 0.0, 0.0, 1.0)]
    nearby = destination(*XIXING, 45.0, 30.0)
    assert [(c.id, d) for c, d in index.near(*nearby, 50.0)] == [(c.id, haversine_m(*XIXING, *nearby))
                                                                 for c in sorted(mast, key=lambda c: c.id)]
    assert index.seeing(*nearby) == []  # between the three sectors


@settings(max_examples=300, deadline=None)
@given(cam=cameras_near(XIXING, 0.0, 2000.0, vehicles=False), bearing=st.floats(0.0, 360.0),
       distance=st.floats(0.0, 2000.0))
def test_a_sighting_is_the_public_distance_and_bearing_to_the_last_bit(cam: Camera, bearing: float,
                                                                      distance: float) -> None:
    point = destination(cam.lat, cam.lon, bearing, distance)
    seen = sees(cam, *point)
    d = haversine_m(cam.lat, cam.lon, *point)
    assert (seen is not None) == (d <= cam.range_m + DISTANCE_TOLERANCE_M and (
        cam.heading_deg is None or cam.fov_deg == 360.0 or d <= DISTANCE_TOLERANCE_M
        or angle_between_deg(cam.heading_deg, bearing_deg(cam.lat, cam.lon, *point)) <= cam.fov_deg / 2 + 1e-7))
    if seen is not None:
        assert seen.distance_m == d
        if cam.heading_deg is not None and d > DISTANCE_TOLERANCE_M:
            assert seen.off_axis_deg == angle_between_deg(cam.heading_deg, bearing_deg(cam.lat, cam.lon, *point))


def test_bearings_keep_their_half_open_range_and_their_sign_of_zero() -> None:
    for start, end in (((10.0, 0.0), (11.0, 0.0)), ((-11.0, 0.0), (-10.0, 0.0))):  # due north on a meridian
        assert bearing_deg(*start, *end) == 0.0 and math.copysign(1.0, bearing_deg(*start, *end)) == 1.0
    assert bearing_deg(11.0, 0.0, 10.0, 0.0) == 180.0
    for b in (bearing_deg(*XIXING, *destination(*XIXING, x, 100.0)) for x in (359.9999999999, 0.0, 1e-12, 180.0)):
        assert 0.0 <= b < 360.0 and math.copysign(1.0, b) == 1.0
    assert angle_between_deg(350.0, 10.0) == 20.0 and angle_between_deg(0.0, 360.0) == 0.0
    assert angle_between_deg(-170.0, 170.0) == 20.0  # any bearings, not only 0..360


def test_a_camera_of_huge_range_is_seen_from_every_cell() -> None:
    # Past the cell budget: kept in the list that every query checks, near a pole as anywhere.
    beacon = Camera("lighthouse", "", 89.9, 10.0, heading_deg=None, fov_deg=360.0, range_m=50_000.0)
    index = CameraIndex([beacon])
    for p in ((90.0, 0.0), (89.7, -170.0), (89.9, 10.0)):
        assert index.seeing(*p) == brute_seeing({"lighthouse": beacon}, *p) != []
    assert index.seeing(89.0, 10.0) == []


def test_a_batch_ranks_equal_scores_by_distance_then_id_whatever_the_point_s_place_in_it() -> None:
    # Scores equal but for rounding from different distances (nearness 1 - 10/20 = 1 - 20/40), and equal
    # scores at equal distances (a mast), at the end of a long batch where the points' order leaves the
    # score few bits.
    place = destination(*XIXING, 0.0, 300.0)
    cams = [Camera("far", "", *destination(*place, 90.0, 20.0), heading_deg=None, fov_deg=360.0, range_m=40.0),
            Camera("near", "", *destination(*place, 270.0, 10.0), heading_deg=None, fov_deg=360.0, range_m=20.0),
            *(Camera(f"mast-{i}", "", *destination(*place, 180.0, 15.0), heading_deg=None, fov_deg=360.0,
                     range_m=30.0) for i in (3, 1, 2))]
    index = CameraIndex(cams)
    live = {c.id: c for c in cams}
    lats, lons = [XIXING[0]] * 4999 + [place[0]], [XIXING[1]] * 4999 + [place[1]]
    answers = index.seeing_many(lats, lons)
    ids = [s.camera.id for s in answers[-1]]
    assert sorted(ids) == ["far", "mast-1", "mast-2", "mast-3", "near"] and "mast-1,mast-2,mast-3" in ",".join(ids)
    assert {round(s.score, 9) for s in answers[-1]} == {0.75}
    assert answers[-1] == brute_seeing(live, *place) and answers[:-1] == [[]] * 4999


def test_near_draws_the_line_at_exactly_the_radius_and_its_tolerance() -> None:
    # Past the radius and its 1 mm tolerance by 0.2 um: inside the squared-chord margin, so it is the
    # distance itself that leaves it out, as for a scan.
    centre = XIXING
    cams = {c.id: c for c in (Camera(f"at-{d}", "", *destination(*centre, 30.0 + i, d), heading_deg=None,
                                     fov_deg=360.0, range_m=5.0)
                              for i, d in enumerate((500.0009998, 500.001, 500.0010002, 499.0)))}
    index = CameraIndex(cams.values())
    found = index.near(*centre, 500.0)
    assert found == brute_near(cams, *centre, 500.0)
    assert "at-500.0010002" not in {c.id for c, _ in found} and "at-500.0009998" in {c.id for c, _ in found}


def test_a_far_seeing_vehicle_camera_driven_over_the_pole_and_back_is_found_all_the_way() -> None:
    # 3 km of range: a disc of ordinary cells at 89 degrees, whole rows of them (too many: the list every
    # query checks) near the pole, ordinary cells again on the way back.
    van = Camera("van-far", "", 89.0, 0.0, heading_deg=None, fov_deg=360.0, range_m=3000.0, kind="vehicle",
                 unit="u:far")
    mast = Camera("mast", "", 89.5, 0.0, heading_deg=0.0, fov_deg=90.0, range_m=2000.0)
    index = CameraIndex([van, mast])
    live = {c.id: c for c in (van, mast)}
    for lat, lon in ((89.98, 0.0), (89.999, 120.0), (89.5, 0.01), (89.0, 10.0), (45.0, 10.0)):
        (moved,) = index.move_units([("u:far", lat, lon, None)])
        live["van-far"] = moved
        for p in ((lat, lon), destination(lat, lon, 45.0, 2999.0), destination(lat, lon, 200.0, 3001.0),
                  (90.0, 0.0), destination(89.5, 0.0, 0.0, 1000.0)):
            p = clamp(*p)
            assert index.seeing(*p) == brute_seeing(live, *p)
            assert index.seeing_many([p[0]], [p[1]]) == [brute_seeing(live, *p)]
            assert index.near(*p, 5000.0) == brute_near(live, *p, 5000.0)
    assert index.get("van-far") == live["van-far"] and index.cameras_of_unit("u:far") == [live["van-far"]]
