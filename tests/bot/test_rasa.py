"""The Rasa side: the project is one `rasa train` would accept, the actions are served by a real
rasa_sdk action server, and the Rasa engine speaks a Rasa server's HTTP API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from rasa_sdk.executor import ActionExecutor

from bot.domain import NLU_PROJECT, Domain, RuleBook
from nlu.training_data import load_training_data
from pension import create_app
from tests.support import free_port

BUILT_IN = {"action_listen", "action_restart", "action_default_fallback", "action_deactivate_loop"}


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load()


def _steps(path):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for block in document.get("rules", []) + document.get("stories", []):
        for step in block.get("steps", []):
            yield from step.get("or", [step])


def test_every_intent_and_action_referenced_exists(domain):
    known_actions = set(domain.actions) | set(domain.forms) | set(domain.responses) | BUILT_IN
    for path in (NLU_PROJECT / "data" / "rules.yml", NLU_PROJECT / "data" / "stories.yml"):
        for step in _steps(path):
            if "intent" in step:
                assert step["intent"] in domain.intents + ["nlu_fallback"], (path, step)
            if "action" in step:
                assert step["action"] in known_actions, (path, step)


def test_every_trained_intent_is_in_the_domain_with_faq_responses(domain):
    data = load_training_data(NLU_PROJECT / "data" / "nlu.yml")
    for intent in data.intents:
        base, _, sub = intent.partition("/")
        assert base in domain.intents, intent
        if sub:
            assert f"utter_{intent}" in domain.responses, f"utter_{intent} is missing"
    entities = {e["entity"] for example in data.examples for e in example.entities}
    assert entities <= set(domain.entities)


def test_no_example_is_in_two_intents():
    seen: dict[str, str] = {}
    for example in load_training_data(NLU_PROJECT / "data" / "nlu.yml").examples:
        earlier = seen.setdefault(example.text, example.intent)
        assert earlier == example.intent, f"{example.text!r}: {earlier} and {example.intent}"


def test_forms_slots_and_questions_exist(domain):
    for form, spec in domain.forms.items():
        for slot in spec["required_slots"]:
            assert slot in domain.slots, (form, slot)
            assert f"utter_ask_{slot}" in domain.responses, (form, slot)
    for slot, spec in domain.slots.items():
        for mapping in spec["mappings"]:
            if mapping["type"] == "from_entity":
                assert mapping["entity"] in domain.entities, slot
            for condition in mapping.get("conditions", []):
                assert condition["active_loop"] in domain.forms, slot


def test_every_custom_action_is_implemented_and_every_implementation_declared(domain):
    executor = ActionExecutor()
    executor.register_package("bot.actions")
    implemented = set(executor.actions) - {"action_validate_slot_mappings"}
    declared = {a for a in domain.actions if not a.startswith("utter_")}
    assert declared == implemented


def test_rule_book_reads_form_submissions_and_interruptions():
    rules = RuleBook.load()
    assert rules.after("identity_form").actions == ["action_identity_submit"]
    interruption = rules.for_intent("faq/grey_button", "identity_form")
    assert interruption.actions == ["action_faq"] and interruption.resumes_form == "identity_form"
    assert rules.for_intent("faq/grey_button", None).actions == ["action_faq"]


# --- a real action server -------------------------------------------------------------


def _post_json(url: str, body: dict, timeout: float = 10.0):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def test_the_same_actions_run_in_a_rasa_sdk_action_server(app, domain):
    port = free_port()
    env = os.environ | {"DATABASE_URL": app.config["DATABASE_URL"]}
    server = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "bot.actions", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):  # a minute: importing the actions is slow on a busy machine
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        call = {
            "next_action": "action_faq",
            "sender_id": "rest:someone",
            "tracker": {
                "sender_id": "rest:someone",
                "slots": {"region": "450000"},
                "latest_message": {"text": "最多绑几个人", "intent": {"name": "faq/bind_limit"}},
                "events": [],
                "active_loop": {},
            },
            "domain": domain.as_rasa_dict(),
            "version": "3.6.21",
        }
        # The first call loads the FAQ and the roster: slow on a busy machine.
        answer = _post_json(f"http://127.0.0.1:{port}/webhook", call, timeout=60)
        assert "4" in answer["responses"][0]["text"]
        slots = {e["name"]: e["value"] for e in answer["events"] if e["event"] == "slot"}
        assert slots["last_faq"] == "faq/bind_limit"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


# --- the Rasa engine against a stand-in Rasa server -----------------------------------


class RasaStandIn(ThreadingHTTPServer):
    """Speaks a Rasa server's REST channel and NLU API; records what it was sent."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _RasaHandler)
        self.received: list[dict] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RasaHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append({"path": self.path, **body})
        if self.path == "/webhooks/rest/webhook":
            answer = [
                {"recipient_id": body["sender"], "text": f"收到：{body['message']}"},
                {
                    "recipient_id": body["sender"],
                    "text": "请选择",
                    "buttons": [{"title": "我要认证", "payload": "/start_certification"}],
                },
                {"recipient_id": body["sender"], "custom": {"link": "https://example.org/app"}},
            ]
        elif self.path == "/model/parse":
            answer = {
                "text": body["text"],
                "intent": {"name": "greet", "confidence": 0.99},
                "intent_ranking": [{"name": "greet", "confidence": 0.99}],
                "entities": [],
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def rasa():
    server = RasaStandIn()
    yield server
    server.shutdown()


def test_rasa_engine_relays_messages_and_renders_replies(app_config, postgres_database, rasa):
    app = create_app(app_config | {"RASA_URL": rasa.url})
    client = app.test_client()
    replies = client.post(
        "/webhooks/rest/webhook",
        json={"sender": "r1", "message": "你好", "metadata": {"region": "610102"}},
    ).get_json()
    assert replies[0] == {"recipient_id": "r1", "text": "收到：你好"}
    assert replies[1]["buttons"] == [{"title": "我要认证", "payload": "/start_certification"}]
    assert replies[2]["custom"] == {"link": "https://example.org/app"}  # a link is kept
    sent = rasa.received[-1]
    assert sent["sender"] == "rest:r1" and sent["metadata"] == {"region": "610102"}
    # a number typed back means that button, as it does on the embedded engine
    client.post("/webhooks/rest/webhook", json={"sender": "r1", "message": "1"})
    assert rasa.received[-1]["message"] == "/start_certification"
    long_text = "我" * 2500
    client.post("/webhooks/rest/webhook", json={"sender": "r1", "message": long_text})
    assert len(rasa.received[-1]["message"]) == 2000
    parse = client.post("/model/parse", json={"text": "你好"}).get_json()
    assert parse["intent"]["name"] == "greet"


def test_rasa_engine_parks_photos_and_sends_only_a_token(app_config, postgres_database, rasa):
    app = create_app(app_config | {"RASA_URL": rasa.url})
    app.test_client().post(
        "/webhooks/rest/webhook",
        json={"sender": "r2", "message": "/image", "metadata": {"image_base64": "/9j/4AAQ"}},
    )
    sent = rasa.received[-1]
    assert sent["message"] == "/send_photo"
    assert len(sent["metadata"]["photo_upload"]) == 32 and "image_base64" not in sent["metadata"]


def test_rasa_server_down_is_a_clear_503(app_config, postgres_database):
    app = create_app(app_config | {"RASA_URL": f"http://127.0.0.1:{free_port()}"})
    client = app.test_client()
    response = client.post("/webhooks/rest/webhook", json={"sender": "r3", "message": "你好"})
    assert response.status_code == 503 and "稍后" in response.get_json()["message"]
    health = client.get("/health")
    assert health.status_code == 503 and "nlu" in health.get_json()["failing"]
