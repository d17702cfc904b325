"""A stalled PostgreSQL (through a TCP proxy this test starts, which stops forwarding without
closing anything): /health and REST answer 503 within seconds, and recover when it resumes."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from pension import create_app
from tests.support import empty_tables, frozen_clock
from tests.tcp_proxy import TcpProxy


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f"@{parts.hostname}:{parts.port}", f"@127.0.0.1:{proxy.port}", 1)


@pytest.fixture
def proxy(postgres_url):
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname, parts.port or 5432) as server:
        yield server


@pytest.fixture
def stalling_app(app_config, postgres_database, proxy):
    app = create_app({**app_config, "DATABASE_URL": through(proxy, app_config["DATABASE_URL"])})
    yield app
    proxy.resume()
    app.extensions["db"].dispose()
    empty_tables(postgres_database)


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


# A turn that must read the roster (an FAQ or a greeting may be answered from the conversation
# kept in Redis while the database is away, and that is fine).
NEEDS_THE_ROSTER = "我叫王秀兰，身份证号610102195203150020，查询认证状态"


def rest(client, text: str = "你好"):
    return client.post("/webhooks/rest/webhook", json={"sender": "stall-test", "message": text})


def test_a_stalled_database_is_a_503_within_two_seconds_and_recovers(stalling_app, proxy):
    client = stalling_app.test_client()
    assert client.get("/health").status_code == 200
    assert rest(client).status_code == 200

    proxy.stall()
    health, seconds = timed(lambda: client.get("/health"))
    assert health.status_code == 503 and seconds < 2.0, seconds
    assert health.get_json()["database"] == "unavailable"
    assert health.get_json()["redis"] == "ok"
    answer, seconds = timed(lambda: rest(client, NEEDS_THE_ROSTER))
    assert answer.status_code == 503 and seconds < 5.0, seconds
    assert answer.headers["Retry-After"]
    for _ in range(3):  # every request, not only the first: no hung pool
        health, seconds = timed(lambda: client.get("/health"))
        assert health.status_code == 503 and seconds < 2.0, seconds

    proxy.resume()
    deadline = time.monotonic() + 10
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the database never came back"
        time.sleep(0.2)
    assert rest(client, "我要认证").status_code == 200


def test_libpq_gives_up_on_a_dead_network_path_within_seconds(postgres_database):
    """connect_timeout, TCP keepalives and tcp_user_timeout go with every connection."""
    with postgres_database.engine.connect() as connection:
        info = connection.connection.dbapi_connection.info
        options = {name: info.get_parameters().get(name) for name in ("connect_timeout",)}
        dsn = info.dsn
    assert options["connect_timeout"] == "2"
    for option in ("keepalives=1", "keepalives_idle=10", "tcp_user_timeout=5000"):
        assert option in dsn


def test_the_one_round_trip_message_claim_gives_up_on_a_stall_and_recovers(postgres_url, proxy):
    """The webhooks' dedupe row (services.processed) bypasses the ORM: it is guarded the same."""
    from sqlalchemy.exc import SQLAlchemyError

    from services.db import Database
    from services.processed import first_processing

    database = Database(through(proxy, postgres_url), statement_timeout_ms=5000)
    now = frozen_clock().now()
    key = f"m-stall-{time.monotonic_ns()}"
    try:
        assert first_processing(database, "wechat", key, now)
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(SQLAlchemyError):
            first_processing(database, "wechat", f"{key}-2", now)
        assert time.monotonic() - started < 4.0
        proxy.resume()
        assert not first_processing(database, "wechat", key, now)  # kept, and no hung pool
        assert first_processing(database, "wechat", f"{key}-3", now)
    finally:
        proxy.resume()
        database.dispose()
