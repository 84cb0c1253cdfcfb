"""Console benchmark: is the dispatcher's screen still responsive with 1,000 units moving and 100 incident
updates a second?

    python -m bench.console_bench [--seconds 60] [--quick]

A separate process (so that it does not share the console's interpreter) publishes to a real Mosquitto
what the bridge would: 1,000 retained ``bridge/unit/{unit}`` states at once, then one unit moving every
10 ms (each unit every 10 s) and one ``bridge/incident/{id}`` update every 10 ms (about 200 open
incidents: new alerts on them, and every 50th update resolves the oldest and opens another, with its
toast). The console runs headless (``run_test``, 160x48) on an empty SQLite database, as a dispatcher's
would, with its flashing marker and its 1 s clock.

Measured, in the console's own event loop:

    frame time      each screen update (Textual's ``Screen._on_timer_update``: layout, the widgets'
                    lines, compositing) plus writing the frame as a terminal would get it (ANSI text)
    news -> screen  from a unit or incident message leaving paho's thread to the end of the first frame
                    drawn after the console handled it
    full GCs        the garbage collector's full collections in the console's process: how many, and how
                    long each paused it (wall clock, and CPU time: on a shared machine the wall clock also
                    counts the other programs running meanwhile)
    input latency   once a second a key (``u`` / ``i``: focus the units, the alerts) is posted to the app
                    as the terminal driver posts it, timed to the end of the first frame drawn with the
                    focus moved. (``pilot.press`` waits for the app to be idle, which a console under this
                    load never is: it would time the wait, not the key.)

Writes bench/out/console.md and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import gc
import json
import math
import os
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from support import Mosquitto  # noqa: E402
from textual import events  # noqa: E402
from textual.message import Message  # noqa: E402
from textual.screen import Screen  # noqa: E402

from bridge.store import Store  # noqa: E402
from bridge.views import IncidentView, UnitView  # noqa: E402
from config.schema import parse_config  # noqa: E402
from console.app import DispatchApp  # noqa: E402
from console.messages import IncidentChanged, UnitChanged  # noqa: E402
from gateway.events import Position  # noqa: E402

OUT = ROOT / "bench" / "out"
UNITS = 1000
OPEN = 200
TICK_S = 0.01  # one unit and one incident message per tick: 100/s each
CHURN = 50  # every 50th incident update resolves the oldest open one and opens another
CENTRE = (30.21, 120.21)


# --- the publisher (its own process) -----------------------------------------------------------


def _unit(n: int, t: datetime, step: int) -> UnitView:
    lat = CENTRE[0] + ((n % 40) - 20) * 0.002 + step * 1e-5
    lon = CENTRE[1] + ((n // 40) - 12) * 0.002 + step * 1e-5
    gateway = f"gw{n % 4 + 1}"
    return UnitView(unit=f"mdc:{1000 + n}", alias=f"Car {n}" if n % 3 == 0 else None,
                    position=Position(lat=lat, lon=lon, speed_mps=8.0, course_deg=float(step * 7 % 360), fix_time=t,
                                      source="gps"),
                    last_heard=t, last_kind="beacon", last_channel="patrol-1", last_gateway=gateway,
                    last_event_id=f"u{n}-{step}", gateway_online=True)


def _incident(i: int, t: datetime, count: int, state: str = "new") -> IncidentView:
    unit = f"mdc:{1000 + i % UNITS}"
    return IncidentView(id=i, state=state, resolution="handled" if state == "resolved" else None, unit=unit,
                        alias=None, gateway=f"gw{i % 4 + 1}", channel="patrol-1", label="emergency",
                        opened_at=t - timedelta(seconds=count), acknowledged_at=None, acknowledged_by=None,
                        resolved_at=t if state == "resolved" else None, resolved_by=None, first_event_id=f"a{i}",
                        last_event_id=f"a{i}-{count}", last_alert_at=t, alert_count=count,
                        lat=CENTRE[0] + (i % 30) * 0.001, lon=CENTRE[1] + (i % 17) * 0.001, position_time=t,
                        updated_at=t)


def publish(url: str, prefix: str, seconds: float) -> None:
    """Publish the load, then print how many messages were sent."""
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bridge-{os.getpid()}")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    now = datetime.now(UTC)
    for n in range(UNITS):  # every unit there at once, retained, as a console starting up gets them
        client.publish(f"{prefix}/bridge/unit/mdc:{1000 + n}", json.dumps(_unit(n, now, 0).to_json()), qos=1,
                       retain=True)
    counts: dict[int, int] = {}
    for i in range(1, OPEN + 1):
        counts[i] = 1
        client.publish(f"{prefix}/bridge/incident/{i}", json.dumps(_incident(i, now, 1).to_json("opened")), qos=1)
    next_id = OPEN + 1
    sent = UNITS + OPEN
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < seconds:
        tick += 1
        now = datetime.now(UTC)
        n = tick % UNITS
        client.publish(f"{prefix}/bridge/unit/mdc:{1000 + n}", json.dumps(_unit(n, now, tick).to_json()), qos=1,
                       retain=True)
        if tick % CHURN == 0:  # the oldest resolved, a new one opened
            oldest = min(counts)
            c = counts.pop(oldest)
            body = _incident(oldest, now, c, "resolved").to_json("resolved")
            client.publish(f"{prefix}/bridge/incident/{oldest}", json.dumps(body), qos=1)
            counts[next_id] = 1
            client.publish(f"{prefix}/bridge/incident/{next_id}",
                           json.dumps(_incident(next_id, now, 1).to_json("opened")), qos=1)
            next_id += 1
            sent += 3
        else:
            i = list(counts)[tick % len(counts)]
            counts[i] += 1
            client.publish(f"{prefix}/bridge/incident/{i}", json.dumps(_incident(i, now, counts[i]).to_json("alert")),
                           qos=1)
            sent += 2
        delay = start + tick * TICK_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    client.loop_stop()
    client.disconnect()
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}))


# --- the console, instrumented ------------------------------------------------------------------


class Samples:
    """Durations (seconds), kept as counts in logarithmic bins 0.5% wide from 10 µs up, so that the bench's
    own memory does not grow with the run: lists of floats (40 bytes each, ~240 a second here: every message
    and every frame) grew by about 0.55 MiB a minute, which the RSS rows counted as the console's.
    A percentile is its bin's upper edge, at most 0.5% above the exact value (and never above the max)."""

    LOW = 1e-5
    RATIO = 1.005
    BINS = 4000  # up to 1e-5 * 1.005**4000 s: hours

    def __init__(self) -> None:
        self.counts = array("Q", bytes(8 * self.BINS))
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def __len__(self) -> int:
        return self.n

    def add(self, seconds: float) -> None:
        i = 0 if seconds <= self.LOW else min(self.BINS - 1, 1 + int(math.log(seconds / self.LOW, self.RATIO)))
        self.counts[i] += 1
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def pct(self, q: float) -> float:
        """As :func:`pct` of the sorted values: the one at rank ``int(n * q)``."""
        if not self.n:
            return float("nan")
        rank, seen = min(self.n - 1, int(self.n * q)), 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen > rank:
                return min(self.LOW * self.RATIO**i, self.max)
        return self.max

    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")


