"""The initial schema: events, units, gateways, incidents, incident_history.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full rather than importing bridge.models, so that later model changes cannot change
what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)  # bridge.models.UtcDateTime stores through this


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("course_deg", sa.Float(), nullable=True),
        sa.Column("fix_time", _TIME, nullable=True),
        sa.Column("position_source", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
    )
    op.create_index("ix_events_gateway_seq", "events", ["gateway", "seq"])
    op.create_index("ix_events_kind_time", "events", ["kind", "time"])
    op.create_index("ix_events_unit_time", "events", ["unit", "time"])

    op.create_table(
        "gateways",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("contiguous_seq", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )

    op.create_table(
        "units",
        sa.Column("unit", sa.String(), primary_key=True),
        sa.Column("alias", sa.String(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("alt_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("course_deg", sa.Float(), nullable=True),
        sa.Column("position_source", sa.String(), nullable=True),
        sa.Column("fix_time", _TIME, nullable=True),
        sa.Column("last_heard", _TIME, nullable=True),
        sa.Column("last_kind", sa.String(16), nullable=True),
        sa.Column("last_channel", sa.String(64), nullable=True),
        sa.Column("last_gateway", sa.String(64), nullable=True),
        sa.Column("last_event_id", sa.String(36), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("acknowledged_at", _TIME, nullable=True),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("first_event_id", sa.String(36), nullable=False),
        sa.Column("last_event_id", sa.String(36), nullable=False),
        sa.Column("last_alert_at", _TIME, nullable=False),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("position_time", _TIME, nullable=True),
        sa.Column("last_announced", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ix_incidents_state_opened", "incidents", ["state", "opened_at"])
    op.create_index("ix_incidents_unit_state", "incidents", ["unit", "state"])

    op.create_table(
        "incident_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id",
            sa.Integer(),
            sa.ForeignKey("incidents.id", name="fk_incident_history_incident", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(36), nullable=True),
    )
    op.create_index("ix_incident_history_incident_id", "incident_history", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_history")
    op.drop_table("incidents")
    op.drop_table("units")
    op.drop_table("gateways")
    op.drop_table("events")
