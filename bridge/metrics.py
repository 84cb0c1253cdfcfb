"""The bridge's Prometheus metrics (``[bridge] metrics = "127.0.0.1:9102"``, ``GET /metrics``).

Three histograms are kept here, fed by the ingest thread once per stored batch: the batch's size, its
transaction's duration, and each event's age when it was stored (now minus the gateway's ``time``:
outbox, broker, queue and ingest together, which is what an operator watching alerts cares about).
Everything else is asked of the bridge at each scrape through a narrow interface (:class:`StatsSource`):
its counters, its connection and inbox (:class:`Stats`), and what the database says of incidents and
each gateway's seq (:class:`DatabaseStats`), so that every bridge of a shared group reports the same (the
database's) view.

The HTTP endpoint and the text format are ``monitoring/prometheus.py``'s, shared with the gateway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from bridge.views import GatewayView, IncidentState
from gateway.events import Event
from monitoring.prometheus import Exposition, Histogram, MetricsServer

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

# Bridge.counts key -> (metric name, help). Every one is exported, zero until it happens.
COUNTERS = {
    "received": ("pttbridge_bridge_events_received_total", "gateway event messages received (valid or not)"),
    "stored": ("pttbridge_bridge_events_stored_total", "events stored by this bridge (first time seen)"),
    "duplicates": ("pttbridge_bridge_events_duplicate_total", "events received again and not stored twice"),
    "rejected": ("pttbridge_bridge_events_rejected_total", "events refused: oversized, not JSON, wrong schema"),
    "lost": ("pttbridge_bridge_events_lost_total", "events given up on: no replay brought them"),
    "gaps": ("pttbridge_bridge_gaps_total", "holes seen in a gateway's seq"),
    "replay_requests": ("pttbridge_bridge_replay_requests_total", "cmd/replay requests sent to gateways"),
    "commands": ("pttbridge_bridge_commands_total", "commands received from consoles on bridge/cmd"),
    "commands_refused": ("pttbridge_bridge_commands_refused_total", "console commands refused"),
    "batch_errors": ("pttbridge_bridge_batch_errors_total", "batches that failed unexpectedly (see the log)"),
    "messages_failed": ("pttbridge_bridge_messages_failed_total",
                        "messages refused alone because handling them failed unexpectedly (see the log)"),
    "id_reused": ("pttbridge_bridge_events_id_reused_total",
                  "events whose id was stored already with other content (not stored; logged once per id)"),
    "future": ("pttbridge_bridge_events_future_total",
               "events stamped more than bridge.future_s ahead of the bridge's clock (stored, logged)"),
    "disconnects": ("pttbridge_bridge_disconnects_total", "connections to the broker lost (either session)"),
    "topics_refused": ("pttbridge_bridge_topics_refused_total",
                       "publishes not sent: a topic built from received text that MQTT would refuse"),
    "clips": ("pttbridge_bridge_clips_total", "audio clips of calls stored"),
    "clips_rejected": ("pttbridge_bridge_clips_rejected_total", "audio clips refused"),
    "detections": ("pttbridge_bridge_camera_detections_total", "camera detections stored"),
    "camera_rejected": ("pttbridge_bridge_camera_rejected_total", "camera events refused"),
    "camera_unknown": ("pttbridge_bridge_camera_unknown_total", "detections of cameras not in the registry"),
    "evidence": ("pttbridge_bridge_evidence_total", "camera snapshots and clips kept as evidence"),
    "frigate_snapshots": ("pttbridge_bridge_frigate_snapshots_total", "Frigate snapshots taken over MQTT"),
    "frigate_updates": ("pttbridge_bridge_frigate_updates_total", "Frigate tracked-object updates taken"),
    "evidence_failed": ("pttbridge_bridge_evidence_failed_total", "evidence fetches that failed"),
    "answers_applied": ("pttbridge_bridge_answers_applied_total", "radio answers that moved a case part"),
    "answers_unchanged": ("pttbridge_bridge_answers_unchanged_total",
                          "radio answers for a step the unit's part had made already"),
    "answers_no_open_case": ("pttbridge_bridge_answers_no_open_case_total",
                             "radio answers from a unit with no open case (kept in case_answers)"),
    "answers_no_unit": ("pttbridge_bridge_answers_no_unit_total",
                        "radio answers no unit could be found for (kept in case_answers)"),
    "answers_waiting": ("pttbridge_bridge_answers_waiting_total",
                        "radio answers that waited for the unit of their transmission"),
}


@dataclass(frozen=True, slots=True)
class Stats:
    """What a bridge knows of itself at one moment."""

    counts: Mapping[str, int]  # a copy: the ingest thread goes on counting
    connected: bool  # both sessions connected and subscribed
    inbox: int  # messages received and waiting for the ingest thread


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    """What the database says: every bridge of a shared group reports the same."""

    incidents: Mapping[str, int]  # by state
    gateways: Sequence[GatewayView]


class StatsSource(Protocol):
    """What the metrics ask of a bridge."""

    def stats(self) -> Stats: ...

    def database_stats(self) -> DatabaseStats:
        """Raises SQLAlchemyError (or RuntimeError before the database is opened) when it cannot be read."""
        ...


class BridgeMetrics:
    """Histograms fed by the ingest thread, and the rendering of everything at a scrape."""

    def __init__(self, source: StatsSource, name: str, group: str | None = None) -> None:
        self.source = source
        self.name = name
        self.group = group or ""
        self.started = time.time()
        self.latency = Histogram(LATENCY_BUCKETS)
        self.duration = Histogram(DURATION_BUCKETS)
        self.batch = Histogram(BATCH_BUCKETS)
        self.server: MetricsServer | None = None
        self._render_lock = threading.Lock()  # two scrapes at once query the database once each, in turn

    def stored(self, events: Sequence[Event], duration_s: float) -> None:
        """A batch was stored (called on the ingest thread, after the commit)."""
        now = time.time()
        self.duration.observe(duration_s)
        self.batch.observe(len(events))
        self.latency.observe_many(now - e.time.timestamp() for e in events)

    def start(self, listen: str) -> None:
        self.server = MetricsServer(listen, self.render, name=f"bridge {self.name}")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def render(self) -> str:
        with self._render_lock:
            return self._render()

    def _render(self) -> str:
        stats = self.source.stats()
        out = Exposition()
        out.gauge("pttbridge_bridge_info", "this bridge (value 1): its name and shared group as labels",
                  [({"bridge": self.name, "group": self.group}, 1)])
        for key, (name, help_text) in COUNTERS.items():
            out.counter(name, help_text, stats.counts.get(key, 0))
        out.gauge("pttbridge_bridge_connected", "1 while connected to the broker", int(stats.connected))
        out.gauge("pttbridge_bridge_inbox_messages", "messages received and waiting for the ingest thread",
                  stats.inbox)
        out.histogram("pttbridge_bridge_ingest_latency_seconds",
                      "age of each event when stored: store time minus the gateway's event time", self.latency)
        out.histogram("pttbridge_bridge_store_duration_seconds", "duration of each batch's database transaction",
                      self.duration)
        out.histogram("pttbridge_bridge_batch_size_events", "events per stored batch", self.batch)
        self._database(out)
        out.gauge("pttbridge_bridge_start_time_seconds", "when this process started (Unix time)", self.started)
        return out.text()

    def _database(self, out: Exposition) -> None:
        """Incidents and gateways as the database has them; a database away is a metric, not an error."""
        try:
            db = self.source.database_stats()
        except (SQLAlchemyError, RuntimeError) as exc:
            log.warning("metrics: database unavailable: %s", exc.__class__.__name__)
            out.gauge("pttbridge_bridge_database_up", "1 when the last scrape could read the database", 0)
            return
        gateways = db.gateways
        out.gauge("pttbridge_bridge_database_up", "1 when the last scrape could read the database", 1)
        out.gauge("pttbridge_bridge_incidents_open", "incidents not resolved (in the database)",
                  sum(n for state, n in db.incidents.items() if state != IncidentState.RESOLVED))
        out.gauge("pttbridge_bridge_incidents_unacknowledged", "incidents nobody has acknowledged yet",
                  db.incidents.get(IncidentState.NEW, 0))
        out.gauge("pttbridge_bridge_gateway_last_seq", "highest seq stored of each gateway",
                  [({"gateway": g.name}, g.last_seq) for g in gateways])
        out.gauge("pttbridge_bridge_gateway_contiguous_seq", "every seq of each gateway up to here is stored",
                  [({"gateway": g.name}, g.contiguous_seq) for g in gateways])
        out.gauge("pttbridge_bridge_gateway_lost_events", "events of each gateway given up on",
                  [({"gateway": g.name}, g.lost) for g in gateways])
        out.gauge("pttbridge_bridge_gateway_online", "1 while a gateway's retained state says it is online",
                  [({"gateway": g.name}, int(bool(g.online))) for g in gateways])
