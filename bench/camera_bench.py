"""Camera index benchmark: seeing() and near() queries per second and a batch of moving units
re-correlated, against full scans of every camera on the same data.

    python -m bench.camera_bench [--cameras 100000] [--queries 10000] [--units 5000] [--runs 5] [--out FILE]

N cameras spread over about 20 km x 20 km of Hangzhou around (30.25, 120.17): 80 % fixed (field of view
30..120 degrees, range 50..300 m), 10 % PTZ, 10 % vehicle-mounted 360-degree cameras (range 30..100 m),
each following a radio unit of its own. Queries are uniform random points over the same square;
near() uses a 500 m radius.

Re-correlating moving units is what the bridge does with a batch of beacons (``Bridge._correlate``):
``--units`` units that carry a vehicle camera each send one position, 0..150 m from where they were
(a patrol car at up to 50 km/h, a beacon every 10 s); their cameras move there, and the cameras that
see each unit's position (where its open incident is) are asked for. Timed as the bridge does it
(``move_units`` then ``seeing_many``), once more with what was loaded frozen out of the garbage
collector (``gc.freeze()``, as a long-running service may do after loading), and unit by unit
(``move_unit`` each, then ``seeing`` each, as the bridge did before) for comparison. The scans' figures
for it are estimates: the units over the scan's ``seeing()`` rate.

Peers, on the same cameras and points, checked to give the same answers, to the last bit:
- numpy scan: the vectorised haversine over every camera, then the exact test on the survivors (what
  one would write without an index), on ``--scan-queries`` of the queries;
- Python scan: ``sees()`` / ``haversine_m`` on every camera, on ``--python-queries`` of them.
Every answer of the index (every query, every unit of the batch) is checked against the numpy scan
once, before the timed runs. Times are CPU times of this process (one core); each figure is the median
of ``--runs`` runs, with the lowest and highest beside it.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import statistics
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
    destination,
    haversine_m,
    haversine_m_np,
    sees,
)
from bridge.cameras.index import CameraIndex  # noqa: E402

CENTRE = (30.25, 120.17)
HALF_SIDE_M = 10_000.0
NEAR_RADIUS_M = 500.0
STEP_M = 150.0


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


Move = tuple[str, float, float, float | None]


def beacons(cameras: Sequence[Camera], n: int, rng: np.random.Generator) -> list[Move]:
    """One position for each of n units that carry a camera: a random step from where the camera is."""
    vans = [c for c in cameras if c.unit is not None]
    picked = rng.choice(len(vans), size=min(n, len(vans)), replace=False)
    moves: list[Move] = []
    for i in picked.tolist():
        van = vans[i]
        assert van.unit is not None
        lat, lon = destination(van.lat, van.lon, float(rng.uniform(0, 360)), float(rng.uniform(0, STEP_M)))
        moves.append((van.unit, lat, lon, None))
    return moves


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


def answers(query: Callable[[float, float], object], pts: Sequence[tuple[float, float]]) -> list[object]:
    return [query(lat, lon) for lat, lon in pts]


def rate(query: Callable[[float, float], object], pts: Sequence[tuple[float, float]]) -> float:
    """Queries per CPU second; the answers are dropped as they come, as a caller's would be."""
    start = time.process_time()
    for lat, lon in pts:
        query(lat, lon)
    return len(pts) / (time.process_time() - start)


def moved(cameras: Sequence[Camera], moves: Sequence[Move]) -> list[Camera]:
    """The cameras after the moves, by hand: the scans' view of the city."""
    where = {unit: (lat, lon) for unit, lat, lon, _ in moves}
    return [c.moved(*where[c.unit]) if c.unit in where else c for c in cameras]


def recorrelate_batch(index: CameraIndex, moves: Sequence[Move]) -> list[list[Sighting]]:
    index.move_units(moves)
    return index.seeing_many([m[1] for m in moves], [m[2] for m in moves])


def recorrelate_one_by_one(index: CameraIndex, moves: Sequence[Move]) -> list[list[Sighting]]:
    for unit, lat, lon, heading in moves:
        index.move_unit(unit, lat, lon, heading)
    return [index.seeing(lat, lon) for _, lat, lon, _ in moves]


