"""The console on real PostgreSQL and Redis, a frozen clock, jobs run at once, messages collected."""

from __future__ import annotations

import pytest

from services.clock import FrozenClock
from services.outbound import CollectingOutbound
from tests.support import ImmediateJobs, empty_tables


@pytest.fixture
def clock():
    return FrozenClock("2026-12-01 10:00")  # a Tuesday morning in Beijing


@pytest.fixture
def console_app(app_config, postgres_database, clock):
    from pension import create_app

    app = create_app({**app_config, "LOAD_DEMO_ROSTER": False, "CLOCK": clock})
    runtime = app.extensions["runtime"]
    runtime.jobs = ImmediateJobs()
    runtime.jobs.runtime = runtime
    sent = CollectingOutbound()
    for channel in ("wechat", "alipay", "rest"):
        runtime.outbound.register(channel, sent)
    runtime.extensions["collected"] = sent
    yield app
    app.extensions["db"].dispose()
    empty_tables(postgres_database)


@pytest.fixture
def db_session(console_app):
    """A unit of work on the console app's database (committed at the end of the block)."""
    return console_app.extensions["db"].session
