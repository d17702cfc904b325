"""The web chat page in a real browser: Debian's headless Chromium driven by Playwright.

A phone-sized window (390×844, touch) talks to the whole app served on a free port. Chromium
comes from the system (``scripts/ensure-chromium``); Playwright never downloads a browser here.
Without Chromium these tests skip on a developer's machine and fail under CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import support
from tests.support import find_chromium

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "reduced_motion": "reduce",  # no smooth scrolling: what a screenshot shows is settled
}
SCREENSHOT = Path("/tmp/webchat.png")
TIMEOUT_MS = 20_000


@pytest.fixture
def page(browser, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server, **PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.requests = []
    page.on("request", lambda request: page.requests.append(request))
    yield page
    context.close()


def open_chat(page):
    """Open /chat and wait for the greeting the page asks for on load."""
    from playwright.sync_api import expect

    page.goto("/chat")
    expect(page.locator(".choice", has_text="常见问题")).to_be_visible()


def say(page, text: str) -> None:
    bots = page.locator(".msg.bot:not(.typing)").count()
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")
    wait_for_new_bot_message(page, bots)


def wait_for_new_bot_message(page, before: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot:not(.typing)').length > n"
        " && !document.querySelector('.msg.typing')",
        arg=before,
    )


def px(page, selector: str, prop: str) -> float:
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")
    return float(value.removesuffix("px"))


def png(width: int, height: int, noise: bool = False) -> bytes:
    """A valid greyscale PNG built by hand (no imaging library): flat grey, or random noise."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = (lambda: os.urandom(width)) if noise else (lambda: b"\x80" * width)
    raw = b"".join(b"\x00" + row() for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def webhook_bodies(page) -> list[dict]:
    return [
        json.loads(request.post_data)
        for request in page.requests
        if request.url.endswith("/chat/messages") and request.method == "POST"
    ]


# -- a missing browser ------------------------------------------------------------------------
def test_missing_chromium_fails_loudly_under_ci(monkeypatch):
    monkeypatch.setattr(support, "IN_CI", True)

    with pytest.raises(pytest.fail.Exception, match="Chromium is not reachable"):
        find_chromium("/nonexistent/chromium")


def test_missing_chromium_skips_on_a_developer_machine(monkeypatch):
    monkeypatch.setattr(support, "IN_CI", False)

    with pytest.raises(pytest.skip.Exception, match="Chromium is not reachable"):
        find_chromium("/nonexistent/chromium")


# -- the page in the browser ------------------------------------------------------------------
def test_question_gets_the_grey_button_answer(page):
    from playwright.sync_api import expect

    open_chat(page)
    say(page, "确认按钮是灰色的怎么办")

    expect(page.locator(".msg.user").last).to_have_text("确认按钮是灰色的怎么办")
    answer = page.locator(".msg.bot", has_text="灰色")
    expect(answer.first).to_be_visible()
    assert "认证" in answer.first.text_content()
    page.screenshot(path=str(SCREENSHOT))


def test_tapping_a_button_sends_its_payload_and_shows_its_title(page):
    from playwright.sync_api import expect

    open_chat(page)
    bots = page.locator(".msg.bot:not(.typing)").count()
    page.locator(".choice", has_text="常见问题").tap()
    wait_for_new_bot_message(page, bots)

    expect(page.locator(".msg.user").last).to_have_text("常见问题")
    assert webhook_bodies(page)[-1]["message"] == "/faq_menu"
    assert "/faq_menu" not in page.locator("#log").inner_text()
    # The FAQ menu answers with buttons of its own.
    assert page.locator(".choices").last.locator(".choice").count() >= 2


def test_text_is_large_and_buttons_are_big_tap_targets(page):
    open_chat(page)

    assert px(page, "body", "fontSize") >= 18
    assert px(page, ".msg.bot", "fontSize") >= 18
    assert px(page, ".choice", "fontSize") >= 18
    for selector in (".choice", "#send", "#photo", "#text", "#bigger"):
        box = page.locator(selector).first.bounding_box()
        assert box["height"] >= 44, (selector, box)
    choice = page.locator(".choice").first.bounding_box()
    assert choice["width"] >= 200  # a wide target, easy to hit with a shaky finger

    page.locator("#bigger").tap()
    assert px(page, "body", "fontSize") >= 24
    assert page.locator("#bigger").get_attribute("aria-pressed") == "true"


def test_typed_markup_is_shown_literally_and_never_runs(page):
    from playwright.sync_api import expect

    open_chat(page)
    typed = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    say(page, typed)

    expect(page.locator(".msg.user").last).to_have_text(typed)
    assert page.locator("#log script, #log img[src='x']").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_bot_markup_is_shown_literally_too(page):
    """Whatever the bot says (FAQ text, a name from the roster) is text, never HTML."""
    from playwright.sync_api import expect

    hostile = "<img src=x onerror=alert(3)>"
    reply = [
        {
            "recipient_id": "x",
            "text": f"您好 {hostile}",
            "buttons": [{"title": "<b>粗体</b>", "payload": "/greet"}],
            "custom": {"link": "javascript:alert(4)"},
        }
    ]
    page.route(
        "**/chat/messages",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(reply)
        ),
    )
    page.goto("/chat")

    expect(page.locator(".msg.bot").first).to_contain_text(hostile)
    expect(page.locator(".choice").first).to_have_text("<b>粗体</b>")
    assert page.locator("#log img, #log b, #log a[href^='javascript']").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_the_conversation_is_a_cookie_the_page_cannot_read(page):
    open_chat(page)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "pension_chat"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/chat"
    assert "pension_chat" not in page.evaluate("document.cookie")

    page.reload()
    open_chat(page)
    bodies = webhook_bodies(page)
    assert bodies and all("sender" not in body for body in bodies)
    assert all(urlsplit(request.url).path != "/webhooks/rest/webhook" for request in page.requests)
    assert all("?" not in request.url for request in page.requests)