@dataclass
class Probe:
    frames: Samples = field(default_factory=Samples)  # seconds per screen update
    layouts: Samples = field(default_factory=Samples)  # those of them that laid the screen out again
    news: Samples = field(default_factory=Samples)  # message out of paho's thread -> frame drawn
    keys: Samples = field(default_factory=Samples)  # key posted -> frame drawn with its effect
    arrived: dict[int, float] = field(default_factory=dict)  # id(message) -> perf_counter at post
    handled: list[float] = field(default_factory=list)  # arrival times of messages handled since last frame
    key_at: float | None = None
    key_target: Any = None
    received = 0
    profile: cProfile.Profile | None = None
    slow: list[cProfile.Profile] = field(default_factory=list)
    full_gcs: list[tuple[float, float]] = field(default_factory=list)  # (wall, CPU) seconds of each
    rss: list[float] = field(default_factory=list)  # the process's resident memory (MiB), once a second
    # Once a minute, what the RSS is made of (MiB): Python's small objects and the arenas they are in
    # (pymalloc), what C's malloc has handed out and the free memory it keeps. Objects flat while the RSS
    # grows: freed memory not given back (fragmentation), not something held.
    heap: list[Heap] = field(default_factory=list)
    traced: Any = None  # --memory: the tracemalloc snapshot taken 10 s in
    types: Counter[str] = field(default_factory=Counter)  # --memory: the objects' types 10 s in
    _gc_start: tuple[float, float] = (0.0, 0.0)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_start = (time.perf_counter(), time.thread_time())
        else:
            self.full_gcs.append((time.perf_counter() - self._gc_start[0], time.thread_time() - self._gc_start[1]))


