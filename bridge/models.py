"""The bridge's database: SQLAlchemy 2.0 typed models, the same on SQLite and PostgreSQL.

    events            every valid event once (primary key: the event id, the de-duplication key)
    units             one row per radio identity: alias, last position, last heard, where and how
    gateways          one row per gateway: online state, last state payload, seq bookkeeping for gaps
    incidents         cases: alerts grouped per unit, camera-found street events, cases opened by hand;
                      new -> acknowledged -> resolved (handled | false_alarm), a camera case verified
                      (valid | false_detection); ``category`` is the case kind
    case_parts        each department's part of a case: new -> dispatched -> accepted -> arrived -> handled
                      (or transferred; closed when its case is resolved first), each transition's time a
                      column, with the part's limits
    case_answers      every answer a radio sent (status, DTMF code, APRS reply, Modbus input), applied to
                      a case part or not, and why
    incident_history  who did what to an incident, when (the bridge itself is the actor "bridge")
    clips             the audio of received transmissions (call events), with its SHA-256
    cameras           the camera registry: where each camera is, where it looks, how far it sees
    detections        what cameras detected (one row per detection; Frigate's updates change it in place)
    incident_cameras  the cameras that can see an incident's position, ranked
    incident_detections   detections near an incident in place and time
    evidence          snapshots and clips fetched for an incident, with their SHA-256
    channel_plans     every version of each gateway's channel plan, who saved it and when
    audit_log         every command an operator sent the bridge, done or refused, and why (bridge/audit.py)
    report_days       a settled day's parts and camera verdicts summarised once for reports (bridge/store/report.py);
                      forgotten by the database itself (triggers, migration 0011) when anything of that day changes

Times are timezone-aware UTC in Python on both databases (:class:`UtcDateTime`); JSON columns are
plain JSON (PostgreSQL ``json``, not ``jsonb``, which refuses ``\\u0000`` inside strings that a
decoder may legitimately pass through in ``detail``). The schema is created and changed only by the
Alembic migrations in ``bridge/migrations``; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    any_,
    bindparam,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from bridge.views import IncidentState, Resolution

# Incident states and resolutions, as stored and as published (plain text in the database).
NEW = IncidentState.NEW.value
ACKNOWLEDGED = IncidentState.ACKNOWLEDGED.value
RESOLVED = IncidentState.RESOLVED.value
STATES = tuple(s.value for s in IncidentState)
RESOLUTIONS = tuple(r.value for r in Resolution)

#: The actor recorded in incident history for what the bridge did by itself (open, join an alert).
BRIDGE_ACTOR = "bridge"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in Python; SQLite keeps it as naive UTC text, PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the bridge stores UTC times only")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC so that text comparison orders correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def among(s: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(array)``: one statement text whatever the number of
    values, so it is prepared once, where an IN list of each batch's length was rendered, sent and planned
    anew by every batch (a batch asks for tens of gateways, units, incidents)."""
    return _among(s.get_bind().dialect.name, column, None, {"value": list(values)})


def among_bound(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """:func:`among` for a statement built once: the values are bound at execution as ``name`` (a list)."""
    return _among(dialect, column, name, {})


def _among(dialect: str, column: Any, name: str | None, value: dict[str, Any]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        found: ColumnElement[bool] = column == any_(bindparam(name, type_=postgresql.ARRAY(column.type), **value))
        return found
    listed: ColumnElement[bool] = column.in_(bindparam(name, expanding=True, **value))
    return listed


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7 from the gateway
    gateway: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    time: Mapped[datetime]
    unit: Mapped[str | None] = mapped_column(String)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    alt_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    course_deg: Mapped[float | None] = mapped_column(Float)
    fix_time: Mapped[datetime | None]
    position_source: Mapped[str | None] = mapped_column(String)
    detail: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]

    __table_args__ = (
        # Not unique: a gateway whose outbox was wiped starts again at 1 with new ids; gaps are per seq.
        Index("ix_events_gateway_seq", "gateway", "seq"),
        Index("ix_events_unit_time", "unit", "time"),
        Index("ix_events_kind_time", "kind", "time"),
        Index("ix_events_time_id", "time", "id"),  # history pages, newest first (bridge/history.py)
    )


class UnitRow(Base):
    __tablename__ = "units"

    unit: Mapped[str] = mapped_column(String, primary_key=True)  # protocol-qualified: mdc:1234
    alias: Mapped[str | None] = mapped_column(String)  # the officer or vehicle, set by dispatchers
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    alt_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    course_deg: Mapped[float | None] = mapped_column(Float)
    position_source: Mapped[str | None] = mapped_column(String)
    fix_time: Mapped[datetime | None]  # the receiver's fix time, else the time of the event carrying it
    last_heard: Mapped[datetime | None]
    last_kind: Mapped[str | None] = mapped_column(String(16))
    last_channel: Mapped[str | None] = mapped_column(String(64))
    last_gateway: Mapped[str | None] = mapped_column(String(64))
    last_event_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime]


