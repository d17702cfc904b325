"""Whose conversation a web-chat request belongs to is the server's choice, and it ends.

A signed HttpOnly cookie names it; a ``sender`` in the body is ignored; "退出" / "解绑" and
``WEBCHAT_IDLE_MINUTES`` of silence make a shared phone forget who was bound. The REST channel
takes a token when the operator sets ``REST_TOKEN``.
"""

from __future__ import annotations

import itertools

import pytest

from channels import webchat
from services.accounts import account_for, bind_person, bound_people
from tests.support import NOW, make_person, web_chat_conversation

_SEQ = itertools.count(300)  # the chat app is shared by the session: a new person each time


def _bind_someone(app, conversation: str) -> None:
    with app.extensions["runtime"].database.session() as session:
        person = make_person(session, seq=next(_SEQ))
        bind_person(session, account_for(session, "web", conversation), person, "妈妈")


def _bound_count(app, conversation: str) -> int:
    with app.extensions["runtime"].database.session() as session:
        return len(bound_people(session, account_for(session, "web", conversation)))


def test_the_server_names_the_conversation_in_a_signed_httponly_cookie(chat_app):
    page = chat_app.test_client()

    response = page.post("/chat/messages", json={"message": "/greet"})

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{webchat.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/chat" in cookie
    conversation = web_chat_conversation(chat_app, page)
    assert conversation.startswith("web-") and conversation not in response.get_data(as_text=True)
    page.post("/chat/messages", json={"message": "你好"})
    assert web_chat_conversation(chat_app, page) == conversation


def test_a_sender_in_the_body_is_ignored(chat_app):
    victim = chat_app.test_client()
    victim_conversation = web_chat_conversation(chat_app, victim)
    _bind_someone(chat_app, victim_conversation)

    intruder = chat_app.test_client()
    intruder.post("/chat/messages", json={"sender": victim_conversation, "message": "查询状态"})

    assert web_chat_conversation(chat_app, intruder) != victim_conversation


def test_a_forged_cookie_starts_a_new_conversation(chat_app):
    page = chat_app.test_client()
    page.set_cookie(webchat.COOKIE, "web-" + "a" * 32, path="/chat")

    page.post("/chat/messages", json={"message": "你好"})

    assert web_chat_conversation(chat_app, page) != "web-" + "a" * 32


@pytest.mark.parametrize("words", ["退出", "解绑", " 退出登录 "])
def test_signing_out_forgets_who_was_bound(chat_app, words):
    page = chat_app.test_client()
    before = web_chat_conversation(chat_app, page)
    _bind_someone(chat_app, before)

    replies = page.post("/chat/messages", json={"message": words}).get_json()

    assert "已退出" in replies[0]["text"] and "1位" in replies[0]["text"]
    assert _bound_count(chat_app, before) == 0
    assert web_chat_conversation(chat_app, page) != before


def test_an_idle_conversation_is_forgotten(chat_app):
    clock = chat_app.extensions["runtime"].clock
    page = chat_app.test_client()
    before = web_chat_conversation(chat_app, page)
    idle = chat_app.config["WEBCHAT_IDLE_MINUTES"]
    try:
        clock.advance(minutes=idle - 1)
        page.post("/chat/messages", json={"message": "你好"})
        assert web_chat_conversation(chat_app, page) == before  # each message renews it

        clock.advance(minutes=idle + 1)
        page.post("/chat/messages", json={"message": "你好"})
        assert web_chat_conversation(chat_app, page) != before
    finally:
        clock.set(NOW)


@pytest.mark.parametrize("path", ["/webhooks/rest/webhook", "/model/parse"])
def test_rest_token_is_required_when_set(chat_app, client, monkeypatch, path):
    monkeypatch.setitem(chat_app.config, "REST_TOKEN", "s3cret-token")
    body = {"sender": "rest-token-test", "message": "你好", "text": "你好"}

    missing = client.post(path, json=body)
    wrong = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
    right = client.post(path, json=body, headers={"Authorization": "Bearer s3cret-token"})

    assert missing.status_code == 401 and wrong.status_code == 401
    assert "REST_TOKEN" in missing.get_json()["message"]
    assert right.status_code == 200


def test_without_rest_token_the_rest_channel_stays_open(client):
    assert client.post("/model/parse", json={"text": "你好"}).status_code == 200
