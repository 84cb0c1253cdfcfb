"""The demo's case, for ``pttbridge up``: a camera finds a street stall, the case goes to the nearest
officer's radio, he answers, and (headless) a stand-in dispatcher sends him and verifies the case.

    [[demo.detection]] --after_s--> cam/{camera}/event (MQTT)          the bridge opens the case, suggests
    SnapshotServer: GET /{camera}.jpg (stdlib http.server, loopback)   units, fetches the camera's snapshot
    gw/+/event/io (the gateway's dispatch report: the case delivered to fleetsync:100-1004)
        --> DemoOfficer: his answers (a capture) written into his radio's data port, the replay's pty
    bridge/incident/+ --> CaseNarrator (headless): one line per step of the case; assign, then resolve
                          as valid, sent on bridge/cmd as a console would

Everything goes through the real parts: the detection through the bridge's camera feed, the dispatch
through the bridge and the gateway (the announcement spoken by espeak-ng into the channel's transmit
file), the answers through the Kenwood serial driver. :class:`CaseNarrator` is sans-I/O (the clock is
passed in); :class:`Story` is the thin shell with one MQTT client and the timers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bridge.views import IncidentView, PayloadError
from launcher.replay import PtyReplay, load_capture

log = logging.getLogger(__name__)

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
DELIVERED = frozenset({"sent", "acked"})


class SnapshotServer:
    """The demo cameras' snapshots over HTTP on a free loopback port: ``GET /{name}`` gives that file."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.files = {name: path.read_bytes() for name, path in files.items()}
        types = {name: CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
                 for name, path in files.items()}
        served = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = served.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404, "no such snapshot")
                    return
                self.send_response(200)
                self.send_header("Content-Type", types[self.path.lstrip("/")])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("snapshot server: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-snapshots", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops serving (if it ever started) and closes the socket."""
        if self._thread.ident is not None:  # shutdown() waits for serve_forever, which must have run
            self._server.shutdown()
            self._thread.join(2)
        self._server.server_close()


def detection_payload(label: str, score: float, lat: float, lon: float, snapshot_url: str | None,
                      now: datetime) -> bytes:
    """A camera's detection in the generic feed's form (bridge/cameras/feeds.py), seen ``now``."""
    body: dict[str, Any] = {"label": label, "score": score, "time": now.isoformat().replace("+00:00", "Z"),
                            "position": {"lat": lat, "lon": lon}}
    if snapshot_url is not None:
        body["snapshot_url"] = snapshot_url
    return json.dumps(body).encode()


def delivered_to(detail: Mapping[str, Any]) -> tuple[int, str] | None:
    """The case and unit of a gateway's dispatch report that says the radio was told, else None."""
    if detail.get("protocol") != "tx" or detail.get("command") != "dispatch" or detail.get("result") not in DELIVERED:
        return None
    case, unit = detail.get("case"), detail.get("unit")
    if not isinstance(case, int) or not isinstance(unit, str) or detail.get("path") == "mdc_call_alert":
        return None  # a page says nothing of the case: the officer waits for the announcement after it
    return case, unit


class DemoOfficer:
    """An officer who answers a case from his radio once it has been told to him: his capture is written
    once into his radio's data port (the replay's pseudo-terminal), paced as recorded."""

    def __init__(self, unit: str, replay: PtyReplay, answers: Path, *, speed: float = 1.0) -> None:
        self.unit, self.replay, self.speed = unit, replay, speed
        self.bursts = load_capture(answers)
        self.answering: set[int] = set()  # cases he has answered (a dispatch reported twice is one)
        self._stop = threading.Event()

    def told(self, case: int) -> None:
        if case in self.answering:
            return
        self.answering.add(case)
        threading.Thread(target=self._answer, name=f"officer:{self.unit}", daemon=True).start()

    def _answer(self) -> None:
        for burst in self.bursts:
            if self._stop.wait(burst.after_s / self.speed):
                return
            try:
                self.replay.inject(burst.data)
            except OSError as exc:
                log.warning("demo officer %s: his radio's port is gone: %s", self.unit, exc)
                return

    def stop(self) -> None:
        self._stop.set()


def _minutes(start: datetime, end: datetime | None) -> str:
    return "no limit" if end is None else f"{round((end - start).total_seconds() / 60)} min"


@dataclass
class _Case:
    states: dict[str, str] = field(default_factory=dict)  # department -> part state last seen
    suggested: bool = False
    dispatch_due: float | None = None  # monotonic time to send the unit
    unit: str | None = None
    told: bool = False
    resolving: bool = False
    done: bool = False


class CaseNarrator:
    """Headless, the dispatcher's part in the demo: each step of a camera's case as one line, the suggested
    unit sent ``dispatch_after_s`` after the case opened, and the case resolved as valid once handled.

    Sans-I/O: :meth:`incident` and :meth:`report` take what came on the broker and return lines to print;
    :meth:`due` returns the commands to send at ``now``."""

    STEPS = ("accepted", "arrived", "handled")
    FINISHED = frozenset({"handled", "transferred", "closed"})

    def __init__(self, operator: str, *, dispatch_after_s: float, announcements: Mapping[str, Path]) -> None:
        self.operator = operator
        self.dispatch_after_s = dispatch_after_s
        self.announcements = announcements  # channel -> the file its transmissions go to
        self.cases: dict[int, _Case] = {}
        self._commands: list[dict[str, Any]] = []

    def incident(self, view: IncidentView, now: float) -> list[str]:
        """A case as ``bridge/incident/{id}`` says it is now."""
        if view.source != "camera" or not view.parts:
            return []  # radio emergencies and the rest are the console's (or nobody's, headless)
        lines: list[str] = []
        case = self.cases.get(view.id)
        if case is None:
            case = self.cases[view.id] = _Case()
            where = f" at {view.lat:.5f}, {view.lon:.5f}" if view.lat is not None and view.lon is not None else ""
            limits = "; ".join(
                f"{p.department} to accept within {_minutes(p.opened_at, p.accept_due)}, arrive within "
                f"{_minutes(p.opened_at, p.arrive_due)}, handle within {_minutes(p.opened_at, p.resolve_due)}"
                for p in view.parts)
            lines.append(f"case {view.id} opened: {view.category} seen by camera {view.camera}{where}; {limits}")
        if view.suggested and not case.suggested:
            case.suggested = True
            case.unit = str(view.suggested[0].get("unit"))
            case.dispatch_due = now + self.dispatch_after_s
            names = ", ".join(f"{s.get('unit')} ({s.get('distance_m')} m)" for s in view.suggested)
            lines.append(f"case {view.id} suggested: {names}")
        for p in view.parts:
            before = case.states.get(p.department, "new")
            case.states[p.department] = p.state
            if p.state == before or p.state not in self.STEPS:
                continue
            first = self.STEPS.index(before) + 1 if before in self.STEPS else 0
            for step in self.STEPS[first:self.STEPS.index(p.state) + 1]:  # a later step implies the earlier
                at = getattr(p, f"{step}_at")
                took = (f" {(at - p.dispatched_at).total_seconds():.0f} s after dispatch"
                        if at is not None and p.dispatched_at is not None else "")
                lines.append(f"case {view.id} {step}: {p.unit} ({p.department}){took}")
        if not case.resolving and view.state != "resolved" and all(p.state in self.FINISHED for p in view.parts):
            case.resolving = True
            self._commands.append({"action": "resolve", "incident": view.id, "resolution": "handled",
                                   "verdict": "valid", "reason": "a street stall, as the snapshot shows; moved on",
                                   "operator": self.operator})
        if view.state == "resolved" and not case.done:
            case.done = True
            lines.append(f"case {view.id} verified: {view.verdict or 'no verdict'} ({view.resolution}, "
                         f"by {view.resolved_by})")
        return lines

    def report(self, detail: Mapping[str, Any]) -> list[str]:
        """A gateway's ``io`` report of a dispatch path."""
        told = delivered_to(detail)
        if told is None or told[0] not in self.cases or self.cases[told[0]].told:
            return []
        self.cases[told[0]].told = True
        channel = str(detail.get("channel"))
        where = self.announcements.get(channel)
        audio_s = detail.get("audio_s")
        said = (f"; announcement ({audio_s:.1f} s of speech) in {where}" if detail.get("path") == "announcement"
                and where is not None and isinstance(audio_s, int | float) else "")
        return [f"case {told[0]} dispatched: {told[1]} told through {channel} by {detail.get('path')}"
                f" ({detail.get('result')}){said}"]

    def due(self, now: float) -> list[dict[str, Any]]:
        """The commands to send now: the suggested unit once its time has come, a resolve once handled."""
        out, self._commands = self._commands, []
        for case_id, case in self.cases.items():
            if case.dispatch_due is not None and now >= case.dispatch_due and case.unit is not None:
                case.dispatch_due = None
                out.append({"action": "assign", "incident": case_id, "unit": case.unit, "operator": self.operator})
        return out


class Story:
    """The shell around the demo's case: the snapshot server, the camera's detections, the officers, and
    (headless) the narrator, over one MQTT client."""

    def __init__(self, config: Any, replays: Mapping[str, PtyReplay], snapshots: SnapshotServer, *, speed: float,
                 headless: bool, operator: str, say: Callable[[str], None]) -> None:
        from config.mqtt import make_client, topic

        self.config, self.speed, self.say = config, speed, say
        self._topic: Callable[..., str] = partial(topic, config.mqtt)
        self.snapshots = snapshots
        self.officers = {o.unit: DemoOfficer(o.unit, replays[o.port], o.answers, speed=speed)
                         for o in config.demo.officer if o.port in replays}
        announcements = {c.name: Path(c.transmit.device[4:].replace("{data_dir}", str(config.data_dir)))
                         for c in config.channels if c.transmit is not None and c.transmit.device.startswith("wav:")}
        self.narrator = CaseNarrator(operator, dispatch_after_s=3.0 / speed,
                                     announcements=announcements) if headless else None
        self.announcements = announcements
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.client = make_client(config.mqtt, f"pttbridge-up-story-{os.getpid()}")
        self.client.on_connect = self._connected
        self.client.on_message = self._message

    def snapshot_url(self, camera: str) -> str | None:
        return self.snapshots.url(f"{camera}.jpg") if f"{camera}.jpg" in self.snapshots.files else None

    def start(self) -> None:
        self.client.connect(self.config.mqtt.host, self.config.mqtt.port)
        self.client.loop_start()
        for detection in self.config.demo.detection:
            self._later(detection.after_s / self.speed, partial(self._detect, detection))
        if self.narrator is not None:
            self._threads.append(threading.Thread(target=self._dispatcher, name="demo-dispatcher", daemon=True))
            self._threads[-1].start()

    def stop(self) -> None:
        self._stop.set()
        for officer in self.officers.values():
            officer.stop()
        for thread in self._threads:
            thread.join(2)
        self.client.loop_stop()
        self.client.disconnect()

    def _later(self, delay: float, what: Callable[[], None]) -> None:
        def run() -> None:
            if not self._stop.wait(delay):
                what()
        thread = threading.Thread(target=run, name="demo-timer", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _detect(self, d: Any) -> None:
        payload = detection_payload(d.label, d.score, d.lat, d.lon, self.snapshot_url(d.camera), datetime.now(UTC))
        self.client.publish(self._topic("cam", d.camera, "event"), payload, qos=1)
        log.info("demo camera %s: %s (%.2f) at %.5f, %.5f", d.camera, d.label, d.score, d.lat, d.lon)

    def _connected(self, client: Any, *_: Any) -> None:
        topics = [(self._topic("gw", "+", "event", "io"), 1)]  # the gateways' dispatch reports: the officers'
        if self.narrator is not None:
            topics.append((self._topic("bridge", "incident", "+"), 1))
        client.subscribe(topics)

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            body = json.loads(bytes(message.payload))
        except ValueError:
            return  # not ours to judge: the bridge logs what it refuses
        if not isinstance(body, dict):
            return
        lines: list[str] = []
        if message.topic.endswith("/event/io"):
            detail = body.get("detail")
            if not isinstance(detail, dict):
                return
            told = delivered_to(detail)
            if told is not None and told[1] in self.officers:
                self.officers[told[1]].told(told[0])
            if self.narrator is not None:
                with self._lock:
                    lines = self.narrator.report(detail)
        elif self.narrator is not None:
            try:
                view = IncidentView.from_json(body)
            except PayloadError as exc:
                log.warning("demo dispatcher: not an incident on %s: %s", message.topic, exc)
                return
            with self._lock:
                lines = self.narrator.incident(view, time.monotonic())
        for line in lines:
            self.say(line)

    def _dispatcher(self) -> None:
        assert self.narrator is not None
        while not self._stop.wait(0.2):
            with self._lock:
                commands = self.narrator.due(time.monotonic())
            for command in commands:
                self.client.publish(self._topic("bridge", "cmd"), json.dumps(command).encode(), qos=1)
