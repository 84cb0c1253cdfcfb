"""Report days: each settled UTC day's parts and camera verdicts summarised once for the supervisor's
report (bridge/store/report.py), so that a year's report reads 365 rows, not every part of the year. The
database itself forgets a day when anything of it changes: triggers on ``case_parts`` (any insert,
update, delete: the days of the part's old and new opening) and on ``incidents`` (a change of what the
report reads of a case: its days and those of its parts). On PostgreSQL the triggers take a shared
advisory lock that the report takes exclusively while it summarises a day, so that a change committed
meanwhile still deletes the summary it raced with (SQLite's writers are serialised already).

A later migration that rebuilds ``case_parts`` or ``incidents`` on SQLite (``batch_alter_table``) drops
these triggers: create them again after it (``create_triggers``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The advisory lock a report summarising a day takes exclusively, and every change of a day shared.
LOCK = 0x7265706F7274  # "report"
#: What the report reads of a case: a change of any of these changes its days' figures.
_CASE_COLUMNS = ("opened_at", "category", "source", "flow", "camera", "verdict")

_SQLITE_DAY = "substr({}, 1, 10)"  # naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'
_PG_DAY = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _forget(day: str, row: str) -> str:
    """SQL: delete the summary of the day ``row`` (OLD or NEW) opened on; ``day`` the dialect's day format."""
    return f"DELETE FROM report_days WHERE day = {day.format(row + '.opened_at')};"


def _forget_parts(day: str, row: str) -> str:
    """SQL: delete the summaries of the days the parts of the case ``row`` opened on."""
    return f"DELETE FROM report_days WHERE day IN (SELECT {day.format('opened_at')} FROM case_parts " \
           f"WHERE case_id = {row}.id);"


def _sqlite() -> list[str]:
    forget, forget_parts = partial(_forget, _SQLITE_DAY), partial(_forget_parts, _SQLITE_DAY)
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _CASE_COLUMNS)
    return [
        f"CREATE TRIGGER report_days_part_inserted AFTER INSERT ON case_parts BEGIN {forget('NEW')} END",
        f"CREATE TRIGGER report_days_part_updated AFTER UPDATE ON case_parts BEGIN {forget('OLD')} {forget('NEW')} END",
        f"CREATE TRIGGER report_days_part_deleted AFTER DELETE ON case_parts BEGIN {forget('OLD')} END",
        f"CREATE TRIGGER report_days_case_inserted AFTER INSERT ON incidents BEGIN {forget('NEW')} END",
        f"CREATE TRIGGER report_days_case_updated AFTER UPDATE ON incidents WHEN {changed} "
        f"BEGIN {forget('OLD')} {forget('NEW')} {forget_parts('NEW')} END",
        f"CREATE TRIGGER report_days_case_deleted BEFORE DELETE ON incidents BEGIN {forget('OLD')} "
        f"{forget_parts('OLD')} END",
    ]


def _postgresql() -> list[str]:
    forget, forget_parts = partial(_forget, _PG_DAY), partial(_forget_parts, _PG_DAY)
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _CASE_COLUMNS)
    return [
        f"""CREATE FUNCTION report_days_forget_part() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({LOCK});
            IF TG_OP <> 'INSERT' THEN {forget('OLD')} END IF;
            IF TG_OP <> 'DELETE' THEN {forget('NEW')} END IF;
            RETURN NULL;
        END $$""",
        f"""CREATE FUNCTION report_days_forget_case() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({LOCK});
            IF TG_OP = 'INSERT' THEN {forget('NEW')} RETURN NULL; END IF;
            {forget('OLD')} {forget_parts('OLD')}
            IF TG_OP = 'UPDATE' THEN {forget('NEW')} RETURN NULL; END IF;
            RETURN OLD;
        END $$""",
        "CREATE TRIGGER report_days_part AFTER INSERT OR UPDATE OR DELETE ON case_parts FOR EACH ROW "
        "EXECUTE FUNCTION report_days_forget_part()",
        "CREATE TRIGGER report_days_case_inserted AFTER INSERT ON incidents FOR EACH ROW "
        "EXECUTE FUNCTION report_days_forget_case()",
        f"CREATE TRIGGER report_days_case_updated AFTER UPDATE ON incidents FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION report_days_forget_case()",
        "CREATE TRIGGER report_days_case_deleted BEFORE DELETE ON incidents FOR EACH ROW "
        "EXECUTE FUNCTION report_days_forget_case()",
    ]


def create_triggers() -> None:
    for statement in _postgresql() if op.get_bind().dialect.name == "postgresql" else _sqlite():
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "report_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("settled_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parts", sa.LargeBinary(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE report_days ALTER COLUMN parts SET STORAGE EXTERNAL")  # packed numbers: no pglz
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (("report_days_part", "case_parts"), ("report_days_case_inserted", "incidents"),
                               ("report_days_case_updated", "incidents"), ("report_days_case_deleted", "incidents")):
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute("DROP FUNCTION report_days_forget_part()")
        op.execute("DROP FUNCTION report_days_forget_case()")
    else:
        for event in ("part_inserted", "part_updated", "part_deleted", "case_inserted", "case_updated", "case_deleted"):
            op.execute(f"DROP TRIGGER report_days_{event}")
    op.drop_table("report_days")
