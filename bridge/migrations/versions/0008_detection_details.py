"""What a dispatcher reads of a camera detection: Frigate's recognised name (sub_label) and licence
plate with their scores, face recognition, a generative-AI description, custom classifications, the
box, zones, whether it stands still, when it ended, and its estimated speed and direction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("zones", sa.JSON()),
    ("sub_label", sa.String(128)),
    ("sub_label_score", sa.Float()),
    ("plate", sa.String(32)),
    ("plate_score", sa.Float()),
    ("face", sa.String(128)),
    ("face_score", sa.Float()),
    ("description", sa.Text()),
    ("classifications", sa.JSON()),
    ("box", sa.JSON()),
    ("stationary", sa.Boolean()),
    ("end_time", sa.DateTime(timezone=True)),
    ("speed_kmh", sa.Float()),
    ("avg_speed_kmh", sa.Float()),
    ("direction_deg", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("detections") as t:  # batch: SQLite alters a table by copying it
        for name, kind in _COLUMNS:
            t.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("detections") as t:
        for name, _ in reversed(_COLUMNS):
            t.drop_column(name)