class BenchApp(DispatchApp):
    probe: Probe

    def on_unit_changed(self, message: UnitChanged) -> None:
        self._note(message)

    def on_incident_changed(self, message: IncidentChanged) -> None:
        self._note(message)

    def _note(self, message: Message) -> None:
        t = self.probe.arrived.pop(id(message), None)
        if t is not None:
            self.probe.handled.append(t)


def instrument(app: BenchApp) -> Probe:
    probe = app.probe = Probe()
    post = app.post_message

    def stamped(message: Message) -> bool:  # runs on paho's thread, as the link's callback
        if isinstance(message, UnitChanged | IncidentChanged):
            probe.arrived[id(message)] = time.perf_counter()
            probe.received += 1
        return post(message)

    app.link._post = stamped
    original = Screen._on_timer_update
    display = DispatchApp._display

    def timed(screen: Screen[Any]) -> None:
        layout = screen._layout_required
        t0 = time.perf_counter()
        if probe.profile is not None:  # frames only, and only the slow ones: what the p99 is made of
            profile = cProfile.Profile()
            profile.runcall(original, screen)
            if time.perf_counter() - t0 > 0.1:
                probe.slow.append(profile)
        else:
            original(screen)
        t1 = time.perf_counter()
        probe.frames.add(t1 - t0)
        if layout:
            probe.layouts.add(t1 - t0)
        for t in probe.handled:
            probe.news.add(t1 - t)
        probe.handled.clear()
        if probe.key_at is not None and screen.app.focused is probe.key_target:
            probe.keys.add(t1 - probe.key_at)
            probe.key_at = None

    def written(self: DispatchApp, screen: Screen[Any], renderable: Any) -> None:
        # Headless Textual skips the terminal write; a real terminal gets the frame as ANSI text.
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(self.console)
        display(self, screen, renderable)

    Screen._on_timer_update = timed  # type: ignore[method-assign, assignment]
    DispatchApp._display = written  # type: ignore[method-assign, assignment]
    return probe


