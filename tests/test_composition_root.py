"""The composition root as a newcomer meets it: `make run`'s server, the CLI, a schema behind.

Each command builds only what it needs; a database that was not migrated is told in one line
(the CLI) or a 503 naming the fix (HTTP), never a traceback per message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from pension import create_app
from pension.cli import main as cli
from tests.support import free_port

REPO = Path(__file__).resolve().parents[1]


def _embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pension.db'}",
        "REDIS_URL": "",
        "RASA_URL": "",
        "PHOTO_DIR": str(tmp_path / "photos"),
        "SECRET_KEY": "test",
        **extra,
    }


@pytest.fixture
def unmigrated(tmp_path):
    """Settings of a configured (not embedded) database nobody has migrated."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
        "AUTO_MIGRATE": False,
        "LOAD_DEMO_ROSTER": False,
        "REDIS_URL": None,
        "RASA_URL": None,
        "PHOTO_DIR": str(tmp_path / "photos"),
    }


def test_health_says_to_migrate_when_the_schema_is_behind(unmigrated):
    client = create_app(unmigrated).test_client()

    health = client.get("/health")

    assert health.status_code == 503
    assert "pension migrate" in health.get_json()["failing"]["database"]


def test_a_message_to_an_unmigrated_database_is_a_503_naming_the_fix(unmigrated):
    client = create_app(unmigrated).test_client()

    response = client.post("/webhooks/rest/webhook", json={"sender": "s1", "message": "你好"})

    assert response.status_code == 503
    assert "pension migrate" in response.get_json()["message"]


@pytest.mark.parametrize("command", [["handoffs"], ["import-roster", "README.md"]])
def test_cli_commands_say_in_one_line_that_the_schema_is_behind(unmigrated, command):
    env = {k: str(v) for k, v in unmigrated.items() if v is not None} | {"AUTO_MIGRATE": "0"}
    result = CliRunner().invoke(cli, command, env=env)

    assert result.exit_code == 1
    assert "pension migrate" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_listing_handoffs_does_not_load_the_dialogue(tmp_path):
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from pension.cli import main\n"
        "result = CliRunner().invoke(main, ['handoffs'])\n"
        "print(result.output)\n"
        "print('loaded:', sorted(m for m in ('nlu.classifier', 'sklearn', 'jieba', 'bot.engine')"
        " if m in sys.modules))\n"
    )
    env = _embedded_env(tmp_path, AUTO_MIGRATE="1")
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 conversation(s) with a human" in done.stdout
    assert "loaded: []" in done.stdout


def test_serve_runs_a_production_server_in_one_process_on_the_embedded_defaults(tmp_path):
    port = free_port()
    env = _embedded_env(tmp_path, AUTO_MIGRATE="1", LOAD_DEMO_ROSTER="1")
    server = subprocess.Popen(
        [sys.executable, "-m", "pension.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.5)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "gunicorn" in output.lower()
    assert "development server" not in output.lower()
