"""Cameras, their detections, incidents' cameras, detections and evidence; incident categories and
time limits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as t:  # batch: SQLite alters a table by copying it
        t.add_column(sa.Column("category", sa.String(32), nullable=False, server_default="alert"))
        t.add_column(sa.Column("ack_due", _TIME, nullable=True))
        t.add_column(sa.Column("resolve_due", _TIME, nullable=True))
        t.add_column(sa.Column("escalated", sa.String(16), nullable=True))
        t.add_column(sa.Column("escalated_at", _TIME, nullable=True))
        t.add_column(sa.Column("suggested", sa.JSON(), nullable=True))
    op.create_index("ix_incidents_due", "incidents", ["state", "ack_due", "resolve_due"])
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("fov_deg", sa.Float(), nullable=False),
        sa.Column("range_m", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("stream_url", sa.String(), nullable=True),
        sa.Column("snapshot_url", sa.String(), nullable=True),
        sa.Column("credentials_env", sa.String(), nullable=True),
        sa.Column("presets", sa.JSON(), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("snapshot_url", sa.String(), nullable=True),
        sa.Column("clip_url", sa.String(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=True),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
    )
    op.create_index("ix_detections_time", "detections", ["time"])
    op.create_index("ix_detections_camera_time", "detections", ["camera", "time"])
    op.create_index("ux_detections_source", "detections", ["source", "source_id"], unique=True)
    op.create_table(
        "incident_cameras",
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("off_axis_deg", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_table(
        "incident_detections",
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("detection_id", sa.Integer(), sa.ForeignKey("detections.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_evidence_incident_id", "evidence", ["incident_id"])


def downgrade() -> None:
    for table in ("evidence", "incident_detections", "incident_cameras", "detections", "cameras"):
        op.drop_table(table)
    op.drop_index("ix_incidents_due", "incidents")
    with op.batch_alter_table("incidents") as t:
        for column in ("suggested", "escalated_at", "escalated", "resolve_due", "ack_due", "category"):
            t.drop_column(column)