def test_signing_out_in_the_chat_says_so(page):
    open_chat(page)
    say(page, "退出")

    from playwright.sync_api import expect

    expect(page.locator(".msg.bot").last).to_contain_text("已退出")


def test_a_photo_is_sent_as_an_image_message(page):
    open_chat(page)
    bots = page.locator(".msg.bot:not(.typing)").count()
    page.locator("#photo-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": png(8, 8)}
    )
    wait_for_new_bot_message(page, bots)

    body = webhook_bodies(page)[-1]
    assert body["message"] == "/image"
    assert body["metadata"]["image_base64"].startswith("iVBORw0KGgo")  # base64 of a PNG header
    assert page.locator(".msg.user img").count() == 1
    assert page.locator(".msg.notice").count() == 0


def test_a_photo_too_big_for_one_request_is_shrunk_before_upload(page, chat_app):
    """8–10 MB would pass the 10 MB check but not as base64 in a 10 MB request: re-encode it."""
    big = png(3000, 2900, noise=True)
    assert 8 * 1024 * 1024 < len(big) <= 10 * 1024 * 1024
    assert len(big) * 4 / 3 > chat_app.config["MAX_CONTENT_LENGTH"]

    open_chat(page)
    bots = page.locator(".msg.bot:not(.typing)").count()
    page.locator("#photo-input").set_input_files(
        {"name": "big.png", "mimeType": "image/png", "buffer": big}
    )
    wait_for_new_bot_message(page, bots)

    body = webhook_bodies(page)[-1]
    assert body["message"] == "/image"
    assert body["metadata"]["image_base64"].startswith("/9j/")  # now a JPEG
    assert len(body["metadata"]["image_base64"]) < chat_app.config["MAX_CONTENT_LENGTH"]
    assert page.locator(".msg.notice").count() == 0


def test_a_photo_over_10_mb_is_refused_before_upload(page):
    from playwright.sync_api import expect

    open_chat(page)
    sent_before = len(webhook_bodies(page))
    page.locator("#photo-input").set_input_files(
        {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (10 * 1024 * 1024 + 1)}
    )

    expect(page.locator(".msg.notice")).to_contain_text("太大")
    expect(page.locator(".msg.notice")).to_contain_text("10MB")
    page.wait_for_timeout(300)
    assert len(webhook_bodies(page)) == sent_before


def test_a_lost_message_can_be_sent_again(page):
    from playwright.sync_api import expect

    open_chat(page)
    page.route("**/chat/messages", lambda route: route.abort())
    page.locator("#text").fill("你好")
    page.locator("#text").press("Enter")
    expect(page.locator(".msg.notice")).to_contain_text("网络不太好")

    page.unroute("**/chat/messages")
    bots = page.locator(".msg.bot:not(.typing)").count()
    page.locator(".choice", has_text="再发一次").tap()
    wait_for_new_bot_message(page, bots)
    expect(page.locator(".choice", has_text="再发一次")).to_have_count(0)
    assert webhook_bodies(page)[-1]["message"] == "你好"


def test_too_many_messages_get_a_plain_answer(page):
    from playwright.sync_api import expect

    open_chat(page)
    page.route(
        "**/chat/messages",
        lambda route: route.fulfill(
            status=429, content_type="application/json", body='{"error": "Too Many Requests"}'
        ),
    )
    page.locator("#text").fill("你好")
    page.locator("#text").press("Enter")

    expect(page.locator(".msg.notice")).to_contain_text("请等一分钟")


@pytest.mark.parametrize(
    ("status", "content_type", "body", "sentence"),
    [
        (413, "application/json", '{"error": "Request Entity Too Large"}', "太长了"),
        (500, "application/json", '{"error": "Internal Server Error"}', "系统有点忙"),
        (503, "application/json", '{"error": "Service Unavailable"}', "系统有点忙"),
        (502, "text/html", "<html><body>502 Bad Gateway</body></html>", "系统有点忙"),
        (400, "application/json", '{"error": "Bad Request"}', "换个说法"),
        (200, "text/html", "<html>captive portal</html>", "系统有点忙"),
    ],
)
def test_an_error_is_told_in_a_kind_sentence_not_as_json(
    page, status, content_type, body, sentence
):
    from playwright.sync_api import expect

    open_chat(page)
    page.route(
        "**/chat/messages",
        lambda route: route.fulfill(status=status, content_type=content_type, body=body),
    )
    page.locator("#text").fill("你好")
    page.locator("#text").press("Enter")

    expect(page.locator(".msg.notice")).to_contain_text(sentence)
    shown = page.locator("#log").inner_text()
    assert "{" not in shown and "error" not in shown.lower() and "<html" not in shown
    assert str(status) not in page.locator(".msg.notice").inner_text()
