"""Cameras and detections around incidents, in the bridge's database.

    detection (cam/{camera}/event, frigate/events) --add_detection--> detections
    Frigate's later recognitions (frigate/tracked_object_update) --enrich--> that detection's row (held
                                                        a while if its detection has not come yet)
    alert (or a better position) --CameraIndex.seeing--> incident_cameras (the best that see the place)
                                 --detections_around--> incident_detections (those cameras, or near the
                                                        place, within the time window)
    evidence fetched for the incident --add_evidence--> evidence (with SHA-256)
    a camera's snapshot over MQTT --add_snapshot--> evidence of the open incidents it sees (each picture
                                                    once, a bounded number per incident and camera)

A detection's relevance to an incident, 0..1, is half nearness in time and half nearness in place::

    relevance = 0.5 * (1 - |t - t_alert| / window) + 0.5 * (1 - d / near)      (d, near in metres)

where d is the distance from the incident's position to the detection's (its own position, else its
camera's); a detection by a camera that sees the incident counts as near (d = 0) whatever its distance.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, TextClause, delete, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from bridge.cameras.evidence import Evidence
from bridge.cameras.feeds import Detection, ObjectUpdate
from bridge.cameras.geometry import Camera, Sighting, box_deg, haversine_m
from bridge.models import (
    RESOLVED,
    CameraRow,
    DetectionRow,
    EvidenceRow,
    IncidentCameraRow,
    IncidentDetectionRow,
    IncidentRow,
    UtcDateTime,
    among_bound,
)
from gateway.events import format_time

log = logging.getLogger(__name__)


def relevance(dt_s: float, distance_m: float, window_s: float, near_m: float) -> float:
    """How much a detection concerns an incident, 0..1 (the formula in the module docstring)."""
    return 0.5 * max(0.0, 1 - abs(dt_s) / window_s) + 0.5 * max(0.0, 1 - distance_m / near_m)


def _iso(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


@dataclass(frozen=True, slots=True)
class DetectionView:
    id: int
    camera: str
    label: str
    category: str | None
    score: float | None
    time: datetime
    lat: float | None
    lon: float | None
    snapshot_url: str | None
    clip_url: str | None
    source: str
    phase: str
    zones: tuple[str, ...] = ()
    sub_label: str | None = None
    sub_label_score: float | None = None
    plate: str | None = None
    plate_score: float | None = None
    face: str | None = None
    face_score: float | None = None
    description: str | None = None
    classifications: dict[str, Any] = field(default_factory=dict)  # model -> [value, score]
    box: tuple[int, int, int, int] | None = None
    stationary: bool | None = None
    end_time: datetime | None = None
    speed_kmh: float | None = None
    avg_speed_kmh: float | None = None
    direction_deg: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "label": self.label, "category": self.category,
                "score": self.score, "time": _iso(self.time), "lat": self.lat, "lon": self.lon,
                "snapshot_url": self.snapshot_url, "clip_url": self.clip_url, "source": self.source,
                "phase": self.phase, "zones": list(self.zones), "sub_label": self.sub_label,
                "sub_label_score": self.sub_label_score, "plate": self.plate, "plate_score": self.plate_score,
                "face": self.face, "face_score": self.face_score, "description": self.description,
                "classifications": self.classifications, "box": list(self.box) if self.box else None,
                "stationary": self.stationary, "end_time": _iso(self.end_time), "speed_kmh": self.speed_kmh,
                "avg_speed_kmh": self.avg_speed_kmh, "direction_deg": self.direction_deg}


@dataclass(frozen=True, slots=True)
class IncidentCamera:
    camera_id: str
    name: str
    distance_m: float
    off_axis_deg: float
    score: float
    stream_url: str | None
    snapshot_url: str | None

    def to_json(self) -> dict[str, Any]:
        return {"camera": self.camera_id, "name": self.name, "distance_m": round(self.distance_m, 1),
                "off_axis_deg": round(self.off_axis_deg, 1), "score": round(self.score, 3),
                "stream_url": self.stream_url, "snapshot_url": self.snapshot_url}


@dataclass(frozen=True, slots=True)
class EvidenceView:
    id: int
    camera_id: str
    kind: str
    time: datetime
    source: str
    content_type: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera_id, "kind": self.kind, "time": _iso(self.time),
                "source": self.source, "content_type": self.content_type, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class Correlation:
    """What the cameras add to an incident."""

    cameras: list[IncidentCamera]
    detections: list[tuple[DetectionView, float]]  # with relevance, best first
    evidence: list[EvidenceView]

    def to_json(self) -> dict[str, Any]:
        return {"cameras": [c.to_json() for c in self.cameras],
                "detections": [{**d.to_json(), "relevance": round(r, 3)} for d, r in self.detections],
                "evidence": [e.to_json() for e in self.evidence]}


def _detection_view(r: DetectionRow | SimpleNamespace) -> DetectionView:
    b = r.box
    box = (int(b[0]), int(b[1]), int(b[2]), int(b[3])) if isinstance(b, list) and len(b) == 4 else None
    return DetectionView(r.id, r.camera, r.label, r.category, r.score, r.time, r.lat, r.lon, r.snapshot_url,
                         r.clip_url, r.source, r.phase, tuple(r.zones or ()), r.sub_label, r.sub_label_score,
                         r.plate, r.plate_score, r.face, r.face_score, r.description, dict(r.classifications or {}),
                         box, r.stationary, r.end_time, r.speed_kmh, r.avg_speed_kmh, r.direction_deg)


# What a dispatcher reads of a detection: a change to one of these is news for its incidents (a speed
# or a score that moves with every frame is not).
_SHOWN = ("sub_label", "plate", "face", "description", "classifications", "stationary", "end_time")

#: Recognitions that came before their detection are held this long, for this many tracked objects.
HOLD_S = 600.0
HOLD_MAX = 512


@dataclass(frozen=True, slots=True)
class StoredDetection:
    view: DetectionView
    new: bool  # the first message of this detection
    revised: bool  # something a dispatcher reads of it changed (see _SHOWN)


def _enrichment(u: ObjectUpdate) -> dict[str, Any]:
    """The detection's columns that a tracked-object update sets; a null never erases what was known."""
    if u.kind == "face":
        return {"face": u.name, "face_score": u.score} if u.name is not None else {}
    if u.kind == "lpr":
        # A plate Frigate knows by name becomes the vehicle's sub_label, as in frigate/events.
        named = {"sub_label": u.name, "sub_label_score": u.score} if u.name is not None else {}
        return {"plate": u.plate, "plate_score": u.score, **named}
    if u.kind == "description":
        return {"description": u.description}
    assert u.model is not None
    values: dict[str, Any] = {"sub_label": u.name, "sub_label_score": u.score} if u.name is not None else {}
    if u.attribute is not None:
        values["classifications"] = {u.model: [u.attribute, u.score]}
    return values