class GatewayRow(Base):
    __tablename__ = "gateways"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(default=False)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the last retained state payload
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # highest seq seen
    # Every seq up to this one is stored, or was given up as lost after the replay requests failed.
    contiguous_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    lost: Mapped[int] = mapped_column(BigInteger, default=0)  # events given up as lost, in total
    updated_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit: Mapped[str | None] = mapped_column(String)  # null for an alert from a wired input (no radio)
    gateway: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=NEW)
    resolution: Mapped[str | None] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String)  # what raised it, e.g. the channel rule's label
    opened_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String)
    first_event_id: Mapped[str] = mapped_column(String(36))
    last_event_id: Mapped[str] = mapped_column(String(36))
    last_alert_at: Mapped[datetime]
    alert_count: Mapped[int] = mapped_column(Integer, default=1)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_time: Mapped[datetime | None]
    last_announced: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # "alert" for radio and wired alerts, else the street-event category a camera detected
    category: Mapped[str] = mapped_column(String(32), default="alert", server_default="alert")
    ack_due: Mapped[datetime | None]  # escalated if not acknowledged by then
    resolve_due: Mapped[datetime | None]  # escalated if not resolved by then
    escalated: Mapped[str | None] = mapped_column(String(16))  # "ack" | "resolve": which limit it overran
    escalated_at: Mapped[datetime | None]
    suggested: Mapped[list[Any] | None] = mapped_column(JSON)  # nearest units: [{unit, distance_m, heard}]
    assigned_unit: Mapped[str | None] = mapped_column(String)  # who the dispatcher sent
    # --- the case (bridge/store/cases.py) ---
    # Who found it: radio (an alert), wired (an input with no radio), camera (a street event), dispatcher
    # (opened by hand), needs_help (a unit on a case asked for help), lone_worker (a unit on a case fell silent)
    source: Mapped[str] = mapped_column(String(16), default="radio", server_default="radio")
    flow: Mapped[str | None] = mapped_column(String(16))  # single | lead | joint | transfer; None: kind not configured
    camera: Mapped[str | None] = mapped_column(String(64))  # the camera that found it (or where it was opened)
    duty: Mapped[str | None] = mapped_column(Text)  # the legal duty, as configured when it opened
    verdict: Mapped[str | None] = mapped_column(String(16))  # valid | false_detection (camera cases, on resolving)
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    linked_case: Mapped[int | None] = mapped_column(Integer)  # the case a needs_help or lone_worker alert is of

    __table_args__ = (
        Index("ix_incidents_state_opened", "state", "opened_at"),
        Index("ix_incidents_due", "state", "ack_due", "resolve_due"),
        Index("ix_incidents_unit_state", "unit", "state"),
        Index("ix_incidents_opened_id", "opened_at", "id"),  # history pages, newest first
        # Reports: cases by kind, by camera (the valid-case rate), by who found them, over time.
        Index("ix_incidents_category_opened", "category", "opened_at"),
        Index("ix_incidents_camera_opened", "camera", "opened_at"),
        Index("ix_incidents_source_opened", "source", "opened_at"),
        Index("ix_incidents_linked_case", "linked_case"),
        # Incidents of no configured case kind (no parts), named beside a report's figures (migration 0010).
        Index("ix_incidents_untimed", "opened_at", "category", sqlite_where=text("flow IS NULL"),
              postgresql_where=text("flow IS NULL")),
    )


#: A part whose clocks still run (bridge/store/cases.py: RUNNING), as a partial index's condition.
_RUNNING_PARTS = text("state IN ('new', 'dispatched', 'accepted', 'arrived')")


