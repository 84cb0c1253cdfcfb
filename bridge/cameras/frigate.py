"""Frigate's snapshots and recognitions over MQTT, into incident evidence and richer detections, so
that nothing needs an HTTP path from the bridge to Frigate.

    {prefix}/{camera}/{label}/snapshot  JPEG --parse_frigate_snapshot--> evidence (with its SHA-256) of every
                                        open incident that camera sees, whose last alert is within window_s
    {prefix}/tracked_object_update      JSON --parse_frigate_update--> the detection with that Frigate id:
                                        face, licence plate, description, classification (held a while
                                        when the detection has not come yet)

``{prefix}`` is Frigate's ``topic_prefix``: ``[bridge.cameras] frigate_topic`` without its last level
(``frigate/events`` -> ``frigate``). Frigate publishes snapshots retained; a retained one handed over
on subscribing is the picture of some earlier object, not news, and is not taken as evidence.

A bad payload (not a JPEG, cut short, oversized, not JSON, a bad field) is logged with its reason and
bytes and counted (``camera_rejected``), a camera not mapped by ``frigate_cameras`` or not in the
registry is counted apart (``camera_unknown``); neither affects the message after it. The ingest thread
calls :meth:`FrigateIntake.take` for the topics :meth:`FrigateIntake.claims`.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

from bridge.cameras.correlation import CameraStore
from bridge.cameras.evidence import Evidence
from bridge.cameras.feeds import FeedError, UnknownCamera, parse_frigate_snapshot, parse_frigate_update
from bridge.cameras.index import CameraIndex
from bridge.store import Store
from bridge.views import IncidentView
from config.mqtt import frigate_prefix
from config.schema import CameraSettings

log = logging.getLogger(__name__)

HEX_SHOWN = 64  # bytes of an offending payload shown in the log


def _hex(payload: bytes) -> str:
    shown = payload[:HEX_SHOWN].hex(" ")
    return f"{len(payload)} bytes: {shown}{' ...' if len(payload) > HEX_SHOWN else ''}"


class FrigateIntake:
    """Takes Frigate's snapshot and tracked-object-update messages on the bridge's ingest thread; each
    call returns the incidents it changed, with how (``evidence``, ``detection``), to be announced."""

    def __init__(self, store: Store, camera_store: CameraStore, cameras: CameraIndex, settings: CameraSettings,
                 counts: Counter[str]) -> None:
        self.store = store
        self.camera_store = camera_store
        self.cameras = cameras
        self.settings = settings
        self.counts = counts
        self.prefix = frigate_prefix(settings.frigate_topic)
        self._update_topic = f"{self.prefix}/tracked_object_update"

    def claims(self, topic: str) -> bool:
        """Whether ``topic`` is one of Frigate's snapshots or its tracked-object updates."""
        return topic == self._update_topic or self._snapshot_levels(topic) is not None

    def _snapshot_levels(self, topic: str) -> tuple[str, str] | None:
        if not topic.startswith(self.prefix + "/"):
            return None
        levels = topic[len(self.prefix) + 1:].split("/")
        return (levels[0], levels[1]) if len(levels) == 3 and levels[2] == "snapshot" else None

    def take(self, topic: str, payload: bytes, *, retained: bool = False,
             now: datetime | None = None) -> list[tuple[IncidentView, str]]:
        """Handle one message; database errors propagate (the batch is stored again), nothing else does."""
        now = now or datetime.now(UTC)
        if topic == self._update_topic:
            return self._update(topic, payload)
        levels = self._snapshot_levels(topic)
        if levels is None:
            return []
        return self._snapshot(topic, levels[0], levels[1], payload, retained, now)

    def showing(self, detection_id: int) -> list[tuple[IncidentView, str]]:
        """The open incidents that show this detection, to announce again because it changed."""
        views = (self.store.incident(i) for i in self.camera_store.incidents_showing(detection_id))
        return [(v, "detection") for v in views if v is not None]

    # --- snapshots -------------------------------------------------------------------------------

    def _snapshot(self, topic: str, camera_name: str, label: str, payload: bytes, retained: bool,
                  now: datetime) -> list[tuple[IncidentView, str]]:
        try:
            snap = parse_frigate_snapshot(camera_name, label, payload, cameras=self.settings.frigate_cameras)
            if snap.camera not in self.cameras:
                raise UnknownCamera("topic", snap.camera)
        except UnknownCamera as exc:
            self.counts["camera_unknown"] += 1
            log.warning("Frigate snapshot on %s from a camera not in the registry ignored: %s", topic, exc)
            return []
        except FeedError as exc:
            self.counts["camera_rejected"] += 1
            log.warning("Frigate snapshot on %s rejected: %s [%s]", topic, exc, _hex(payload))
            return []
        if retained:
            self.counts["frigate_snapshots_retained"] += 1
            log.info("Frigate snapshot on %s ignored: a retained one, handed over on subscribing, is an older "
                     "object's picture", topic)
            return []
        self.counts["frigate_snapshots"] += 1
        since = now - timedelta(seconds=self.settings.window_s)
        changed: list[tuple[IncidentView, str]] = []
        for incident_id in self.camera_store.incidents_seen_by(snap.camera, since):
            ev = Evidence(incident_id, snap.camera, "snapshot", now, f"mqtt:{topic}", snap.content_type, snap.sha256,
                          snap.data, len(snap.data))
            kept = self.camera_store.add_snapshot(ev, most=self.settings.frigate_snapshots)
            if isinstance(kept, str):
                log.debug("Frigate snapshot on %s not kept for incident %d: %s", topic, incident_id, kept)
                continue
            self.counts["evidence"] += 1
            note = f"snapshot from {snap.camera}: {kept.size} bytes, sha256 {kept.sha256} (Frigate, {snap.label})"
            log.info("incident %d: %s", incident_id, note)
            view = self.store.add_history(incident_id, "evidence", note)
            if view is not None:
                changed.append((view, "evidence"))
        return changed

    # --- tracked-object updates ------------------------------------------------------------------

    def _update(self, topic: str, payload: bytes) -> list[tuple[IncidentView, str]]:
        try:
            update = parse_frigate_update(payload, cameras=self.settings.frigate_cameras)
            if update is not None and update.camera is not None and update.camera not in self.cameras:
                raise UnknownCamera("camera", update.camera)
        except UnknownCamera as exc:
            self.counts["camera_unknown"] += 1
            log.warning("Frigate update on %s from a camera not in the registry ignored: %s", topic, exc)
            return []
        except FeedError as exc:
            self.counts["camera_rejected"] += 1
            log.warning("Frigate update on %s rejected: %s [%s]", topic, exc, _hex(payload))
            return []
        if update is None:
            log.debug("Frigate update of a type not taken ignored [%s]", _hex(payload))
            return []
        try:
            stored = self.camera_store.enrich(update)
        except ValueError as exc:
            self.counts["camera_rejected"] += 1
            log.warning("Frigate %s update on %s rejected: %s", update.kind, topic, exc)
            return []
        self.counts["frigate_updates"] += 1
        if stored is None:
            log.info("Frigate %s update of %s held: its detection has not come yet", update.kind, update.source_id)
            return []
        log.info("detection %d (Frigate %s) enriched by a %s update", stored.view.id, update.source_id, update.kind)
        return self.showing(stored.view.id) if stored.revised else []