@cache
def _correlation_statements(dialect: str) -> tuple[Any, Any, Any]:
    """The three queries of :meth:`CameraStore.correlations`, built once, their incidents bound at execution
    (each batch of beacons that moves incidents runs them: built anew, compiling them cost more than running)."""
    return (
        select(IncidentCameraRow, CameraRow.name, CameraRow.stream_url, CameraRow.snapshot_url)
        .outerjoin(CameraRow, CameraRow.id == IncidentCameraRow.camera_id)
        .where(among_bound(dialect, IncidentCameraRow.incident_id, "ids")).order_by(IncidentCameraRow.score.desc()),
        select(IncidentDetectionRow.incident_id, DetectionRow, IncidentDetectionRow.score)
        .join(IncidentDetectionRow, IncidentDetectionRow.detection_id == DetectionRow.id)
        .where(among_bound(dialect, IncidentDetectionRow.incident_id, "ids"))
        .order_by(IncidentDetectionRow.score.desc(), DetectionRow.time.desc()),
        select(EvidenceRow).where(among_bound(dialect, EvidenceRow.incident_id, "ids"))
        .order_by(EvidenceRow.time, EvidenceRow.id),
    )


#: The columns a detection's and a piece of evidence's views are made of (their fields, named as the
#: columns), and which of the detection's are times.
_DETECTION_SHOWN = tuple(f.name for f in fields(DetectionView))
_DETECTION_TIMES = tuple(c.key for c in DetectionRow.__table__.c
                         if c.key in _DETECTION_SHOWN and isinstance(c.type, UtcDateTime))
