"""Queries: what consoles (and the bridge's beacon and metrics) read. Nothing here writes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from bridge.cameras.correlation import CameraStore
from bridge.cameras.geometry import box_deg, haversine_m
from bridge.models import NEW, RESOLVED, ClipRow, EventRow, GatewayRow, IncidentHistoryRow, IncidentRow, UnitRow
from bridge.store.base import Database, event_from_row
from bridge.views import GatewayView, HistoryEntry, IncidentDetail, IncidentView, UnitView
from gateway.events import Kind, format_time


class Queries(Database):
    """What the database holds, as views."""

    def unacknowledged(self) -> int:
        """How many incidents nobody has acknowledged yet (the command-center beacon is lit while any)."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.state == NEW)) or 0)

    def incidents_by_state(self) -> dict[str, int]:
        """How many incidents are in each state (none: not listed)."""
        with self._read() as s:
            rows = s.execute(select(IncidentRow.state, func.count()).group_by(IncidentRow.state)).all()
            return {state: int(n) for state, n in rows}

    def open_incidents(self, limit: int = 200) -> list[IncidentView]:
        """Incidents not yet resolved, newest first."""
        return self.incidents(include_resolved=False, limit=limit)

    def incidents(self, *, include_resolved: bool = True, limit: int = 200) -> list[IncidentView]:
        """Incidents, newest first."""
        with self._read() as s:
            q = select(IncidentRow)
            if not include_resolved:
                q = q.where(IncidentRow.state != RESOLVED)
            rows = s.scalars(q.order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc()).limit(limit)).all()
            return self._incident_views(s, rows)

    def incident(self, incident_id: int) -> IncidentView | None:
        with self._read() as s:
            row = s.get(IncidentRow, incident_id)
            return self._incident_view(s, row) if row is not None else None

    def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        """An incident with its history (oldest first) and its alert events (oldest first)."""
        with self._read() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                return None
            history = s.scalars(
                select(IncidentHistoryRow)
                .where(IncidentHistoryRow.incident_id == incident_id)
                .order_by(IncidentHistoryRow.at, IncidentHistoryRow.id)
            ).all()
            alert_ids = [h.event_id for h in history if h.event_id]
            alerts = s.scalars(
                select(EventRow).where(EventRow.id.in_(alert_ids), EventRow.kind == str(Kind.ALERT))
                .order_by(EventRow.time, EventRow.id)
            ).all() if alert_ids else []
            call_ids = {str(a.detail["call"]) for a in alerts if isinstance(a.detail, dict) and a.detail.get("call")}
            return IncidentDetail(
                incident=self._incident_view(s, row),
                history=[HistoryEntry(h.at, h.actor, h.action, h.note, h.event_id) for h in history],
                alerts=[event_from_row(e) for e in alerts],
                calls=self._calls(s, sorted(call_ids)) if call_ids else [],
                correlation=CameraStore(self.engine).correlation(incident_id),
            )

    def units(self, limit: int | None = None) -> list[UnitView]:
        """Every unit heard, most recently heard first."""
        with self._read() as s:
            q = select(UnitRow, GatewayRow.online).outerjoin(GatewayRow, GatewayRow.name == UnitRow.last_gateway)
            q = q.order_by(case((UnitRow.last_heard.is_(None), 1), else_=0), UnitRow.last_heard.desc(), UnitRow.unit)
            rows = s.execute(q.limit(limit)).all()
            return [self._unit_view(r, {r.last_gateway: online} if r.last_gateway and online is not None else {})
                    for r, online in rows]

    def unit(self, unit: str) -> UnitView | None:
        with self._read() as s:
            row = s.get(UnitRow, unit)
            return self._unit_view(row, self._gateway_online(s, {row.last_gateway})) if row is not None else None

    def gateways(self) -> list[GatewayView]:
        with self._read() as s:
            return [self._gateway_view(r) for r in s.scalars(select(GatewayRow).order_by(GatewayRow.name))]

    def count_events(self, gateway: str | None = None) -> int:
        with self._read() as s:
            q = select(func.count()).select_from(EventRow)
            if gateway is not None:
                q = q.where(EventRow.gateway == gateway)
            return int(s.scalar(q) or 0)

    def clip(self, event_id: str) -> tuple[str, bytes] | None:
        """(codec, bytes) of a call's audio."""
        with self._read() as s:
            row = s.get(ClipRow, event_id)
            return (row.codec, row.data) if row is not None else None

    def open_incidents_near(self, lat: float, lon: float, at: datetime, *, near_m: float,
                            window_s: float) -> list[IncidentView]:
        """Open incidents with a position within ``near_m`` whose last alert is within ``window_s`` of ``at``:
        the ones a new detection there may concern."""
        window = timedelta(seconds=window_s)
        dlat, dlon = box_deg(lat, near_m)
        with self._read() as s:
            rows = s.scalars(select(IncidentRow).where(
                IncidentRow.state != RESOLVED, IncidentRow.last_alert_at.between(at - window, at + window),
                IncidentRow.lat.between(lat - dlat, lat + dlat), IncidentRow.lon.between(lon - dlon, lon + dlon),
            )).all()
            near = [r for r in rows if r.lat is not None and r.lon is not None
                    and haversine_m(lat, lon, r.lat, r.lon) <= near_m]
            return self._incident_views(s, near)

    def nearest_units(self, lat: float, lon: float, *, limit: int = 3, max_age_s: float = 900.0,
                      now: datetime | None = None) -> list[dict[str, Any]]:
        """Units heard recently with a position, nearest first: whom to send."""
        now = now or self.clock()
        with self._read() as s:
            rows = s.execute(
                select(UnitRow.unit, UnitRow.alias, UnitRow.lat, UnitRow.lon, UnitRow.last_heard)
                .where(UnitRow.lat.is_not(None), UnitRow.lon.is_not(None),
                       UnitRow.last_heard >= now - timedelta(seconds=max_age_s))
            ).all()
        ranked = sorted((haversine_m(lat, lon, r.lat, r.lon), r) for r in rows)
        return [{"unit": r.unit, "alias": r.alias, "distance_m": round(d, 1), "heard": format_time(r.last_heard)}
                for d, r in ranked[:limit]]