def cpu_ms(recorrelate: Callable[[CameraIndex, Sequence[Move]], object], index: CameraIndex,
           moves: Sequence[Move]) -> float:
    start = time.process_time()
    recorrelate(index, moves)
    return 1000.0 * (time.process_time() - start)


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=5_000, help="moving units re-correlated in one batch")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scan-queries", type=int, default=500, help="queries timed for the numpy scan")
    parser.add_argument("--python-queries", type=int, default=50, help="queries timed for the Python scan")
    parser.add_argument("--cell-m", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cameras = city_cameras(args.cameras, rng)
    pts = points(args.queries, rng)
    moves = beacons(cameras, args.units, rng)

    start = time.process_time()
    index = CameraIndex(cameras, cell_m=args.cell_m)
    build_s = time.process_time() - start
    scan = NumpyScan(cameras)
    few, fewer = pts[: args.scan_queries], pts[: args.python_queries]
    queries: list[tuple[str, Callable[[float, float], object], Callable[[float, float], object],
                        Callable[[float, float], object]]] = [
        ("seeing()", index.seeing, scan.seeing, lambda la, lo: python_seeing(cameras, la, lo)),
        (f"near({NEAR_RADIUS_M:.0f} m)", lambda la, lo: index.near(la, lo, NEAR_RADIUS_M),
         lambda la, lo: scan.near(la, lo, NEAR_RADIUS_M), lambda la, lo: python_near(cameras, la, lo, NEAR_RADIUS_M)),
    ]

    # Every answer checked once, untimed.
    hits = {}
    for what, idx_q, np_q, py_q in queries:
        got = answers(idx_q, pts)
        if got != answers(np_q, pts) or got[: len(fewer)] != answers(py_q, fewer):
            raise SystemExit(f"{what}: the index and the scans disagree")
        hits[what] = sum(len(a) for a in got if isinstance(a, list)) / len(pts)
        del got  # kept, 2 million answers of near() would make every garbage collection below slower
    after = moved(cameras, moves)
    batch_index = CameraIndex(cameras, cell_m=args.cell_m)
    batch = recorrelate_batch(batch_index, moves)
    if batch != answers(NumpyScan(after).seeing, [(m[1], m[2]) for m in moves]):
        raise SystemExit("re-correlation: the index and the scan disagree")
    if {c.id: c for c in batch_index} != {c.id: c for c in after}:
        raise SystemExit("re-correlation: the cameras are not where their units went")
    unit_index = CameraIndex(cameras, cell_m=args.cell_m)
    if recorrelate_one_by_one(unit_index, moves) != batch:
        raise SystemExit("re-correlation: the batch and unit by unit disagree")
    batch_hits = sum(len(a) for a in batch) / max(1, len(batch))
    del after, batch, batch_index, unit_index

    rates: dict[str, list[list[float]]] = {what: [[], [], []] for what, *_ in queries}
    batch_ms: list[float] = []
    frozen_ms: list[float] = []
    unit_ms: list[float] = []
    for _ in range(args.runs):
        for what, idx_q, np_q, py_q in queries:
            for i, (query, sample) in enumerate(((idx_q, pts), (np_q, few), (py_q, fewer))):
                rates[what][i].append(rate(query, sample))
        # Each run moves the units from where the cameras were at the start, in a fresh index.
        batch_ms.append(cpu_ms(recorrelate_batch, CameraIndex(cameras, cell_m=args.cell_m), moves))
        unit_ms.append(cpu_ms(recorrelate_one_by_one, CameraIndex(cameras, cell_m=args.cell_m), moves))
        # As a service that froze what it loaded at start out of the garbage collector (gc.freeze()): a
        # batch then never pays for a full collection of the 100,000 cameras.
        fresh = CameraIndex(cameras, cell_m=args.cell_m)
        gc.freeze()
        frozen_ms.append(cpu_ms(recorrelate_batch, fresh, moves))
        gc.unfreeze()
        del fresh

    lines = [
        f"camera index: {len(cameras):,} cameras over 20 x 20 km, {len(pts):,} queries ({len(few):,} for the "
        f"numpy scan, {len(fewer):,} for the Python scan), {len(moves):,} moving units, cell {args.cell_m:.0f} m, "
        f"built in {build_s:.2f} s; median (lowest-highest) of {args.runs} runs, CPU time; "
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}",
        "",
        "| what | index | numpy full scan | Python full scan | mean results |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for what, _, _, _ in queries:
        idx_r, np_r, py_r = rates[what]
        lines.append(f"| `{what}`, queries/s | {spread(idx_r, ',.0f')} | {spread(np_r, ',.0f')} | "
                     f"{spread(py_r, ',.0f')} | {hits[what]:.2f} |")
    lines.append(f"| re-correlate {len(moves):,} moving units, ms: `move_units` + `seeing_many` | "
                 f"{spread(batch_ms, ',.1f')} | {len(moves) / statistics.median(rates['seeing()'][1]) * 1000:,.0f} "
                 f"(est.) | {len(moves) / statistics.median(rates['seeing()'][2]) * 1000:,.0f} (est.) | "
                 f"{batch_hits:.2f} |")
    lines.append(f"| the same, what was loaded at start frozen out of the collector (`gc.freeze()`) | "
                 f"{spread(frozen_ms, ',.1f')} | | | |")
    lines.append(f"| the same, unit by unit: `move_unit` + `seeing` each | {spread(unit_ms, ',.1f')} | | | |")
    print("\n".join(lines))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines[2:]) + "\n")


if __name__ == "__main__":
    main()
