"""The web chat page as served: headers, markup and the rules its script keeps.

What the page does in a browser is tested in test_webchat_browser.py.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "channels" / "static"


def test_chat_page_is_served_with_a_strict_content_security_policy(client):
    response = client.get("/chat")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_chat_page_is_chinese_mobile_and_self_contained(client):
    html = client.get("/chat").get_data(as_text=True)

    assert '<html lang="zh-CN">' in html
    assert 'name="viewport"' in html and "width=device-width" in html
    # Everything comes from this app: no CDN, no inline script or style for the CSP to block.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") or url.startswith("tel:"), url
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert 'data-webhook="/chat/messages"' in html and 'data-inbox="/chat/inbox"' in html


def test_static_files_are_served_by_the_app(client):
    script = client.get("/chat/static/webchat.js")
    style = client.get("/chat/static/webchat.css")

    assert script.status_code == 200 and "javascript" in script.mimetype
    assert style.status_code == 200 and style.mimetype == "text/css"
    script.close()
    style.close()


def test_script_never_inserts_text_as_html():
    script = (STATIC / "webchat.js").read_text(encoding="utf-8")

    sinks = re.findall(
        r"\.(?:innerHTML|outerHTML|insertAdjacentHTML)\b|document\.write|\beval\(", script
    )
    assert sinks == []
    assert "textContent" in script


def test_script_names_no_conversation_and_puts_nothing_personal_in_urls():
    script = (STATIC / "webchat.js").read_text(encoding="utf-8")

    assert not re.search(r"\bsender\b", script)  # the server's cookie names the conversation
    assert "?" not in re.search(r"fetch\(([^,]+),", script).group(1)


def test_styles_are_large_and_tappable():
    css = (STATIC / "webchat.css").read_text(encoding="utf-8")

    assert re.search(r"html \{[^}]*font-size: 20px", css)
    assert "--tap: 56px" in css
    assert re.search(r"\.choice \{[^}]*min-height: var\(--tap\)", css)


def test_the_page_has_its_own_endpoint_in_the_rest_format(client):
    response = client.post("/chat/messages", json={"message": "/greet"})

    assert response.status_code == 200
    replies = response.get_json()
    assert replies and replies[0]["recipient_id"] == "web"
    assert any(reply.get("buttons") for reply in replies)


@pytest.mark.parametrize("claimed", ["shell", "web", ["web"], {"x": 1}])
def test_a_rest_caller_cannot_speak_as_another_channel(client, chat_app, claimed):
    sender = "rest-" + uuid.uuid4().hex
    body = {"sender": sender, "message": "你好", "metadata": {"channel": claimed}}

    assert client.post("/webhooks/rest/webhook", json=body).status_code == 200
    trackers = chat_app.extensions["stores"].trackers
    assert trackers.get(f"rest:{sender}") is not None
    assert trackers.get(f"web:{sender}") is None and trackers.get(f"shell:{sender}") is None
