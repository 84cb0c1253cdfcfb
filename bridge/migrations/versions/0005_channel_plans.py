"""Channel plans: every version of each gateway's channel plan (bridge/plans.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_plans",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Unique: two bridges saving at once cannot both make version n; the loser tries n + 1.
    op.create_index("ux_channel_plans_gateway_version", "channel_plans", ["gateway", "version"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_channel_plans_gateway_version", "channel_plans")
    op.drop_table("channel_plans")
