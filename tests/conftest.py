"""Shared fixtures: real PostgreSQL and Redis, each test run in its own schema / key prefix.

Where the servers are and what a missing one means: ``tests/support.py``.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from sqlalchemy import text

from services.db import Database
from tests.support import (
    NOW,
    POSTGRES_URL,
    REDIS_URL,
    RUN_ID,
    empty_tables,
    free_port,
    frozen_clock,
    schema_url,
    service_missing,
)


@pytest.fixture(scope="session")
def postgres_url():
    """A private schema in the test PostgreSQL database, migrated to head, dropped at the end."""
    schema = f"test_{RUN_ID}"
    admin = Database(POSTGRES_URL)
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001 — any connection failure means "not reachable"
        service_missing("PostgreSQL", error)
    url = schema_url(POSTGRES_URL, schema)
    migrator = Database(url)
    migrator.upgrade()
    migrator.dispose()
    yield url
    with admin.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_url):
    database = Database(postgres_url)
    yield database
    database.dispose()


@pytest.fixture
def db(postgres_database):
    """The PostgreSQL database, emptied after each test."""
    yield postgres_database
    empty_tables(postgres_database)


@pytest.fixture
def app_config(postgres_url, redis_url, redis_prefix, tmp_path):
    """Settings of a service on real PostgreSQL and Redis with the demo roster loaded."""
    return {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "SECRET_KEY": "test-secret",
        "AUTO_MIGRATE": False,
        "LOAD_DEMO_ROSTER": True,
        "PHOTO_DIR": str(tmp_path / "photos"),
        "CLOCK": frozen_clock(),
        "TESTING": True,
    }


@pytest.fixture
def app(app_config, postgres_database):
    from pension import create_app

    application = create_app(app_config)
    yield application
    application.extensions["db"].dispose()
    empty_tables(postgres_database)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'test.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def rasa_server(postgres_url, tmp_path_factory):
    """A real Rasa server over the test database (tests/rasa_server.py): skipped when Rasa or a
    model for the current nlu/ files is missing — failed under CI, which provides both."""
    from tests.rasa_server import RasaNotAvailable, RasaServer

    folder = tmp_path_factory.mktemp("rasa")
    prefix = f"test:{RUN_ID}:rasa:"
    try:
        server = RasaServer.start(
            database_url=postgres_url,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            photo_dir=folder / "photos",
            ports=(free_port(), free_port()),
            frozen_clock=NOW,
        )
    except RasaNotAvailable as error:
        service_missing("A Rasa server", error)
    yield server
    server.stop()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        service_missing("Redis", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix private to this test; its keys are deleted afterwards."""
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:6]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright (a missing one: see find_chromium)."""
    from playwright.sync_api import sync_playwright

    from tests.support import CHROMIUM_ARGS, find_chromium

    executable = find_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