def rss_mib() -> float:
    """This process's resident set, from /proc (statm's second field, in pages)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass(frozen=True)
class Heap:
    objects: float  # pymalloc's allocated blocks
    arenas: float  # pymalloc's arenas (what those blocks keep mapped)
    malloc: float  # glibc malloc: in use (NaN where there is no mallinfo2)
    malloc_free: float  # glibc malloc: free but kept by the process


def heap() -> Heap:
    """Python's own count (``sys._debugmallocstats``, written to the C stderr, read back here) and glibc's
    ``mallinfo2``."""
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        stats = f.read().decode(errors="replace")

    def number(label: str) -> float:
        found = re.search(rf"^{re.escape(label)}\s*=\s*([\d,]+)", stats, re.M)
        return int(found[1].replace(",", "")) / 2**20 if found else float("nan")

    objects, arenas = number("# bytes in allocated blocks"), number("Total")
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return Heap(objects, arenas, float("nan"), float("nan"))
    names = ["arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
             "keepcost"]

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in names]

    mallinfo2.restype = Mallinfo2
    info = mallinfo2()
    return Heap(objects, arenas, float(info.uordblks + info.hblkhd) / 2**20, float(info.fordblks) / 2**20)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def drive(app: BenchApp, seconds: float, publisher: subprocess.Popen[str], memory: bool = False
                ) -> tuple[float, int]:
    async with app.run_test(size=(160, 48)) as pilot:
        start = time.monotonic()
        while not app.broker and time.monotonic() - start < 10:
            await pilot.pause(0.05)
        publisher_start = time.monotonic()
        keys = [("u", app.dispatch.units), ("i", app.dispatch.queue)]
        k = 0
        while publisher.poll() is None and time.monotonic() - publisher_start < seconds + 30:
            await asyncio.sleep(1.0)
            app.probe.rss.append(rss_mib())
            if len(app.probe.rss) % 60 == 0:
                app.probe.heap.append(heap())
            if memory and len(app.probe.rss) == 10:
                app.probe.types = Counter(type(o).__name__ for o in gc.get_objects())
                tracemalloc.start(8)
                app.probe.traced = tracemalloc.take_snapshot()
            if app.probe.key_at is not None:
                continue  # the last key has not shown yet: counted when it does
            key, target = keys[k % 2]
            k += 1
            app.probe.key_target = target
            app.probe.key_at = time.perf_counter()
            app.post_message(events.Key(key, key))
        await pilot.pause(1.0)  # what is still queued is handled and drawn
        if memory and app.probe.traced is not None:
            gc.collect()
            now = tracemalloc.take_snapshot()
            types = Counter(type(o).__name__ for o in gc.get_objects())
            types.subtract(app.probe.types)
            print("objects the collector tracks, more than 10 s in:",
                  ", ".join(f"{n} {k}" for k, n in types.most_common(15)), file=sys.stderr)
            files = now.compare_to(app.probe.traced, "filename")
            where = ", ".join(f"{s.traceback[0].filename.rsplit('/', 2)[-1]} {s.size_diff / 2**20:+.2f}"
                              for s in files[:10])
            print(f"Python's memory grew {sum(s.size_diff for s in files) / 2**20:+.2f} MiB (tracemalloc's own not "
                  f"counted), allocated in: {where}", file=sys.stderr)
            grown = now.compare_to(app.probe.traced, "traceback")
            for stat in grown[:12]:
                print(f"{stat.size_diff / 2**20:+.2f} MiB in {stat.count_diff:+,} blocks", file=sys.stderr)
                for line in stat.traceback.format()[-8:]:
                    print("   ", line, file=sys.stderr)
        return time.monotonic() - publisher_start, len(app.state.units)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    ap.add_argument("--quick", action="store_true", help="15 s, for a smoke run")
    ap.add_argument("--out", type=Path, default=OUT / "console.md", help="the table's file (default %(default)s)")
    ap.add_argument("--profile", action="store_true", help="print where the frames' time goes (cProfile)")
    ap.add_argument("--memory", action="store_true",
                    help="print where memory grew from 10 s in to the end (tracemalloc: slows the console)")
    ap.add_argument("--publish", nargs=3, metavar=("URL", "PREFIX", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish(args.publish[0], args.publish[1], float(args.publish[2]))
        return
    seconds = 15.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work, "max_queued_messages 0\nmax_inflight_messages 0\n", persistent=False)
        broker.start()
        url = f"sqlite:///{work / 'bridge.sqlite'}"
        Store.open(url).close()  # the schema, as the bridge creates it
        config = parse_config({"data_dir": str(work / "data"), "mqtt": {"url": broker.url},
                               "bridge": {"database_url": url}})
        app = BenchApp(config, "bench")
        probe = instrument(app)
        if args.profile:
            probe.profile = cProfile.Profile()
        publisher = subprocess.Popen(
            [sys.executable, "-m", "bench.console_bench", "--publish", broker.url, config.mqtt.prefix, str(seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            print(f"... {UNITS} units, 100 unit moves/s and 100 incident updates/s for {seconds:.0f} s",
                  file=sys.stderr, flush=True)
            gc.callbacks.append(probe.on_gc)
            try:
                elapsed, units = asyncio.run(drive(app, seconds, publisher, args.memory))
            finally:
                gc.callbacks.remove(probe.on_gc)
            out, _ = publisher.communicate(timeout=30)
        finally:
            if publisher.poll() is None:
                publisher.kill()
            broker.stop()
    sent = json.loads(out.strip().splitlines()[-1])["sent"]
    ms = 1e3
    frames = probe.frames
    gc_wall, gc_cpu = [w for w, _ in probe.full_gcs], [c for _, c in probe.full_gcs]
    rows = [
        ("frame time (screen update + ANSI frame)",
         f"p50 {frames.pct(.5) * ms:.1f} ms, p99 {frames.pct(.99) * ms:.1f} ms, max {frames.max * ms:.0f} ms",
         f"{len(frames) / elapsed:.0f} frames/s"),
        ("of which frames laying the screen out again (rows added or removed, toasts)",
         f"p50 {probe.layouts.pct(.5) * ms:.1f} ms, p99 {probe.layouts.pct(.99) * ms:.1f} ms",
         f"{len(probe.layouts) / elapsed:.1f} /s"),
        ("input latency (key -> frame with its effect, 1/s)",
         f"p50 {probe.keys.pct(.5) * ms:.0f} ms, p99 {probe.keys.pct(.99) * ms:.0f} ms", f"{len(probe.keys)} keys"),
        ("news -> screen (message -> frame drawn)",
         f"p50 {probe.news.pct(.5) * ms:.0f} ms, p99 {probe.news.pct(.99) * ms:.0f} ms",
         f"{len(probe.news):,} messages"),
        ("full garbage collections (pause: wall clock / CPU)",
         f"p50 {pct(gc_wall, .5) * ms:.0f} / {pct(gc_cpu, .5) * ms:.0f} ms, "
         f"max {max(gc_wall, default=0) * ms:.0f} / {max(gc_cpu, default=0) * ms:.0f} ms",
         f"{len(gc_wall) / elapsed * 60:.0f} a minute"),
        ("messages received / published", f"{probe.received:,} / {sent:,}", f"{units:,} units in the table"),
    ]
    if len(probe.rss) > 20:  # the first 10 s fill the tables: memory from then on should stay flat
        settled, last = probe.rss[10], probe.rss[-1]
        rows.append(("resident memory (RSS) after 10 s / at the end / highest",
                     f"{settled:.0f} / {last:.0f} / {max(probe.rss):.0f} MiB",
                     f"{(last - settled) / max(1.0, (len(probe.rss) - 11) / 60):+.1f} MiB a minute"))
        if len(probe.rss) > 120:  # does it level off? each minute's RSS, to tell a leak from caches filling
            half = len(probe.rss) // 2  # caches fill in the first minutes: is it flat after?
            rows.append(("RSS at each minute", " ".join(f"{m:.0f}" for m in probe.rss[59::60]) + " MiB",
                         f"{(probe.rss[-1] - probe.rss[half]) / ((len(probe.rss) - 1 - half) / 60):+.2f} MiB a "
                         f"minute over the second half"))
            rows.append(("of it, Python's objects / its arenas, at each minute",
                         " ".join(f"{h.objects:.1f}/{h.arenas:.0f}" for h in probe.heap), "MiB"))
            rows.append(("of it, C malloc in use / free kept, at each minute",
                         " ".join(f"{h.malloc:.1f}/{h.malloc_free:.1f}" for h in probe.heap), "MiB"))

    table = [f"Console under load: {UNITS:,} units (each moving every 10 s: 100 unit states/s) and 100 incident "
             f"updates/s (about {OPEN} open, 2 opened and 2 resolved per second), {seconds:.0f} s, headless "
             f"160x48, real Mosquitto, publisher in its own process. Machine: {os.cpu_count()} cores shared "
             f"({platform.processor() or platform.machine()}), Python {platform.python_version()}.", "",
             "| what | measured | count |", "| --- | --- | --- |"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if frames:
        table += ["", f"Frame time mean {frames.mean() * ms:.1f} ms over {len(frames):,} frames."]
    if probe.profile is not None:  # a profiled run is slower: its numbers are not the bench's
        if probe.slow:
            stats = pstats.Stats(probe.slow[0], stream=sys.stderr)
            for more in probe.slow[1:]:
                stats.add(more)
            print(f"{len(probe.slow)} frames over 100 ms:", file=sys.stderr)
            stats.sort_stats("cumulative").print_stats(60)
        print("\n".join(table))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
