"""A gateway's Prometheus metrics (``[gateway] metrics``), served by :class:`monitoring.prometheus.MetricsServer`."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from monitoring.prometheus import Exposition, Labels, MetricsServer

if TYPE_CHECKING:
    from gateway.runner import Gateway

log = logging.getLogger(__name__)


# --- the gateway's metrics -----------------------------------------------------------------------

RADIO_STATES = ("starting", "open", "down", "stopped", "ended")


class GatewayMetrics:
    """What a running :class:`gateway.runner.Gateway` exports; read at each scrape."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started = time.time()

    def _oldest_pending_age(self) -> float:
        """How long the oldest unpublished event has waited: the one question the outbox's stats do not
        answer. A read-only connection of its own per scrape (WAL: readers never block the writer)."""
        path = self.gateway.outbox.path
        if str(path) == ":memory:":
            return 0.0
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
            try:
                row = db.execute("SELECT MIN(created) FROM events WHERE published IS NULL").fetchone()
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.debug("metrics: outbox %s not readable: %s", path, exc)
            return 0.0
        return max(0.0, time.time() - row[0]) if row and row[0] is not None else 0.0

    def render(self) -> str:
        g = self.gateway
        out = Exposition()
        name = {"gateway": g.gw.name}
        stats = g.outbox.stats()
        pending, next_seq = int(stats["pending"] or 0), int(stats["next_seq"] or 1)
        out.gauge("pttbridge_gateway_info", "this gateway (value 1), its name as a label", [(name, 1)])
        out.counter("pttbridge_gateway_events_total", "events appended to the outbox by this process, by kind",
                    [({"kind": k}, n) for k, n in sorted(g.appended.items())])
        out.counter("pttbridge_gateway_events_published_total",
                    "events the broker has acknowledged (PUBACK), since the outbox was created",
                    max(0, next_seq - 1 - pending))
        out.gauge("pttbridge_gateway_outbox_pending", "events in the outbox not yet acknowledged by the broker",
                  pending)
        out.gauge("pttbridge_gateway_outbox_oldest_pending_seconds",
                  "how long the oldest unacknowledged event has waited (0: none waiting)", self._oldest_pending_age())
        out.gauge("pttbridge_gateway_outbox_next_seq", "the seq the next event will get", next_seq)
        out.gauge("pttbridge_gateway_outbox_oldest_seq", "the oldest seq the outbox still holds for replays",
                  int(stats["oldest_seq"] or 0))
        out.gauge("pttbridge_gateway_clips_pending", "audio clips not yet acknowledged by the broker",
                  int(stats.get("clips_pending") or 0))
        out.gauge("pttbridge_gateway_connected", "1 while connected to the broker", int(g.publisher.connected))
        out.counter("pttbridge_gateway_rejected_total", "decoder output refused before it became an event",
                    g.rejected)
        self._radios(out, [drv.snapshot() | {"name": drv.name} for _, drv in g.drivers])
        out.gauge("pttbridge_gateway_start_time_seconds", "when this process started (Unix time)", self.started)
        return out.text()

    @staticmethod
    def _radios(out: Exposition, snapshots: list[dict[str, Any]]) -> None:
        """Per driver: link state and counters; per radio of an audio driver: decodes and input levels."""
        states, reconnects, frames, decoded, rejected = [], [], [], [], []
        levels: list[tuple[Labels, float]] = []
        clipped: list[tuple[Labels, float]] = []
        for snap in snapshots:
            radio = {"radio": str(snap["name"])}
            state = str(snap.get("state"))
            states += [({**radio, "state": s}, int(s == state)) for s in RADIO_STATES]
            reconnects.append((radio, snap.get("reconnects") or 0))
            for key in ("bytes_in", "polls", "changes"):  # serial bytes, Modbus polls, modem-line changes
                if key in snap:
                    frames.append(({**radio, "unit": key}, snap[key] or 0))
            if "decoded" in snap:
                decoded.append((radio, snap["decoded"] or 0))
                rejected.append((radio, snap.get("rejected") or 0))
            for sub, r in (snap.get("radios") or {}).items():  # an audio driver: several radios on one stream
                labels = {"radio": f"{snap['name']}:{sub}"}
                decoded.append((labels, r.get("decoded") or 0))
                rejected.append((labels, r.get("rejected") or 0))
                level = r.get("level")
                if isinstance(level, dict):
                    levels += [({**labels, "measure": "rms"}, level.get("rms_dbfs", -math.inf)),
                               ({**labels, "measure": "peak"}, level.get("peak_dbfs", -math.inf))]
                    clipped.append((labels, level.get("clipped_total") or 0))
        out.gauge("pttbridge_gateway_radio_state", "each driver's link state (1 for the current one)", states)
        out.counter("pttbridge_gateway_radio_reconnects_total", "times a driver's device failed and was reopened",
                    reconnects)
        out.counter("pttbridge_gateway_radio_input_total",
                    "input a driver read: serial bytes (unit=bytes_in), Modbus polls, modem-line changes", frames)
        out.counter("pttbridge_gateway_radio_decoded_total", "frames or signals decoded, per radio", decoded)
        out.counter("pttbridge_gateway_radio_rejected_total", "frames refused (bad checksum, garbage), per radio",
                    rejected)
        out.gauge("pttbridge_gateway_audio_level_dbfs", "input level over the last second (rms, peak), per radio",
                  levels)
        out.counter("pttbridge_gateway_audio_clipped_total", "samples at full scale, per radio", clipped)


def serve_gateway_metrics(gateway: Gateway) -> MetricsServer | None:
    """Start the gateway's endpoint if ``[gateway] metrics`` is set (called by ``Gateway.start``)."""
    listen = gateway.gw.metrics
    if listen is None:
        return None
    metrics = GatewayMetrics(gateway)
    server = MetricsServer(listen, metrics.render, name=f"gateway {gateway.gw.name}")
    server.start()
    return server