_EVIDENCE_SHOWN = tuple(f.name for f in fields(EvidenceView))


@cache
def _correlations_in_one() -> TextClause:
    """PostgreSQL: the three queries of :func:`_correlation_statements` in one round trip (a batch that changes
    an incident runs them, and the round trips were most of their cost): each incident's cameras, detections
    and evidence as JSON arrays, each in its query's order."""
    def pairs(alias: str, names: Sequence[str]) -> str:
        return ", ".join(f"'{n}', {alias}.{n}" for n in names)

    return text(
        "SELECT i.id, "
        "(SELECT json_agg(json_build_object('camera_id', c.camera_id, 'name', cam.name, 'distance_m', c.distance_m, "
        "'off_axis_deg', c.off_axis_deg, 'score', c.score, 'stream_url', cam.stream_url, "
        "'snapshot_url', cam.snapshot_url) ORDER BY c.score DESC) "
        "FROM incident_cameras AS c LEFT JOIN cameras AS cam ON cam.id = c.camera_id WHERE c.incident_id = i.id), "
        f"(SELECT json_agg(json_build_array(json_build_object({pairs('d', _DETECTION_SHOWN)}), l.score) "
        "ORDER BY l.score DESC, d.time DESC) "
        "FROM incident_detections AS l JOIN detections AS d ON d.id = l.detection_id WHERE l.incident_id = i.id), "
        f"(SELECT json_agg(json_build_object({pairs('e', _EVIDENCE_SHOWN)}) ORDER BY e.time, e.id) "
        "FROM evidence AS e WHERE e.incident_id = i.id) "
        "FROM unnest(CAST(:ids AS integer[])) AS i(id)")


