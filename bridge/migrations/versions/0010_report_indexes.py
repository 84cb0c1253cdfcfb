"""Indexes for the supervisor's report (bridge/store/report.py): the running parts alone (a partial index:
few rows, whatever a year leaves behind, read for "overdue now"), the parts of a time window with every
column the report reads of them (a covering index: no row looked up), and the incidents of a kind with no
case kind configured (no parts: named beside the figures), by time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("state IN ('new', 'dispatched', 'accepted', 'arrived')")
_UNTIMED = sa.text("flow IS NULL")
_REPORTED = ["opened_at", "kind", "department", "unit", "case_id", "state", "accepted_at", "arrived_at", "handled_at",
             "accept_due", "arrive_due", "resolve_due", "updated_at"]


def upgrade() -> None:
    op.create_index("ix_case_parts_running", "case_parts", ["state"], sqlite_where=_RUNNING, postgresql_where=_RUNNING)
    op.create_index("ix_case_parts_report", "case_parts", _REPORTED)
    op.create_index("ix_incidents_untimed", "incidents", ["opened_at", "category"], sqlite_where=_UNTIMED,
                    postgresql_where=_UNTIMED)


def downgrade() -> None:
    op.drop_index("ix_incidents_untimed", "incidents")
    op.drop_index("ix_case_parts_report", "case_parts")
    op.drop_index("ix_case_parts_running", "case_parts")
