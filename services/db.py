"""Database access: one engine and session factory per URL, and schema migrations.

SQLite is the embedded default; PostgreSQL in production and tests. Both get the same schema
from the Alembic migrations in ``services/migrations``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")

log = logging.getLogger(__name__)


class SchemaBehind(RuntimeError):
    """The database has not been migrated to this version's schema."""

    def __init__(self, current: str | None, head: str):
        self.current, self.head = current, head
        where = f"at {current}" if current else "empty"
        super().__init__(
            f"database schema is {where}, this version needs {head}: run `pension migrate`"
        )


def normalise_url(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``postgres://`` forms and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# A stalled or unreachable PostgreSQL must turn into a quick, honest 503, not a hung request.
CONNECT_TIMEOUT_SECONDS = 2  # libpq's smallest useful value; the whole start-up, per address
POOL_TIMEOUT_SECONDS = 3
PING_TIMEOUT_SECONDS = 1.0  # a pooled connection that does not answer SELECT 1 in this is cut
# A connection back in the pool for less than this is handed out without a ping: under load
# that saves a round trip per unit of work, and one that died meanwhile fails its statement,
# which invalidates the pool as a failed ping would.
PING_AFTER_IDLE_SECONDS = 0.25
QUICK_STATEMENT_TIMEOUT_MS = 1000  # Database.quick: single small statements of the message path
STALL_MARGIN_SECONDS = 1.0  # beyond the statement timeout: the server would have answered
# libpq's own guards against a dead network path (the OS defaults wait 2 hours / ~15 minutes):
# keepalive probes on an idle socket, and tcp_user_timeout for data sent but never acknowledged.
LIBPQ_OPTIONS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


class StallGuard:
    """Cuts the socket of a PostgreSQL call that has not answered by its deadline.

    libpq has no client-side limit on a query: a server (or a proxy, or a NAT box) that keeps
    the TCP connection open but stops answering leaves the caller waiting for the OS — TCP
    keepalives are acknowledged by whoever holds the socket, so they do not help. One daemon
    thread per database watches the calls in flight; at the deadline it shuts the socket down,
    libpq reports the connection lost, SQLAlchemy discards it and the caller gets an
    ``OperationalError`` (a 503), seconds after the stall began.
    """

    TICK_SECONDS = 0.1

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._watched: dict[int, tuple[float, object]] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, dbapi_connection, seconds: float) -> Iterator[None]:
        self.start(dbapi_connection, seconds)
        try:
            yield
        finally:
            self.stop(dbapi_connection)

    def start(self, dbapi_connection, seconds: float) -> None:
        with self._mutex:
            self._watched[id(dbapi_connection)] = (time.monotonic() + seconds, dbapi_connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-stall", daemon=True)
                self._thread.start()

    def stop(self, dbapi_connection) -> None:
        with self._mutex:
            self._watched.pop(id(dbapi_connection), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK_SECONDS)
            now = time.monotonic()
            with self._mutex:  # held while cutting: a call that ends meanwhile is not cut late
                late = [(key, conn) for key, (due, conn) in self._watched.items() if due <= now]
                for key, conn in late:
                    del self._watched[key]
                    _cut(conn)


def _cut(dbapi_connection) -> None:
    """Shut the libpq socket down (a duplicate descriptor: libpq still owns and closes its own)."""
    try:
        descriptor = os.dup(dbapi_connection.pgconn.socket)
    except Exception:  # noqa: BLE001 — already closed: nothing left to cut
        return
    log.error("PostgreSQL did not answer in time: connection cut")
    with socket.socket(fileno=descriptor) as stalled, suppress(OSError):
        stalled.shutdown(socket.SHUT_RDWR)


class Database:
    def __init__(self, url: str, *, statement_timeout_ms: int | None = None, **engine_options):
        """``statement_timeout_ms`` bounds every statement (PostgreSQL): set it for the web
        service, where a request must answer within seconds; batch commands leave it off."""
        self.url = normalise_url(url)
        self.statement_timeout_ms = statement_timeout_ms
        if self.url.startswith("postgresql"):
            self.stall_guard = StallGuard()
        self.engine: Engine = self._engine(**engine_options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_ok = False

    def _engine(self, timeout_ms: int | None = None, **options) -> Engine:
        timeout_ms = timeout_ms or self.statement_timeout_ms
        postgres = self.url.startswith("postgresql")
        if postgres:
            options.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
            options.setdefault("connect_args", dict(LIBPQ_OPTIONS))
        # PostgreSQL: the pessimistic ping is ours (_ping_on_checkout), under the stall guard.
        engine = create_engine(self.url, pool_pre_ping=not postgres, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        _guard_against_stalls(engine, self.stall_guard, timeout_ms)
        if timeout_ms:
            event.listen(engine, "connect", _statement_timeout(timeout_ms))
        return engine

    @cached_property
    def _quick(self) -> Engine:
        """PostgreSQL connections in autocommit whose commits do not wait for the WAL flush
        (``synchronous_commit off``): see :meth:`quick`."""
        engine = self._engine(
            QUICK_STATEMENT_TIMEOUT_MS, isolation_level="AUTOCOMMIT", pool_size=4, max_overflow=8
        )
        event.listen(engine, "connect", _without_waiting_for_disk)
        return engine

    @contextmanager
    def quick(self) -> Iterator[Connection]:
        """A connection for single statements, each its own transaction, one round trip each
        (no BEGIN / COMMIT around it): for lookups, and for writes a database crash may lose
        (their commit does not wait for the disk) — bookkeeping of the message path. Guarded
        against stalls like every statement. SQLite: one ordinary transaction."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        with self._quick.connect() as connection:
            yield connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on an exception."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def check_schema(self) -> None:
        """Raise :class:`SchemaBehind` unless the schema is at the newest migration."""
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current != self.schema_head:
            raise SchemaBehind(current, self.schema_head)

    def require_schema(self) -> None:
        """:meth:`check_schema` until it first passes; after that free (migrations only add)."""
        if not self._schema_ok:
            self.check_schema()
            self._schema_ok = True

    @cached_property
    def schema_head(self) -> str:
        """The newest migration this version ships."""
        return ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if "_quick" in self.__dict__:
            self._quick.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # concurrent readers while a worker writes
    cursor.close()


def _guard_against_stalls(engine: Engine, guard: StallGuard, statement_timeout_ms) -> None:
    """Pings on checkout (unless just checked in) within :data:`PING_TIMEOUT_SECONDS`;
    statements (where ``statement_timeout`` bounds them on the server) within that plus a
    margin."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection, record) -> None:
        if record is not None:
            record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_on_checkout(dbapi_connection, record, _proxy) -> None:
        checked_in = record.info.pop("checked_in", None)
        if checked_in is not None and time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with guard.watch(dbapi_connection, PING_TIMEOUT_SECONDS):
                engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 — dead or stalled: the pool reconnects
            raise exc.DisconnectionError(f"connection failed its ping: {error}") from error

    if not statement_timeout_ms:
        return
    seconds = statement_timeout_ms / 1000 + STALL_MARGIN_SECONDS

    @event.listens_for(engine, "before_cursor_execute")
    def _watch(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        guard.start(connection.connection.dbapi_connection, seconds)

    @event.listens_for(engine, "after_cursor_execute")
    def _unwatch(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        guard.stop(connection.connection.dbapi_connection)

    @event.listens_for(engine, "handle_error")
    def _unwatch_failed(context) -> None:
        cursor = getattr(context, "cursor", None)
        dbapi = getattr(cursor, "connection", None)  # psycopg: the cursor's connection
        if dbapi is not None:
            guard.stop(dbapi)


def _without_waiting_for_disk(dbapi_connection, _record) -> None:
    dbapi_connection.execute("SET synchronous_commit = off")  # for the session, not one transaction
    if not dbapi_connection.autocommit:
        dbapi_connection.commit()


def _statement_timeout(milliseconds: int):
    def set_timeout(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
        dbapi_connection.commit()  # psycopg opened a transaction for the SET

    return set_timeout
