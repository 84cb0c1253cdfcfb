"""Indexes for paging through history newest first: events and incidents by (time, id).

Without them a page of the newest events sorts the whole table first; with them the database walks the
index backwards from the cursor and stops after ``limit + 1`` rows (bridge/history.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_time_id", "events", ["time", "id"])
    op.create_index("ix_incidents_opened_id", "incidents", ["opened_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_opened_id", "incidents")
    op.drop_index("ix_events_time_id", "events")
