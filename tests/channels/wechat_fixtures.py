"""Fixtures for the WeChat tests (a pytest plugin: ``pytest_plugins = ["wechat_fixtures"]``).

Apps on real PostgreSQL (a private schema reached through the URL) and Redis (the test's key
prefix), the WeChat API stand-in, a spy around the engine and a private RQ queue.
"""

from __future__ import annotations

import uuid

import pytest
from wechat_standin import (
    TEST_APPID,
    TEST_SECRET,
    TEST_TEMPLATE_ID,
    TEST_TOKEN,
    SpyEngine,
    WeChatAPIStandIn,
    WeChatPlatform,
    wait_for_threads,
)

from tests import support


@pytest.fixture(scope="session")
def wx_database_url(request):
    """A private PostgreSQL schema, migrated to head, reached through the URL alone."""
    from sqlalchemy import text

    from services.db import Database

    postgres_url = support.POSTGRES_URL

    schema = f"wechat_{uuid.uuid4().hex[:8]}"
    admin = Database(postgres_url)
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001
        support.service_missing("PostgreSQL", error)
    url = support.schema_url(postgres_url, schema)
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield url
    wait_for_threads()
    with admin.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def standin():
    with WeChatAPIStandIn() as server:
        yield server


@pytest.fixture
def platform():
    return WeChatPlatform()


@pytest.fixture
def wx_config(wx_database_url, redis_url, redis_prefix, standin, tmp_path):
    return {
        "DATABASE_URL": wx_database_url,
        "AUTO_MIGRATE": False,
        "LOAD_DEMO_ROSTER": False,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "RASA_URL": None,
        "SECRET_KEY": "test",
        "PHOTO_DIR": str(tmp_path / "photos"),
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APPID": TEST_APPID,
        "WECHAT_SECRET": TEST_SECRET,
        "WECHAT_AES_KEY": None,
        "WECHAT_TEMPLATE_ID": TEST_TEMPLATE_ID,
        "WECHAT_API_BASE_URL": standin.base_url,
        "WECHAT_REPLY_WAIT": 3.0,
        "TESTING": True,
    }


@pytest.fixture
def wx_make_app(wx_config, redis_url, redis_prefix, monkeypatch):
    """Apps on PostgreSQL + Redis with a spy engine and a private RQ queue."""
    import pension.runtime
    from pension import create_app
    from pension.jobs import RedisQueue

    apps = []

    def make(**overrides):
        app = create_app({**wx_config, **overrides})
        app.extensions["engine"] = SpyEngine(app.extensions["engine"])
        if app.config["REDIS_URL"]:
            app.extensions["jobs"] = RedisQueue(redis_url, name=f"{redis_prefix}jobs")
        if not apps:
            monkeypatch.setattr(pension.runtime, "_worker_runtime", app.extensions["runtime"])
        apps.append(app)
        return app

    yield make
    wait_for_threads()
    for app in apps:
        jobs = app.extensions["jobs"]
        if hasattr(jobs, "queue"):
            jobs.queue.delete(delete_jobs=True)
            jobs.queue.connection.close()
        else:
            jobs.pool.shutdown(wait=True)
        app.extensions["stores"].close()
        app.extensions["db"].dispose()


@pytest.fixture
def wx_app(wx_make_app):
    return wx_make_app()


@pytest.fixture
def wx_client(wx_app):
    return wx_app.test_client()


@pytest.fixture
def openid():
    return "o" + uuid.uuid4().hex[:27]  # 28 characters, like a real openid


def run_rq_worker(settings: dict, queue_name: str):
    """A real ``rq worker --burst`` process, its settings from the environment alone (no web
    app in it): what a deployment's ``pension worker`` does, until the queue is empty."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": str(support.REPO),
        **{
            key: str(value)
            for key, value in settings.items()
            if key.startswith(("WECHAT_", "DATABASE_", "REDIS_")) and value is not None
        },
        "AUTO_MIGRATE": "false",
        "LOAD_DEMO_ROSTER": "false",
    }
    command = ["rq.cli", "worker", "--burst", "--url", settings["REDIS_URL"], queue_name]
    done = subprocess.run(
        [sys.executable, "-m", *command],
        env=env,
        cwd=support.REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


# --- conversations over the demo roster --------------------------------------------------------


@pytest.fixture
def roster_app(wx_make_app):
    """The WeChat app over the demo roster (the channel tests share one database: the demo
    people are added to it unless an earlier test did)."""
    from sqlalchemy import select

    from services.demo_roster import demo_rows
    from services.models import Person
    from services.roster import import_rows

    app = wx_make_app(CLOCK=support.frozen_clock(), WECHAT_REPLY_WAIT=4.0)
    database = app.extensions["db"]
    with database.session() as session:
        loaded = session.scalar(select(Person.id).where(Person.person_no == "DEMO0001"))
    if loaded is None:
        import_rows(database, demo_rows(support.TODAY), today=support.TODAY)
    return app


class WeChatUser:
    def __init__(self, app, platform, standin):
        self.client, self.platform, self.standin = app.test_client(), platform, standin
        self.openid = "o" + uuid.uuid4().hex[:27]

    def say(self, text: str) -> str:
        """The reply: passive, or the customer-service messages of a slow turn."""
        sent = len(self.standin.custom)
        reply = self.platform.reply(
            self.platform.post(self.client, self.platform.text(self.openid, text))
        )
        if reply:
            return reply["Content"]
        wait_for_threads()
        return "\n".join(str(m) for m in self.standin.custom[sent:])
