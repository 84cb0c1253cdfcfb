"""The unit a dispatcher sent to an incident.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as t:
        t.add_column(sa.Column("assigned_unit", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as t:
        t.drop_column("assigned_unit")
