"""Camera index benchmark: seeing() and near() queries per second, against brute force on the same data.

    python -m bench.camera_bench [--cameras 5000] [--queries 10000] [--seed 6]

N cameras spread over about 20 km x 20 km of Hangzhou around (30.25, 120.17): 80 % fixed (field of view
30..120 degrees, range 50..300 m), 10 % PTZ, 10 % vehicle-mounted 360-degree cameras (range 30..100 m).
Queries are uniform random points over the same square; near() uses a 500 m radius.

Peers, on the same cameras and points, checked to give the same answers:
- numpy scan: the vectorised haversine over every camera, then the exact test on the survivors (what
  one would write without an index);
- Python scan: ``sees()`` / ``haversine_m`` on every camera (on a sample of the queries: it is slow).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from bridge.cameras.geometry import (  # noqa: E402
    DISTANCE_TOLERANCE_M,
    Camera,
    Sighting,
    best_first,
    haversine_m,
    haversine_m_np,
    sees,
)
from bridge.cameras.index import CameraIndex  # noqa: E402

CENTRE = (30.25, 120.17)
HALF_SIDE_M = 10_000.0
NEAR_RADIUS_M = 500.0


def city_cameras(n: int, rng: np.random.Generator) -> list[Camera]:
    dlat = math.degrees(HALF_SIDE_M / 6371008.8)
    dlon = dlat / math.cos(math.radians(CENTRE[0]))
    cameras = []
    for i in range(n):
        lat = CENTRE[0] + float(rng.uniform(-dlat, dlat))
        lon = CENTRE[1] + float(rng.uniform(-dlon, dlon))
        roll = rng.random()
        if roll < 0.1:
            cameras.append(Camera(f"van-{i}", f"van {i}", lat, lon, None, 360.0, float(rng.uniform(30, 100)),
                                  kind="vehicle", unit=f"mdc:{1000 + i}"))
        else:
            cameras.append(Camera(f"cam-{i}", f"camera {i}", lat, lon, float(rng.uniform(0, 360)),
                                  float(rng.uniform(30, 120)), float(rng.uniform(50, 300)),
                                  kind="ptz" if roll < 0.2 else "fixed"))
    return cameras


def points(n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    dlat = math.degrees(HALF_SIDE_M / 6371008.8)
    dlon = dlat / math.cos(math.radians(CENTRE[0]))
    return [(CENTRE[0] + float(a), CENTRE[1] + float(b))
            for a, b in zip(rng.uniform(-dlat, dlat, n), rng.uniform(-dlon, dlon, n), strict=True)]


class NumpyScan:
    """The peer without an index: every camera's distance by numpy, the exact test on those in range."""

    def __init__(self, cameras: Sequence[Camera]) -> None:
        self.cameras = list(cameras)
        self.lat = np.array([c.lat for c in cameras])
        self.lon = np.array([c.lon for c in cameras])
        self.range = np.array([c.range_m for c in cameras])

    def seeing(self, lat: float, lon: float) -> list[Sighting]:
        d = haversine_m_np(lat, lon, self.lat, self.lon)
        hits = np.flatnonzero(d <= self.range + 2 * DISTANCE_TOLERANCE_M)
        return best_first(s for i in hits if (s := sees(self.cameras[i], lat, lon)) is not None)

    def near(self, lat: float, lon: float, radius_m: float) -> list[tuple[Camera, float]]:
        d = haversine_m_np(lat, lon, self.lat, self.lon)
        found = [(c, haversine_m(c.lat, c.lon, lat, lon)) for c in
                 (self.cameras[i] for i in np.flatnonzero(d <= radius_m + 2 * DISTANCE_TOLERANCE_M))]
        return sorted(((c, x) for c, x in found if x <= radius_m + DISTANCE_TOLERANCE_M),
                      key=lambda cd: (cd[1], cd[0].id))


def python_seeing(cameras: Sequence[Camera], lat: float, lon: float) -> list[Sighting]:
    return best_first(s for c in cameras if (s := sees(c, lat, lon)) is not None)


def python_near(cameras: Sequence[Camera], lat: float, lon: float, radius_m: float) -> list[tuple[Camera, float]]:
    found = [(c, haversine_m(c.lat, c.lon, lat, lon)) for c in cameras]
    return sorted(((c, d) for c, d in found if d <= radius_m + DISTANCE_TOLERANCE_M), key=lambda cd: (cd[1], cd[0].id))


def rate(query: Callable[[float, float], object], pts: Sequence[tuple[float, float]]) -> tuple[float, list[object]]:
    answers: list[object] = []
    start = time.perf_counter()
    for lat, lon in pts:
        answers.append(query(lat, lon))
    return len(pts) / (time.perf_counter() - start), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=5_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--python-queries", type=int, default=200, help="queries for the slow Python scan")
    parser.add_argument("--cell-m", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cameras = city_cameras(args.cameras, rng)
    pts = points(args.queries, rng)

    start = time.perf_counter()
    index = CameraIndex(cameras, cell_m=args.cell_m)
    build_s = time.perf_counter() - start
    scan = NumpyScan(cameras)
    few = pts[: args.python_queries]

    rows = []
    for what, idx_q, np_q, py_q in (
        ("seeing()", index.seeing, scan.seeing, lambda la, lo: python_seeing(cameras, la, lo)),
        (f"near({NEAR_RADIUS_M:.0f} m)", lambda la, lo: index.near(la, lo, NEAR_RADIUS_M),
         lambda la, lo: scan.near(la, lo, NEAR_RADIUS_M),
         lambda la, lo: python_near(cameras, la, lo, NEAR_RADIUS_M)),
    ):
        idx_rate, idx_ans = rate(idx_q, pts)
        np_rate, np_ans = rate(np_q, pts)
        py_rate, py_ans = rate(py_q, few)
        if idx_ans != np_ans or idx_ans[: len(few)] != py_ans:
            raise SystemExit(f"{what}: the index and the scans disagree")
        hits = sum(len(a) for a in idx_ans if isinstance(a, list)) / len(pts)
        rows.append((what, idx_rate, np_rate, py_rate, hits))

    print(f"camera index: {len(cameras)} cameras over 20 x 20 km, {len(pts)} queries, cell {args.cell_m:.0f} m, "
          f"built in {build_s:.2f} s; Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}")
    print()
    print("| query | index q/s | numpy scan q/s | Python scan q/s | mean results |")
    print("|---|---:|---:|---:|---:|")
    for what, idx_rate, np_rate, py_rate, hits in rows:
        print(f"| {what} | {idx_rate:,.0f} | {np_rate:,.0f} | {py_rate:,.0f} | {hits:.2f} |")


if __name__ == "__main__":
    main()
