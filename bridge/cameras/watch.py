"""The bridge's cameras at work on the ingest thread: detections stored (a street event of a configured
category opens an incident, with the nearest units suggested), every incident with a position given the
cameras that see it and the detections near it in place and time (again when a better position arrives),
evidence asked for and taken in when the fetcher's workers bring it, and Frigate's snapshots and
tracked-object updates (bridge/cameras/frigate.py).

No MQTT here and no threads: what is to be fetched is returned as :class:`FetchEvidence` actions, and what
the workers bring is put on :attr:`CameraWatch.arrived` by them and taken from it by :meth:`take_evidence`.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from bridge.actions import Changes, FetchEvidence
from bridge.cameras.correlation import CameraStore, relevance
from bridge.cameras.evidence import Evidence, EvidenceFailure, EvidenceRequest
from bridge.cameras.feeds import Detection, FeedError, UnknownCamera, parse_frigate, parse_generic
from bridge.cameras.frigate import FrigateIntake
from bridge.cameras.geometry import Sighting, haversine_m
from bridge.cameras.index import CameraIndex
from bridge.cameras.registry import CameraRegistry, to_camera
from bridge.store import Store
from bridge.views import Change, IncidentView
from config.schema import CameraSettings, Config
from gateway.events import printable

log = logging.getLogger(__name__)

HEX_SHOWN = 64  # bytes of an offending payload shown in the log
SHOWN = 200  # characters of received text in a log line


def hex_of(payload: bytes) -> str:
    shown = payload[:HEX_SHOWN].hex(" ")
    return f"{len(payload)} bytes: {shown}{' ...' if len(payload) > HEX_SHOWN else ''}"


class CameraWatch:
    """Cameras, detections and evidence for incidents."""

    def __init__(self, store: Store, cameras: CameraIndex, settings: CameraSettings, counts: Counter[str],
                 *, fetching: bool) -> None:
        self.store = store
        self.settings = settings
        self.counts = counts
        self.cameras = cameras
        self.camera_store = CameraStore(store.engine)
        self.frigate = FrigateIntake(store, self.camera_store, cameras, settings, counts)
        #: Whether evidence is fetched (the shell runs the workers that fetch it).
        self.fetching = fetching
        #: Evidence the fetcher's workers have brought (or failed to), waiting for the ingest thread.
        self.arrived: queue.SimpleQueue[Evidence | EvidenceFailure] = queue.SimpleQueue()

    @classmethod
    def open(cls, store: Store, config: Config, counts: Counter[str]) -> CameraWatch:
        """The registry brought in step with the configuration, and every registered camera indexed."""
        registry = CameraRegistry(store.engine)
        if config.cameras:
            put, removed = registry.sync_config(config.cameras)
            log.info("cameras: %d from the configuration%s", put, f", {removed} withdrawn" if removed else "")
        cameras = CameraIndex(to_camera(c) for c, _ in registry.all())
        settings = config.bridge.cameras
        return cls(store, cameras, settings, counts, fetching=bool(settings.evidence and len(cameras)))

    def detection(self, camera: str | None, topic: str, payload: bytes, changes: Changes) -> None:
        """A camera's detection (``camera`` None: Frigate's events): stored; a street event of a configured
        category opens an incident."""
        settings = self.settings
        try:
            if camera is None:
                d: Detection | None = parse_frigate(payload, cameras=settings.frigate_cameras,
                                                    frigate_url=settings.frigate_url,
                                                    unit_system=settings.frigate_unit_system)
                if d is None:
                    return  # Frigate's own false positive
            else:
                d = parse_generic(camera, payload)
            if d.camera not in self.cameras:
                raise UnknownCamera("camera", d.camera)
        except UnknownCamera as exc:
            self.counts["camera_unknown"] += 1
            log.warning("detection from a camera not in the registry ignored: %s [%s]", printable(str(exc), SHOWN),
                        hex_of(payload))
            return
        except FeedError as exc:
            self.counts["camera_rejected"] += 1
            log.warning("camera event on %s rejected: %s [%s]", printable(topic, SHOWN), printable(str(exc), SHOWN),
                        hex_of(payload))
            return
        stored = self.camera_store.store_detection(d, self.cameras.get(d.camera))
        view, new = stored.view, stored.new
        self.counts["detections"] += 1
        if stored.revised:  # a name or plate recognised since: news for its incidents
            changes.incidents.extend(self.frigate.showing(view.id))
        if new and view.lat is not None and view.lon is not None:  # incidents nearby, opened before it came
            for incident in self.store.open_incidents_near(view.lat, view.lon, view.time, near_m=settings.near_m,
                                                           window_s=settings.window_s):
                assert incident.lat is not None and incident.lon is not None
                score = relevance((view.time - incident.last_alert_at).total_seconds(),
                                  haversine_m(incident.lat, incident.lon, view.lat, view.lon),
                                  settings.window_s, settings.near_m)
                if self.camera_store.attach_detection(incident.id, view, score):
                    changes.incidents.append((incident, Change.DETECTION))
        rule = settings.categories.get(d.category or "")
        if not new or rule is None or not rule.opens_incidents or (d.score or 0.0) < rule.min_score:
            return
        assert d.category is not None
        incident, change = self.store.open_street_incident(d.category, d.camera, d.label, d.time, view.lat, view.lon,
                                                           view.id)
        if change == Change.OPENED and incident.lat is not None and incident.lon is not None:
            units = self.store.nearest_units(incident.lat, incident.lon, limit=settings.suggest_units,
                                             max_age_s=settings.unit_age_s)
            incident = self.store.suggest(incident.id, units) or incident
        log.info("incident %d %s: %s at %s", incident.id, change, printable(d.category, 80), printable(d.camera, 80))
        changes.incidents.append((incident, change))

    def frigate_message(self, topic: str, payload: bytes, retained: bool, now: datetime, changes: Changes) -> None:
        """Frigate's snapshot or tracked-object update: evidence of the incidents its camera sees, or what its
        recognition adds to a detection."""
        changes.incidents.extend(self.frigate.take(topic, payload, retained=retained, now=now))

    def correlate(self, changes: Changes) -> list[FetchEvidence]:
        """Cameras that see each new or moved incident, and the detections near it; evidence asked for.
        Vehicle cameras go where their unit goes, and the cameras that see the incidents come from the index,
        each in one call for the whole batch (a batch of beacons may move thousands of units)."""
        self.cameras.move_units([(u.unit, p.lat, p.lon, p.course_deg) for u in changes.units.values()
                                 if (p := u.position) is not None])
        if not len(self.cameras):
            return []
        done: dict[int, tuple[IncidentView, str]] = {}
        for incident, change in changes.incidents:
            if change in (Change.OPENED, Change.ALERT, Change.POSITION) and incident.id not in done:
                done[incident.id] = (incident, change)
        located = [(i.id, i.lat, i.lon) for i, _ in done.values() if i.lat is not None and i.lon is not None]
        seen = self.cameras.seeing_many([lat for _, lat, _ in located], [lon for _, _, lon in located])
        seeing = {incident_id: s for (incident_id, _, _), s in zip(located, seen, strict=True)}
        out: list[FetchEvidence] = []
        for incident, change in done.values():
            out += self._attach_cameras(incident, seeing.get(incident.id, []),
                                        fetch=change in (Change.OPENED, Change.POSITION))
        return out

    def _attach_cameras(self, incident: IncidentView, seeing: list[Sighting], *, fetch: bool) -> list[FetchEvidence]:
        settings = self.settings
        if incident.lat is None or incident.lon is None or incident.position_time is None:
            return []
        if (incident.last_alert_at - incident.position_time).total_seconds() > settings.position_age_s:
            return []  # the unit's last position is too old to say where the alert came from
        detections = self.camera_store.detections_around(
            incident.lat, incident.lon, incident.last_alert_at, cameras=[x.camera.id for x in seeing],
            near_m=settings.near_m, window_s=settings.window_s)
        best = seeing[:settings.best]
        self.camera_store.attach(incident.id, best, detections)
        if not fetch or not self.fetching:
            return []
        return [FetchEvidence(EvidenceRequest(incident.id, c.id, c.snapshot_url, c.stream_url, c.credentials_env,
                                              incident.last_alert_at, settings.clip_s))
                for c in (x.camera for x in best) if c.snapshot_url or c.stream_url]

    def take_evidence(self, announce: Callable[[IncidentView], object]) -> None:
        """Evidence the fetcher's workers have brought (or failed to): stored, noted in the incident's
        history, and each incident so changed announced as soon as it is (the database may go away
        halfway)."""
        while True:
            try:
                got = self.arrived.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, Evidence):
                ev = self.camera_store.add_evidence(got)
                note = f"{ev.kind} from {ev.camera_id}: {ev.size} bytes, sha256 {ev.sha256}"
                self.counts["evidence"] += 1
            else:
                note = f"{got.kind} from {got.camera_id} failed: {got.reason}"
                self.counts["evidence_failed"] += 1
            view = self.store.add_history(got.incident_id, "evidence", note)
            log.info("incident %d: %s", got.incident_id, printable(note, 2 * SHOWN))
            if view is not None:
                announce(view)
