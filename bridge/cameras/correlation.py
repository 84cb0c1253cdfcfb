"""Cameras and detections around incidents, in the bridge's database.

    detection (cam/{camera}/event, frigate/events) --add_detection--> detections
    alert (or a better position) --CameraIndex.seeing--> incident_cameras (the best that see the place)
                                 --detections_around--> incident_detections (those cameras, or near the
                                                        place, within the time window)
    evidence fetched for the incident --add_evidence--> evidence (with SHA-256)

A detection's relevance to an incident, 0..1, is half nearness in time and half nearness in place::

    relevance = 0.5 * (1 - |t - t_alert| / window) + 0.5 * (1 - d / near)      (d, near in metres)

where d is the distance from the incident's position to the detection's (its own position, else its
camera's); a detection by a camera that sees the incident counts as near (d = 0) whatever its distance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from bridge.cameras.evidence import Evidence
from bridge.cameras.feeds import Detection
from bridge.cameras.geometry import Camera, Sighting, box_deg, haversine_m
from bridge.models import CameraRow, DetectionRow, EvidenceRow, IncidentCameraRow, IncidentDetectionRow
from gateway.events import format_time


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

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "label": self.label, "category": self.category,
                "score": self.score, "time": _iso(self.time), "lat": self.lat, "lon": self.lon,
                "snapshot_url": self.snapshot_url, "clip_url": self.clip_url, "source": self.source,
                "phase": self.phase}


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


def _detection_view(r: DetectionRow) -> DetectionView:
    return DetectionView(r.id, r.camera, r.label, r.category, r.score, r.time, r.lat, r.lon, r.snapshot_url,
                         r.clip_url, r.source, r.phase)


class CameraStore:
    """Thread-safe like :class:`bridge.store.Store`: each method runs in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def add_detection(self, d: Detection, camera: Camera | None) -> tuple[DetectionView, bool]:
        """Store a detection (a Frigate event's updates change its row); returns it and whether it is new.
        Without a position of its own, a detection is where its camera is."""
        lat, lon = (d.lat, d.lon) if d.lat is not None and d.lon is not None else \
            ((camera.lat, camera.lon) if camera is not None else (None, None))
        now = datetime.now(UTC)
        values = {"camera": d.camera, "label": d.label, "category": d.category, "score": d.score, "time": d.time,
                  "lat": lat, "lon": lon, "snapshot_url": d.snapshot_url, "clip_url": d.clip_url, "source": d.source,
                  "source_id": d.source_id, "phase": d.phase, "raw": d.raw, "received_at": now}
        with self._session.begin() as s:
            row = None
            if d.source_id is not None:
                row = s.scalars(select(DetectionRow).where(DetectionRow.source == d.source,
                                                           DetectionRow.source_id == d.source_id)
                                .with_for_update()).first()
            if row is None:
                row = DetectionRow(**values)
                s.add(row)
                s.flush()
                return _detection_view(row), True
            for key, value in values.items():
                if key != "time" and (value is not None or key in ("phase",)):  # an update keeps the first time
                    setattr(row, key, value)
            s.flush()
            return _detection_view(row), False

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
            s.add_all(IncidentDetectionRow(incident_id=incident_id, detection_id=d.id, score=score, added_at=now)
                      for d, score in detections if d.id not in known)

    def attach_detection(self, incident_id: int, detection: DetectionView, relevance: float) -> bool:
        """One more detection for an incident (it came after the alert); False if it was attached already."""
        with self._session.begin() as s:
            if s.get(IncidentDetectionRow, (incident_id, detection.id)) is not None:
                return False
            s.add(IncidentDetectionRow(incident_id=incident_id, detection_id=detection.id, score=relevance,
                                       added_at=datetime.now(UTC)))
            return True

    def add_evidence(self, ev: Evidence) -> EvidenceView:
        with self._session.begin() as s:
            row = EvidenceRow(incident_id=ev.incident_id, camera_id=ev.camera_id, kind=ev.kind, time=ev.time,
                              source=ev.source, content_type=ev.content_type,
                              sha256=ev.sha256 or hashlib.sha256(ev.data).hexdigest(), size=len(ev.data),
                              data=ev.data)
            s.add(row)
            s.flush()
            return EvidenceView(row.id, row.camera_id, row.kind, row.time, row.source, row.content_type, row.sha256,
                                row.size)

    def evidence_data(self, evidence_id: int) -> tuple[str, bytes] | None:
        """(content type, bytes) of one piece of evidence, for a console to show."""
        with self._session() as s:
            row = s.get(EvidenceRow, evidence_id)
            return (row.content_type, row.data) if row is not None else None

    def correlation(self, incident_id: int) -> Correlation:
        with self._session() as s:
            cams = s.execute(
                select(IncidentCameraRow, CameraRow.name, CameraRow.stream_url, CameraRow.snapshot_url)
                .outerjoin(CameraRow, CameraRow.id == IncidentCameraRow.camera_id)
                .where(IncidentCameraRow.incident_id == incident_id).order_by(IncidentCameraRow.score.desc())
            ).all()
            dets = s.execute(
                select(DetectionRow, IncidentDetectionRow.score)
                .join(IncidentDetectionRow, IncidentDetectionRow.detection_id == DetectionRow.id)
                .where(IncidentDetectionRow.incident_id == incident_id)
                .order_by(IncidentDetectionRow.score.desc(), DetectionRow.time.desc())
            ).all()
            evidence = s.scalars(select(EvidenceRow).where(EvidenceRow.incident_id == incident_id)
                                 .order_by(EvidenceRow.time, EvidenceRow.id)).all()
            return Correlation(
                cameras=[IncidentCamera(c.camera_id, name or c.camera_id, c.distance_m, c.off_axis_deg, c.score,
                                        stream, snap) for c, name, stream, snap in cams],
                detections=[(_detection_view(d), score) for d, score in dets],
                evidence=[EvidenceView(e.id, e.camera_id, e.kind, e.time, e.source, e.content_type, e.sha256, e.size)
                          for e in evidence],
            )
