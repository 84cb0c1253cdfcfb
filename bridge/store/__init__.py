"""The bridge's storage, by concern; :class:`Store` is all of them on one engine.

    engine.py     the database URL, the engine (SQLite pragmas, PostgreSQL pool), the Alembic migrations
    base.py       what the parts share: sessions, the clock, rows into views (bridge/views.py)
    ingest.py     Ingest: events stored idempotently, units, incidents from alerts, seq gaps, gateway
                  states, audio clips
    cases.py      Cases: case kinds and their parts, dispatches to radios, the radios' answers, lone workers,
                  transfers to outside systems (rules.py: what the configuration says of them)
    incidents.py  Incidents: what operators do (acknowledge, resolve, note, assign, alias) and what the
                  bridge does by itself (street incidents, suggestions, escalation, re-announcement)
    queries.py    Queries: what consoles read
    report.py     Reports: the supervisor's figures of cases over a window (bridge/report.py)

SQLite (default, WAL) and PostgreSQL behave the same here. Each part runs every method in its own
session and transaction, so a :class:`Store` (or any one part, e.g. a console's :class:`Queries`) is
thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from bridge.store.base import ClipError, Database, IncidentError, event_from_row, read_only, unavailable, utcnow
from bridge.store.cases import AnswerResult, Cases
from bridge.store.engine import MIGRATIONS, database_url, make_engine, migrate, new_revision, redact
from bridge.store.incidents import ANSWERABLE, Incidents
from bridge.store.ingest import CLIP_MAGIC, GapReport, Ingest, IngestResult
from bridge.store.queries import Queries
from bridge.store.report import Reports
from bridge.store.rules import CaseRules

__all__ = [
    "ANSWERABLE",
    "CLIP_MAGIC",
    "MIGRATIONS",
    "AnswerResult",
    "CaseRules",
    "Cases",
    "ClipError",
    "Database",
    "GapReport",
    "IncidentError",
    "Incidents",
    "Ingest",
    "IngestResult",
    "Queries",
    "Reports",
    "Store",
    "database_url",
    "event_from_row",
    "make_engine",
    "migrate",
    "new_revision",
    "read_only",
    "redact",
    "unavailable",
]


class Store(Ingest, Incidents, Queries, Reports):
    """The bridge's database: ingest, incidents, queries and reports on one engine."""

    @classmethod
    def open(cls, url: str, *, incident_window_s: float = 600.0, migrate_schema: bool = True,
             limits: Mapping[str, tuple[float | None, float | None]] | None = None, future_s: float = 300.0,
             clock: Callable[[], datetime] = utcnow, rules: CaseRules | None = None) -> Store:
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine, incident_window_s=incident_window_s, limits=limits, future_s=future_s, clock=clock,
                   rules=rules)
