"""The bridge's database connection and schema: the URL it is found at, the engine, the migrations.

SQLite files get WAL, full sync, a busy timeout and foreign keys, and write transactions that take the
lock at once (``BEGIN IMMEDIATE``); PostgreSQL a pool whose connections are pinged when they come out
after lying idle. Schema changes go through Alembic
(``bridge/migrations``); :func:`migrate` applies them on start, one bridge at a time on PostgreSQL.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from config.private import private_sqlite
from config.schema import Config

MIGRATIONS = Path(__file__).parents[1] / "migrations"
_MIGRATION_LOCK = 0x7074_7462  # "ptbr": one bridge migrates at a time on a shared PostgreSQL
#: A pooled PostgreSQL connection idle longer than this is pinged before use (a server restarted meanwhile
#: has closed it). One handed back a moment ago is not: the ingest thread takes one a few times per batch,
#: and a ping each time was a round trip per transaction; a connection lost since is one lost in the middle
#: of a transaction, which the bridge retries either way.
PING_IDLE_S = 1.0


def database_url(config: Config) -> str:
    """``PTTBRIDGE_DATABASE_URL``, else ``bridge.database_url``, else SQLite at ``{data_dir}/bridge.sqlite``."""
    env = os.environ.get("PTTBRIDGE_DATABASE_URL")
    if env:
        return env
    if config.bridge.database_url:
        return config.bridge.database_url
    return f"sqlite:///{config.data_dir / 'bridge.sqlite'}"


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, full sync, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _pinged_when_idle(create_engine(parsed))
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        private_sqlite(Path(parsed.database))  # positions, names, voice: the owner's alone, whatever the umask
    # One pool shared by the ingest thread and whoever queries: connections move between threads.
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite, which would BEGIN late and not at all for DDL
        # (SQLAlchemy's documented recipe); SQLAlchemy's "begin" event below emits BEGIN instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers (consoles) never block the writer
        cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the broker gets its ack
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the lock at once: a deferred one that read first could not upgrade
        # once another writer had committed (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pttbridge_write") else "BEGIN")

    return engine


def _pinged_when_idle(engine: Engine) -> Engine:
    """SQLAlchemy's pre-ping, for connections idle more than PING_IDLE_S only."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["pttbridge_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("pttbridge_idle_since")
        if since is not None and time.monotonic() - since <= PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(str(exc)) from exc  # the pool drops it and connects anew
            raise

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; run by every bridge on start)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def new_revision(message: str) -> None:
    """Write a new migration into ``bridge/migrations/versions`` from what the models say now
    (for developers; compared against a scratch SQLite database at the current head)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.sqlite")
        migrate(engine)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True)
        engine.dispose()