class CasePartRow(Base):
    """One department's part of a case, with its own state and clock. The time of every transition is a
    column (null until it happened), and so is each limit's due time, so that reports aggregate "time to
    accept" (``accepted_at - opened_at``) and "within its limit" (``accepted_at <= accept_due``) in SQL.
    ``kind`` repeats the case's kind so that reports by kind and department need no join."""

    __tablename__ = "case_parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # the case's kind (incidents.category)
    department: Mapped[str] = mapped_column(String(64))  # or the outside system's name (flow transfer)
    role: Mapped[str] = mapped_column(String(16))  # single | lead | assist | joint | transfer
    # new | dispatched | accepted | arrived | handled | transferred | closed (its case resolved before)
    state: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String)  # the unit sent
    opened_at: Mapped[datetime]  # the part's clock starts here (the case's opening, or when it was added)
    dispatched_at: Mapped[datetime | None]
    dispatched_by: Mapped[str | None] = mapped_column(String)
    accepted_at: Mapped[datetime | None]  # each clock stops on the transition it times
    arrived_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    transferred_at: Mapped[datetime | None]  # the outside system's receipt
    accept_due: Mapped[datetime | None]  # opened_at + accept_s
    arrive_due: Mapped[datetime | None]
    resolve_due: Mapped[datetime | None]
    escalated: Mapped[str | None] = mapped_column(String(16))  # accept | arrive | resolve: the last limit overrun
    escalated_at: Mapped[datetime | None]
    dispatch_gateway: Mapped[str | None] = mapped_column(String(64))  # where the dispatch went
    dispatch_channel: Mapped[str | None] = mapped_column(String(64))
    dispatch_result: Mapped[str | None] = mapped_column(String(16))  # the gateway's last word: sent, acked, ...
    radio_check_at: Mapped[datetime | None]  # the lone-worker radio check, when sent
    lone_alert_at: Mapped[datetime | None]  # the lone-worker alert, when raised
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ux_case_parts_case_department", "case_id", "department", unique=True),
        Index("ix_case_parts_opened", "opened_at"),
        Index("ix_case_parts_kind_opened", "kind", "opened_at"),
        Index("ix_case_parts_department_opened", "department", "opened_at"),
        Index("ix_case_parts_unit_state", "unit", "state"),
        Index("ix_case_parts_state_opened", "state", "opened_at"),
        # Reports (migration 0010): the running parts alone; a window's parts with all the report reads.
        Index("ix_case_parts_running", "state", sqlite_where=_RUNNING_PARTS, postgresql_where=_RUNNING_PARTS),
        Index("ix_case_parts_report", "opened_at", "kind", "department", "unit", "case_id", "state", "accepted_at",
              "arrived_at", "handled_at", "accept_due", "arrive_due", "resolve_due", "updated_at"),
    )


class CaseAnswerRow(Base):
    """An answer a radio sent (a status, a DTMF code, an APRS reply, a Modbus input) and what became of it:
    ``applied`` to a case part, or not (``no_open_case``, ``no_unit``, ``unchanged``), or ``waiting`` for
    the unit of its transmission (a DTMF code carries none)."""

    __tablename__ = "case_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))  # the event that carried it
    at: Mapped[datetime]  # the event's time (never past the bridge's clock)
    unit: Mapped[str | None] = mapped_column(String)
    gateway: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    call: Mapped[str | None] = mapped_column(String(36))  # the transmission it came in
    signal: Mapped[str] = mapped_column(String(80))  # what was sent: "fleetsync status 11", "dtmf *21*", ...
    transition: Mapped[str] = mapped_column(String(16))  # accepted | arrived | handled | needs_help
    outcome: Mapped[str] = mapped_column(String(16))  # applied | no_open_case | no_unit | unchanged | waiting
    case_id: Mapped[int | None] = mapped_column(Integer)
    part_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ux_case_answers_event", "event_id", unique=True),
        Index("ix_case_answers_at", "at"),
        Index("ix_case_answers_unit_at", "unit", "at"),
        Index("ix_case_answers_outcome_at", "outcome", "at"),
        Index("ix_case_answers_call", "call"),
        Index("ix_case_answers_case", "case_id"),
    )


class IncidentHistoryRow(Base):
    __tablename__ = "incident_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String)  # an operator's name, or "bridge"
    # opened | alert | acknowledged | resolved | note | radio_ack (asked the radio to acknowledge, and its result)
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(36))  # the alert, for opened and alert


class ClipRow(Base):
    __tablename__ = "clips"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the call event it is the audio of
    gateway: Mapped[str] = mapped_column(String(64))
    codec: Mapped[str] = mapped_column(String(16))  # flac | opus
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes as received: evidence must be checkable
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]


class CameraRow(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String, default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)  # None: sees all round
    fov_deg: Mapped[float] = mapped_column(Float)
    range_m: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(16))  # fixed | ptz | vehicle
    unit: Mapped[str | None] = mapped_column(String)  # a vehicle camera moves with this unit
    stream_url: Mapped[str | None] = mapped_column(String)
    snapshot_url: Mapped[str | None] = mapped_column(String)
    credentials_env: Mapped[str | None] = mapped_column(String)  # the variable's name, never the secret
    presets: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(16), default="config")  # config | csv | cli
    updated_at: Mapped[datetime]