def _json_time(value: str | None) -> datetime | None:
    """A time as PostgreSQL's JSON writes a timestamptz (ISO 8601 with its offset), in UTC."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


class CameraStore:
    """Thread-safe like :class:`bridge.store.Store`: each method runs in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        # Reads whose statements each stand alone: on PostgreSQL outside a transaction, which would cost a
        # BEGIN and a ROLLBACK, two round trips more than the reads (read committed gives each statement
        # its own snapshot anyway).
        self._reading = sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False) \
            if engine.dialect.name == "postgresql" else self._session
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._dialect = engine.dialect.name
        # Frigate id -> (when first held, monotonic; its updates in order): recognitions whose detection
        # has not come yet. In memory: a bridge of a shared group holds what it was handed.
        self._held: OrderedDict[str, tuple[float, list[ObjectUpdate]]] = OrderedDict()
        self._held_lock = threading.Lock()
        # Incidents whose cameras, detections or evidence this store wrote since forget_written(): an
        # incident opened since then and not among them has none (see correlations' ``fresh``).
        self._written: set[int] = set()

    def forget_written(self) -> None:
        """From now on, :meth:`correlations` may be told of incidents opened since (``fresh``)."""
        self._written.clear()

    def add_detection(self, d: Detection, camera: Camera | None) -> tuple[DetectionView, bool]:
        """Store a detection (a Frigate event's updates change its row); returns it and whether it is new.
        Without a position of its own, a detection is where its camera is."""
        stored = self.store_detection(d, camera)
        return stored.view, stored.new

    def store_detection(self, d: Detection, camera: Camera | None) -> StoredDetection:
        """:meth:`add_detection`, telling also whether what a dispatcher reads of it changed. Frigate's
        recognitions held for it are applied."""
        lat, lon = (d.lat, d.lon) if d.lat is not None and d.lon is not None else \
            ((camera.lat, camera.lon) if camera is not None else (None, None))
        now = datetime.now(UTC)
        values = {"camera": d.camera, "label": d.label, "category": d.category, "score": d.score, "time": d.time,
                  "lat": lat, "lon": lon, "snapshot_url": d.snapshot_url, "clip_url": d.clip_url, "source": d.source,
                  "source_id": d.source_id, "phase": d.phase, "raw": d.raw, "received_at": now,
                  "zones": list(d.zones) or None, "sub_label": d.sub_label, "sub_label_score": d.sub_label_score,
                  "plate": d.plate, "plate_score": d.plate_score, "box": list(d.box) if d.box else None,
                  "stationary": d.stationary, "end_time": d.end_time, "speed_kmh": d.speed_kmh,
                  "avg_speed_kmh": d.avg_speed_kmh, "direction_deg": d.direction_deg}
        held = self._take_held(d.source_id) if d.source == "frigate" and d.source_id else []
        with self._session.begin() as s:
            row = None
            if d.source_id is not None:
                row = s.scalars(select(DetectionRow).where(DetectionRow.source == d.source,
                                                           DetectionRow.source_id == d.source_id)
                                .with_for_update()).first()
            new = row is None
            if row is None:
                row = DetectionRow(**values)
                s.add(row)
                before = None
            else:
                before = _detection_view(row)
                for key, value in values.items():
                    # An update keeps the first time, and a null never erases what was known (a name
                    # Frigate recognised stays on record when a later message of it has none).
                    if key != "time" and (value is not None or key in ("phase",)):
                        setattr(row, key, value)
            for u in held:
                try:
                    self._apply(row, u)
                except ValueError as exc:
                    log.warning("Frigate's %s update held for %s not applied: %s", u.kind, d.source_id, exc)
            s.flush()
            view = _detection_view(row)
        revised = before is not None and any(getattr(before, k) != getattr(view, k) for k in _SHOWN)
        return StoredDetection(view, new, revised)

    def enrich(self, u: ObjectUpdate) -> StoredDetection | None:
        """Apply a tracked-object update to the detection it names; ``None`` when that detection has not
        come (yet): the update is then held for it (:data:`HOLD_S`, :data:`HOLD_MAX`).
        Raises ValueError when the update's camera is not the detection's."""
        with self._session.begin() as s:
            row = s.scalars(select(DetectionRow).where(DetectionRow.source == "frigate",
                                                       DetectionRow.source_id == u.source_id)
                            .with_for_update()).first()
            if row is None:
                self._hold(u)
                return None
            before = _detection_view(row)
            self._apply(row, u)
            s.flush()
            view = _detection_view(row)
        return StoredDetection(view, False, any(getattr(before, k) != getattr(view, k) for k in _SHOWN))

    @staticmethod
    def _apply(row: DetectionRow, u: ObjectUpdate) -> None:
        if u.camera is not None and u.camera != row.camera:
            raise ValueError(f"camera {u.camera!r} is not that of detection {u.source_id!r} ({row.camera!r})")
        for key, value in _enrichment(u).items():
            if key == "classifications":
                value = {**(row.classifications or {}), **value}  # a new dict: JSON columns track assignment
            setattr(row, key, value)

    def _hold(self, u: ObjectUpdate) -> None:
        now = time.monotonic()
        with self._held_lock:
            while self._held and (len(self._held) >= HOLD_MAX
                                  or now - next(iter(self._held.values()))[0] > HOLD_S):
                self._held.popitem(last=False)
            self._held.setdefault(u.source_id, (now, []))[1].append(u)

    def _take_held(self, source_id: str) -> list[ObjectUpdate]:
        with self._held_lock:
            since, updates = self._held.pop(source_id, (0.0, []))
        return updates if time.monotonic() - since <= HOLD_S else []

    def held(self) -> int:
        """How many tracked objects have recognitions waiting for their detection."""
        with self._held_lock:
            return len(self._held)

    def incidents_showing(self, detection_id: int) -> list[int]:
        """The open incidents this detection is attached to."""
        with self._session() as s:
            return list(s.scalars(
                select(IncidentDetectionRow.incident_id)
                .join(IncidentRow, IncidentRow.id == IncidentDetectionRow.incident_id)
                .where(IncidentDetectionRow.detection_id == detection_id, IncidentRow.state != RESOLVED)
                .order_by(IncidentDetectionRow.incident_id)))

    def incidents_seen_by(self, camera_id: str, since: datetime) -> list[int]:
        """The open incidents whose cameras include ``camera_id`` and whose last alert is ``since`` or later."""
        with self._session() as s:
            return list(s.scalars(
                select(IncidentCameraRow.incident_id)
                .join(IncidentRow, IncidentRow.id == IncidentCameraRow.incident_id)
                .where(IncidentCameraRow.camera_id == camera_id, IncidentRow.state != RESOLVED,
                       IncidentRow.last_alert_at >= since)
                .order_by(IncidentCameraRow.incident_id)))

    def detections_around(self, lat: float, lon: float, at: datetime, *, cameras: Sequence[str], near_m: float,
                          window_s: float, limit: int = 50) -> list[tuple[DetectionView, float]]:
        """Detections within ``window_s`` of ``at``, by ``cameras`` or within ``near_m`` of the place."""
        window = timedelta(seconds=window_s)
        dlat, dlon = box_deg(lat, near_m)
        with self._session() as s:
            rows = s.scalars(
                select(DetectionRow).where(
                    DetectionRow.time.between(at - window, at + window),
                    or_(DetectionRow.camera.in_(list(cameras)),
                        DetectionRow.lat.between(lat - dlat, lat + dlat)
                        & DetectionRow.lon.between(lon - dlon, lon + dlon)),
                ).order_by(DetectionRow.time.desc()).limit(limit * 4)
            ).all()
        seen_by = set(cameras)
        out = []
        for r in rows:
            d = 0.0 if r.camera in seen_by else (haversine_m(lat, lon, r.lat, r.lon) if r.lat is not None
                                                  and r.lon is not None else near_m)
            if d > near_m:
                continue
            out.append((_detection_view(r), relevance((r.time - at).total_seconds(), d, window_s, near_m)))
        out.sort(key=lambda x: (-x[1], -x[0].time.timestamp()))
        return out[:limit]

    def attach(self, incident_id: int, sightings: Sequence[Sighting],
               detections: Sequence[tuple[DetectionView, float]]) -> None:
        """The incident's cameras become these (its position may have changed); detections are added."""
        now = datetime.now(UTC)
        with self._session.begin() as s:
            s.execute(delete(IncidentCameraRow).where(IncidentCameraRow.incident_id == incident_id))
            s.add_all(IncidentCameraRow(incident_id=incident_id, camera_id=x.camera.id, distance_m=x.distance_m,
                                        off_axis_deg=x.off_axis_deg, score=x.score, updated_at=now) for x in sightings)
            known = set(s.scalars(select(IncidentDetectionRow.detection_id)
                                  .where(IncidentDetectionRow.incident_id == incident_id)))
            added = [IncidentDetectionRow(incident_id=incident_id, detection_id=d.id, score=score, added_at=now)
                     for d, score in detections if d.id not in known]
            s.add_all(added)
            if sightings or added:  # rows written (a new incident that no camera sees has none still)
                self._written.add(incident_id)

    def attach_detection(self, incident_id: int, detection: DetectionView, relevance: float) -> bool:
        """One more detection for an incident (it came after the alert); False if it was attached already."""
        self._written.add(incident_id)
        with self._session.begin() as s:
            if s.get(IncidentDetectionRow, (incident_id, detection.id)) is not None:
                return False
            s.add(IncidentDetectionRow(incident_id=incident_id, detection_id=detection.id, score=relevance,
                                       added_at=datetime.now(UTC)))
            return True

    def add_evidence(self, ev: Evidence) -> EvidenceView:
        self._written.add(ev.incident_id)
        with self._session.begin() as s:
            row = EvidenceRow(incident_id=ev.incident_id, camera_id=ev.camera_id, kind=ev.kind, time=ev.time,
                              source=ev.source, content_type=ev.content_type,
                              sha256=ev.sha256 or hashlib.sha256(ev.data).hexdigest(), size=len(ev.data),
                              data=ev.data)
            s.add(row)
            s.flush()
            return EvidenceView(row.id, row.camera_id, row.kind, row.time, row.source, row.content_type, row.sha256,
                                row.size)

    def add_snapshot(self, ev: Evidence, *, most: int) -> EvidenceView | str:
        """A snapshot pushed by the camera (not asked for): stored unless this incident has the same
        picture already, or ``most`` of this camera's pushed snapshots; else the reason it was not."""
        with self._session.begin() as s:
            if s.scalars(select(EvidenceRow.id).where(EvidenceRow.incident_id == ev.incident_id,
                                                      EvidenceRow.sha256 == ev.sha256)).first() is not None:
                return "the incident has this picture already"
            kept = s.scalar(select(func.count()).select_from(EvidenceRow).where(
                EvidenceRow.incident_id == ev.incident_id, EvidenceRow.camera_id == ev.camera_id,
                EvidenceRow.kind == "snapshot", EvidenceRow.source == ev.source)) or 0
            if kept >= most:
                return f"the incident has {kept} snapshots of this camera from {ev.source} already"
        return self.add_evidence(ev)

    def evidence_data(self, evidence_id: int) -> tuple[str, bytes] | None:
        """(content type, bytes) of one piece of evidence, for a console to show."""
        with self._session() as s:
            row = s.get(EvidenceRow, evidence_id)
            return (row.content_type, row.data) if row is not None else None

    def correlation(self, incident_id: int) -> Correlation:
        return self.correlations([incident_id])[incident_id]

    def correlations(self, incident_ids: Iterable[int], *, fresh: Iterable[int] = ()) -> dict[int, Correlation]:
        """What the cameras add to each of these incidents, read for them all at once, however many (a batch
        of beacons moves tens of incidents, and each is published with its cameras): on PostgreSQL one
        statement, on SQLite (no round trips) three queries. ``fresh``: incidents opened since
        :meth:`forget_written`; those this store wrote no rows for since have none, and are not asked for
        (an alert opens an incident no camera sees: a read saved)."""
        out = {i: Correlation([], [], []) for i in incident_ids}
        ids = sorted(out.keys() - (set(fresh) - self._written))
        if ids:
            read = self._correlations_in_one if self._dialect == "postgresql" else self._correlations_queried
            out.update(read(ids))
        return out

    def _correlations_in_one(self, ids: Sequence[int]) -> dict[int, Correlation]:
        """PostgreSQL: :func:`_correlations_in_one`'s JSON made into the views the three queries make."""
        out = {}
        with self._reading() as s:
            for incident_id, cams, dets, evidence in s.execute(_correlations_in_one(), {"ids": ids}):
                out[incident_id] = Correlation(
                    [IncidentCamera(c["camera_id"], c["name"] or c["camera_id"], c["distance_m"], c["off_axis_deg"],
                                    c["score"], c["stream_url"], c["snapshot_url"]) for c in cams or ()],
                    [(_detection_view(SimpleNamespace(**{**d, **{t: _json_time(d[t]) for t in _DETECTION_TIMES}})),
                      score) for d, score in dets or ()],
                    [EvidenceView(**{**e, "time": _json_time(e["time"])}) for e in evidence or ()])
        return out

    def _correlations_queried(self, ids: Sequence[int]) -> dict[int, Correlation]:
        """SQLite (in process, no round trips): the three queries of _correlation_statements."""
        out = {i: Correlation([], [], []) for i in ids}
        cams_q, dets_q, evidence_q = _correlation_statements(self._dialect)
        with self._reading() as s:
            cams = s.execute(cams_q, {"ids": ids}).all()
            dets = s.execute(dets_q, {"ids": ids}).all()
            evidence = s.scalars(evidence_q, {"ids": ids}).all()
            # Each query's order holds within every incident's share of it.
            for c, name, stream, snap in cams:
                out[c.incident_id].cameras.append(IncidentCamera(c.camera_id, name or c.camera_id, c.distance_m,
                                                                 c.off_axis_deg, c.score, stream, snap))
            for incident_id, d, score in dets:
                out[incident_id].detections.append((_detection_view(d), score))
            for e in evidence:
                out[e.incident_id].evidence.append(EvidenceView(e.id, e.camera_id, e.kind, e.time, e.source,
                                                                e.content_type, e.sha256, e.size))
        return out
