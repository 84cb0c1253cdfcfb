"""Alembic environment for the bridge's database.

The bridge runs its migrations itself on start (``bridge.store.migrate``), handing a connection in
``config.attributes["connection"]``; there is no alembic.ini. A developer writing a new revision runs::

    python -c "from bridge.store import new_revision; new_revision('what changed')"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bridge.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table, as Alembic advises.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("bridge migrations run from bridge.store.migrate(), which hands over a connection")
_run(connection)