class DetectionRow(Base):
    __tablename__ = "detections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    time: Mapped[datetime]
    lat: Mapped[float | None] = mapped_column(Float)  # the detection's own position, else the camera's
    lon: Mapped[float | None] = mapped_column(Float)
    snapshot_url: Mapped[str | None] = mapped_column(String)
    clip_url: Mapped[str | None] = mapped_column(String)
    source: Mapped[str] = mapped_column(String(16))  # generic | frigate
    source_id: Mapped[str | None] = mapped_column(String(128))
    phase: Mapped[str] = mapped_column(String(8))  # new | update | end
    raw: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    # What a dispatcher reads of it (Frigate's fields and its tracked-object updates; see feeds.py):
    zones: Mapped[list[Any] | None]  # zone names it entered or is in
    sub_label: Mapped[str | None] = mapped_column(String(128))  # a recognised person or vehicle
    sub_label_score: Mapped[float | None] = mapped_column(Float)
    plate: Mapped[str | None] = mapped_column(String(32))  # a licence plate read on it
    plate_score: Mapped[float | None] = mapped_column(Float)
    face: Mapped[str | None] = mapped_column(String(128))  # Frigate's face recognition, whatever its score
    face_score: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str | None] = mapped_column(Text)  # a generative-AI description
    classifications: Mapped[dict[str, Any] | None]  # custom model -> [value, score]
    box: Mapped[list[Any] | None]  # x1, y1, x2, y2 in the camera's detect frame (pixels)
    stationary: Mapped[bool | None]
    end_time: Mapped[datetime | None]  # when the object left the picture
    speed_kmh: Mapped[float | None] = mapped_column(Float)  # estimated now (a speed zone)
    avg_speed_kmh: Mapped[float | None] = mapped_column(Float)
    direction_deg: Mapped[float | None] = mapped_column(Float)  # of travel in the picture: 0 right, 90 down

    __table_args__ = (
        Index("ix_detections_time", "time"),
        Index("ix_detections_camera_time", "camera", "time"),
        Index("ux_detections_source", "source", "source_id", unique=True),
    )


class IncidentCameraRow(Base):
    __tablename__ = "incident_cameras"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    distance_m: Mapped[float] = mapped_column(Float)
    off_axis_deg: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class IncidentDetectionRow(Base):
    __tablename__ = "incident_detections"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)  # how close in place and time, 0..1
    added_at: Mapped[datetime]


class EvidenceRow(Base):
    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # snapshot | clip
    time: Mapped[datetime]  # when it was fetched
    source: Mapped[str] = mapped_column(String)  # the URL, credentials removed
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)



class ChannelPlanRow(Base):
    """One version of a gateway's channel plan (bridge/plans.py); a new version for every change."""

    __tablename__ = "channel_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per gateway
    plan: Mapped[list[Any]] = mapped_column(JSON)  # the channels, as configuration tables
    author: Mapped[str] = mapped_column(String(64))  # the operator who saved it
    created_at: Mapped[datetime]

    __table_args__ = (Index("ux_channel_plans_gateway_version", "gateway", "version", unique=True),)


class AuditRow(Base):
    """One command an operator sent the bridge (bridge/cmd), whether it was carried out or refused."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    operator: Mapped[str] = mapped_column(String)  # as the command named it ("" if it named none)
    action: Mapped[str] = mapped_column(String(32))  # ack | resolve | note | assign | alias | plan | what came
    target: Mapped[str] = mapped_column(String)  # incident:12, unit:mdc:1234, gateway:xixing-1, or ""
    outcome: Mapped[str] = mapped_column(String(16))  # done | refused
    reason: Mapped[str | None] = mapped_column(Text)  # why it was refused
    detail: Mapped[str | None] = mapped_column(Text)  # the command's other fields, in short


#: The PostgreSQL advisory lock a report summarising a day holds, and every change of a part or case takes
#: shared (migration 0011's triggers, which name the same number).
REPORT_DAYS_LOCK = 0x7265706F7274


class ReportDayRow(Base):
    """One UTC day of cases, summarised for reports once nothing of it can change by time alone
    (bridge/store/report.py reads it instead of the day's parts). Triggers on ``case_parts`` and
    ``incidents`` (migration 0011) delete the day's row when any of its parts or cases change; the next
    report summarises it again."""

    __tablename__ = "report_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    #: The last limit still to pass for the day's figures to hold (a running part not yet stopped): the
    #: summary answers only reports whose "now" is past it (null: none).
    settled_after: Mapped[datetime | None]
    parts: Mapped[bytes] = mapped_column(LargeBinary)  # one packed record per part (bridge/store/report.py)
    names: Mapped[dict[str, Any]] = mapped_column(JSON)  # the record's codes' names, camera verdicts, untimed
    built_at: Mapped[datetime]
