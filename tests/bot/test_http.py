"""The service's HTTP surface: health, bad requests, the Rasa NLU API, the embedded defaults."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from sqlalchemy import func, select

from pension import create_app
from services.models import Person
from tests.support import free_port


def test_health_reports_every_part(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok", "nlu": "ok"}


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"message": "hi"}', 400),
        (b'{"sender": "a"}', 400),
        (b'{"sender": 5, "message": "hi"}', 400),
        (b'{"sender": "a", "message": "hi", "metadata": "x"}', 400),
        (b'{"sender": "a", "message": "/image", "metadata": {"image_base64": "%%%"}}', 400),
        (b'{"sender": "a", "message": "' + "长".encode() * 6000 + b'"}', 413),
    ],
)
def test_bad_requests_get_a_json_4xx(client, body, status):
    response = client.post(
        "/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert "message" in response.get_json()


def test_oversize_body_is_refused(client):
    body = b'{"sender": "a", "message": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    response = client.post(
        "/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_sql_and_html_in_text_are_just_text(client, app):
    for text in ["'; DROP TABLE persons; --", "<script>alert(1)</script>", "\x00\x01"]:
        response = client.post("/webhooks/rest/webhook", json={"sender": "x", "message": text})
        assert response.status_code == 200
    with app.extensions["db"].session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) > 0


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/nowhere").status_code == 404
    assert client.get("/webhooks/rest/webhook").status_code == 405


def test_model_parse_is_rasa_shaped(client):
    body = client.post(
        "/model/parse", json={"text": "帮我妈认证 身份证610102195203150020"}
    ).get_json()
    assert body["intent"]["name"] == "certify_for_relative"
    assert {"name", "confidence"} <= body["intent_ranking"][0].keys()
    entities = {e["entity"]: e["value"] for e in body["entities"]}
    assert entities["id_number"] == "610102195203150020"
    assert client.post("/model/parse", data=b"nope").status_code == 400


def test_a_message_flood_from_one_sender_is_rate_limited(client):
    codes = [
        client.post(
            "/webhooks/rest/webhook", json={"sender": "flood", "message": "你好"}
        ).status_code
        for _ in range(35)
    ]
    assert codes.count(429) >= 1 and codes[0] == 200


def test_embedded_defaults_sqlite_memory_demo_roster(tmp_path, monkeypatch):
    for key in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    app = create_app(instance_path=str(tmp_path / "instance"))
    assert app.extensions["db"].engine.url.database == str(tmp_path / "instance" / "pension.db")
    assert app.extensions["stores"].backend == "memory"
    with app.extensions["db"].session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) >= 10
    client = app.test_client()
    assert client.get("/health").get_json()["redis"].startswith("not configured")
    reply = client.post("/webhooks/rest/webhook", json={"sender": "a", "message": "你好"})
    assert reply.status_code == 200 and reply.get_json()


def test_redis_outage_gives_503_and_the_service_recovers_by_itself(app_config, tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        app = create_app(app_config | {"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        client = app.test_client()
        message = {"sender": "outage", "message": "你好"}
        assert client.post("/webhooks/rest/webhook", json=message).status_code == 200
        server.terminate()
        server.wait()
        health = client.get("/health")
        assert health.status_code == 503 and "redis" in health.get_json()["failing"]
        down = client.post("/webhooks/rest/webhook", json=message)
        assert down.status_code == 503 and "稍后" in down.get_json()["message"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        assert client.get("/health").status_code == 200
        assert client.post("/webhooks/rest/webhook", json=message).status_code == 200
    finally:
        server.terminate()
        server.wait()


@pytest.mark.parametrize(
    "body",
    [
        b'{"sender": "a", "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"sender": "a", "message": "\\ud800"}',
        b'{"sender": "a", "message": "\xed\xa0\x80"}',
        b'{"sender": "a\\u0000b", "message": "hi"}',
        b'{"sender": "a", "message": "hi", "metadata": {"region": "' + b"6" * 100_000 + b'"}}',
    ],
    ids=["nested", "surrogate-escape", "surrogate-bytes", "nul-sender", "huge-region"],
)
def test_hostile_bodies_get_a_4xx_or_a_plain_answer_never_a_500(client, body):
    response = client.post("/webhooks/rest/webhook", data=body, content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


def test_a_malformed_region_is_not_kept_with_the_conversation(client, app):
    sender = "region-" + "b" * 8
    body = {"sender": sender, "message": "你好", "metadata": {"region": "6" * 5000}}
    assert client.post("/webhooks/rest/webhook", json=body).status_code == 200
    tracker = app.extensions["stores"].trackers.get(f"rest:{sender}")
    assert "6" * 100 not in json.dumps(tracker)


def test_a_doubled_slash_is_not_redirected_to_the_callers_host(client):
    response = client.get("//health", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "evil.example" not in response.headers.get("Location", "")


def test_a_statement_that_runs_too_long_is_a_503_not_a_hung_request(app_config, postgres_database):
    from sqlalchemy import text

    app = create_app(app_config | {"DATABASE_STATEMENT_TIMEOUT_MS": 300})

    @app.get("/test-slow")
    def slow():
        with app.extensions["db"].session() as session:
            session.execute(text("SELECT pg_sleep(5)"))
        return "done"

    started = time.monotonic()
    response = app.test_client().get("/test-slow")
    assert response.status_code == 503
    assert time.monotonic() - started < 3
    app.extensions["db"].dispose()
