"""Cases: incidents become cases of a kind, each department's part with its own state and clock
(case_parts), every answer a radio sent (case_answers), and a camera case's verdict. Indexed for
reports by time, kind, department, unit, camera and state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_INCIDENT_INDEXES = (("ix_incidents_category_opened", ["category", "opened_at"]),
                     ("ix_incidents_camera_opened", ["camera", "opened_at"]),
                     ("ix_incidents_source_opened", ["source", "opened_at"]),
                     ("ix_incidents_linked_case", ["linked_case"]))


def upgrade() -> None:
    with op.batch_alter_table("incidents") as t:
        t.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="radio"))
        t.add_column(sa.Column("flow", sa.String(16), nullable=True))
        t.add_column(sa.Column("camera", sa.String(64), nullable=True))
        t.add_column(sa.Column("duty", sa.Text(), nullable=True))
        t.add_column(sa.Column("verdict", sa.String(16), nullable=True))
        t.add_column(sa.Column("verdict_reason", sa.Text(), nullable=True))
        t.add_column(sa.Column("linked_case", sa.Integer(), nullable=True))
    # Who found the incidents already stored: a camera (its street incidents sit at gateway "camera",
    # channel = the camera), a wired input (no unit), else a radio.
    op.execute("UPDATE incidents SET source = 'camera', camera = channel WHERE gateway = 'camera'")
    op.execute("UPDATE incidents SET source = 'wired' WHERE unit IS NULL AND gateway <> 'camera'")
    for name, columns in _INCIDENT_INDEXES:
        op.create_index(name, "incidents", columns)

    op.create_table(
        "case_parts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("dispatched_at", _TIME, nullable=True),
        sa.Column("dispatched_by", sa.String(), nullable=True),
        sa.Column("accepted_at", _TIME, nullable=True),
        sa.Column("arrived_at", _TIME, nullable=True),
        sa.Column("handled_at", _TIME, nullable=True),
        sa.Column("transferred_at", _TIME, nullable=True),
        sa.Column("accept_due", _TIME, nullable=True),
        sa.Column("arrive_due", _TIME, nullable=True),
        sa.Column("resolve_due", _TIME, nullable=True),
        sa.Column("escalated", sa.String(16), nullable=True),
        sa.Column("escalated_at", _TIME, nullable=True),
        sa.Column("dispatch_gateway", sa.String(64), nullable=True),
        sa.Column("dispatch_channel", sa.String(64), nullable=True),
        sa.Column("dispatch_result", sa.String(16), nullable=True),
        sa.Column("radio_check_at", _TIME, nullable=True),
        sa.Column("lone_alert_at", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ux_case_parts_case_department", "case_parts", ["case_id", "department"], unique=True)
    op.create_index("ix_case_parts_opened", "case_parts", ["opened_at"])
    op.create_index("ix_case_parts_kind_opened", "case_parts", ["kind", "opened_at"])
    op.create_index("ix_case_parts_department_opened", "case_parts", ["department", "opened_at"])
    op.create_index("ix_case_parts_unit_state", "case_parts", ["unit", "state"])
    op.create_index("ix_case_parts_state_opened", "case_parts", ["state", "opened_at"])

    op.create_table(
        "case_answers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("unit", sa.String(), nullable=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("call", sa.String(36), nullable=True),
        sa.Column("signal", sa.String(80), nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("part_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ux_case_answers_event", "case_answers", ["event_id"], unique=True)
    op.create_index("ix_case_answers_at", "case_answers", ["at"])
    op.create_index("ix_case_answers_unit_at", "case_answers", ["unit", "at"])
    op.create_index("ix_case_answers_outcome_at", "case_answers", ["outcome", "at"])
    op.create_index("ix_case_answers_call", "case_answers", ["call"])
    op.create_index("ix_case_answers_case", "case_answers", ["case_id"])


def downgrade() -> None:
    op.drop_table("case_answers")
    op.drop_table("case_parts")
    for name, _ in _INCIDENT_INDEXES:
        op.drop_index(name, "incidents")
    with op.batch_alter_table("incidents") as t:
        for column in ("linked_case", "verdict_reason", "verdict", "duty", "camera", "flow", "source"):
            t.drop_column(column)
