"""Fixtures for the channel tests: one app on SQLite with the demo roster, and a live server.

The app is built once per session (loading the NLU takes seconds); each test talks as its own
sender, so conversations do not mix.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from pension import create_app
from tests.support import frozen_clock


def app_config(folder: Path) -> dict:
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
        "AUTO_MIGRATE": True,
        "LOAD_DEMO_ROSTER": True,
        "REDIS_URL": None,
        "RASA_URL": None,
        "SECRET_KEY": "test",
        "PHOTO_DIR": str(folder / "photos"),
        "CLOCK": frozen_clock(),
    }


@pytest.fixture(scope="session")
def chat_app(tmp_path_factory):
    """The whole app (embedded engine, in-memory stores) on a SQLite file with the demo roster."""
    app = create_app(app_config(tmp_path_factory.mktemp("chat-app")))
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()


@pytest.fixture
def client(chat_app):
    return chat_app.test_client()


@pytest.fixture(scope="session")
def live_server(chat_app):
    """The app served over real HTTP on a free port (werkzeug, threaded), for a real browser."""
    server = make_server("127.0.0.1", 0, chat_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
