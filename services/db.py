"""Database access: one engine and session factory per URL, and schema migrations.

SQLite is the embedded default; PostgreSQL in production and tests. Both get the same schema
from the Alembic migrations in ``services/migrations``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


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
CONNECT_TIMEOUT_SECONDS = 3
POOL_TIMEOUT_SECONDS = 3


class Database:
    def __init__(self, url: str, *, statement_timeout_ms: int | None = None, **engine_options):
        """``statement_timeout_ms`` bounds every statement (PostgreSQL): set it for the web
        service, where a request must answer within seconds; batch commands leave it off."""
        self.url = normalise_url(url)
        if self.url.startswith("postgresql"):
            engine_options.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
            engine_options.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True, **engine_options)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif statement_timeout_ms:
            event.listen(self.engine, "connect", _statement_timeout(statement_timeout_ms))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_ok = False

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


def _statement_timeout(milliseconds: int):
    def set_timeout(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
        dbapi_connection.commit()  # psycopg opened a transaction for the SET

    return set_timeout
