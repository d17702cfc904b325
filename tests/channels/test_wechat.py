"""The WeChat channel end to end: WeChat's servers (signed requests) → /wechat → engine →
passive reply or customer-service message, against the API stand-in, real Redis, PostgreSQL
and RQ."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from wechat_fixtures import run_rq_worker
from wechat_standin import (
    OFFICIAL_ACCOUNT,
    TEST_AES_KEY,
    WeChatPlatform,
    run_jobs,
    wait_for,
    wait_for_threads,
)

from bot.messages import BotMessage, Button
from channels import wechat, wechat_jobs
from channels.inbound import render_texts, sorry_text
from services.models import ChannelAccount, PhotoReview
from tests.fake_photos import ATTACKS, attacks
from tests.support import make_person

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["wechat_fixtures"]  # the stand-ins' fixtures


def spy(app):
    return app.extensions["engine"]


def queued(app) -> int:
    return app.extensions["jobs"].queue.count


# --------------------------------------------------------------------------- verification


def test_server_verification_echoes_echostr(wx_client, platform):
    response = wx_client.get("/wechat", query_string={**platform.query(), "echostr": "e-12345"})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "e-12345"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"signature": None},
        {"nonce": "another-nonce"},
        {"timestamp": str(int(time.time()) - 3600)},
    ],
    ids=["forged", "missing", "nonce-changed", "stale"],
)
def test_server_verification_refuses_a_bad_signature(wx_client, platform, change):
    query = {**platform.query(), "echostr": "e-12345", **change}
    query = {k: v for k, v in query.items() if v is not None}
    response = wx_client.get("/wechat", query_string=query)
    assert response.status_code == 403
    assert b"e-12345" not in response.data


def test_unconfigured_channel_is_not_there(wx_make_app, platform):
    client = wx_make_app(WECHAT_TOKEN=None).test_client()
    assert (
        client.get("/wechat", query_string={**platform.query(), "echostr": "x"}).status_code == 404
    )


# --------------------------------------------------------------------------- message types


def test_text_gets_a_passive_reply_and_opens_the_48_hour_window(
    wx_app, wx_client, platform, openid, standin
):
    started = time.monotonic()
    response = platform.post(wx_client, platform.text(openid, "你好"))
    elapsed = time.monotonic() - started

    assert response.status_code == 200 and elapsed < 4.5
    assert response.mimetype == "application/xml"
    reply = platform.reply(response)
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == openid and reply["FromUserName"] == OFFICIAL_ACCOUNT
    assert "养老金认证小助手" in reply["Content"] and "1. 我要认证" in reply["Content"]
    [message] = spy(wx_app).messages
    assert (message.sender, message.channel, message.text) == (openid, "wechat", "你好")
    assert standin.custom == []  # answered passively: nothing goes out twice

    with wx_app.extensions["db"].session() as session:
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.external_id == openid)
        ).one()
        assert account.channel == "wechat" and account.last_inbound_at is not None


def test_all_replies_of_a_turn_go_in_one_passive_message(wx_app, wx_client, platform, openid):
    spy(wx_app).replace = lambda message: [
        BotMessage(text="第一句"),
        BotMessage(text="请选择", buttons=(Button("陕西", "/a"), Button("广西", "/b"))),
    ]
    reply = platform.reply(platform.post(wx_client, platform.text(openid, "问题")))
    assert reply["Content"] == "第一句\n\n请选择\n1. 陕西\n2. 广西"


def test_reply_text_cannot_break_out_of_the_xml(wx_app, wx_client, platform, openid):
    spy(wx_app).replace = lambda message: [BotMessage(text="a]]><MsgType>news</MsgType>b")]
    reply = platform.reply(platform.post(wx_client, platform.text(openid, "x")))
    assert reply["MsgType"] == "text"
    assert reply["Content"] == "a]]><MsgType>news</MsgType>b"


def test_voice_uses_the_recognition_text(wx_app, wx_client, platform, openid):
    reply = platform.reply(platform.post(wx_client, platform.voice(openid, "你好")))
    assert "养老金认证小助手" in reply["Content"]
    assert spy(wx_app).messages[0].text == "你好"


@pytest.mark.parametrize("recognition", ["", "   ", None])
def test_voice_without_recognition_asks_kindly_again(
    wx_app, wx_client, platform, openid, recognition
):
    reply = platform.reply(platform.post(wx_client, platform.voice(openid, recognition)))
    assert reply["Content"] == wechat.VOICE_NOT_UNDERSTOOD
    assert spy(wx_app).messages == []


def test_subscribe_welcomes_with_the_menu(wx_app, wx_client, platform, openid):
    reply = platform.reply(platform.post(wx_client, platform.event(openid, "subscribe")))
    for item in ("我要认证", "认证查询", "常见问题"):
        assert item in reply["Content"]
    assert len(reply["Content"].splitlines()) >= 2
    assert spy(wx_app).messages[0].event == "subscribe"


@pytest.mark.parametrize("key", ["CERTIFY", "STATUS", "FAQ"])
def test_menu_clicks_become_menu_events(wx_app, wx_client, platform, openid, key):
    reply = platform.reply(platform.post(wx_client, platform.event(openid, "CLICK", key)))
    assert reply["Content"]
    assert spy(wx_app).messages[0].event == f"menu:{key}"


def test_unknown_menu_key_gets_a_polite_answer(wx_app, wx_client, platform, openid):
    reply = platform.reply(platform.post(wx_client, platform.event(openid, "CLICK", "NOPE")))
    assert reply["Content"] == wechat.UNKNOWN_MENU
    assert spy(wx_app).messages == []


@pytest.mark.parametrize("msg_type", ["video", "shortvideo", "location", "link", "file"])
def test_other_message_types_get_a_polite_answer(wx_app, wx_client, platform, openid, msg_type):
    reply = platform.reply(platform.post(wx_client, platform.other(openid, msg_type)))
    assert reply["Content"] == wechat.UNSUPPORTED
    assert "文字和照片" in reply["Content"]
    assert spy(wx_app).messages == []


@pytest.mark.parametrize(("event", "key"), [("unsubscribe", None), ("VIEW", "https://x.example/")])
def test_silent_events_are_acknowledged(wx_app, wx_client, platform, openid, event, key):
    response = platform.post(wx_client, platform.event(openid, event, key))
    assert response.get_data(as_text=True) == "success"
    assert spy(wx_app).messages == []


def test_photo_is_downloaded_reviewed_and_answered_by_a_job(
    wx_app, wx_client, platform, openid, standin
):
    photo = b"\xff\xd8\xff\xe0" + os.urandom(2048)
    media_id = standin.add_media(photo)
    started = time.monotonic()
    response = platform.post(wx_client, platform.image(openid, media_id))
    assert response.get_data(as_text=True) == "success"
    assert time.monotonic() - started < 1.0  # no waiting for the download
    assert queued(wx_app) == 1

    run_jobs(wx_app)
    assert standin.media_downloads == [media_id]
    [(message, replies)] = spy(wx_app).calls
    assert message.image == photo and message.sender == openid and message.text is None
    expected = render_texts(replies)
    assert expected and standin.sent_texts(openid) == expected


@pytest.mark.parametrize("fake", ATTACKS)
def test_fake_photos_get_the_reason_in_the_chat_and_nothing_is_filed(
    wx_app, wx_client, platform, openid, standin, fake
):
    """Issue 13 item 9 through WeChat: identified for a photo review, the fake is refused."""
    with wx_app.extensions["db"].session() as session:
        # Jiangxi reviews photos; this schema is kept for the session: one person per case
        person = make_person(session, seq=60 + ATTACKS.index(fake), region_code="360734")
        name, number, person_id = person.name, person.id_number, person.id
    for text in ("能不能拍照认证", name, number):
        platform.post(wx_client, platform.text(openid, text))
        wait_for_threads()
    _, asked = spy(wx_app).calls[-1]
    assert "照片" in "".join(render_texts(asked))  # the rules, then a wait for the photo
    media_id = standin.add_media(attacks()[fake])
    platform.post(wx_client, platform.image(openid, media_id))
    run_jobs(wx_app)
    answer = standin.sent_texts(openid)[-1]
    assert "收到" not in answer and re.search(r"照片.*请.*(重新|再)", answer)
    with wx_app.extensions["db"].session() as session:
        filed = select(PhotoReview).where(PhotoReview.person_id == person_id)
        assert session.scalars(filed).all() == []


def test_photo_retry_downloads_once(wx_app, wx_client, platform, openid, standin):
    media_id = standin.add_media(b"\xff\xd8\xff\xe0photo")
    xml = platform.image(openid, media_id)
    assert platform.post(wx_client, xml).get_data(as_text=True) == "success"
    assert platform.post(wx_client, xml).get_data(as_text=True) == "success"
    run_jobs(wx_app)
    assert standin.media_downloads == [media_id]
    assert len(spy(wx_app).messages) == 1


def test_expired_photo_asks_to_send_it_again(wx_app, wx_client, platform, openid, standin):
    response = platform.post(wx_client, platform.image(openid, "media-expired-long-ago"))
    assert response.get_data(as_text=True) == "success"
    run_jobs(wx_app)
    assert standin.sent_texts(openid) == [wechat_jobs.PHOTO_MISSING]
    assert spy(wx_app).messages == []


def test_engine_failure_gets_an_apology_and_logs_nothing_personal(
    wx_app, wx_client, platform, openid, caplog
):
    def broken(message):
        raise RuntimeError("database is on fire")

    spy(wx_app).replace = broken
    id_text = "我叫张三身份证610102195001011234"
    reply = platform.reply(platform.post(wx_client, platform.text(openid, id_text)))
    assert reply["Content"] == sorry_text()
    assert "database is on fire" in caplog.text  # the traceback is there …
    assert openid not in caplog.text and "610102195001011234" not in caplog.text  # … nobody's data


# --------------------------------------------------------------------------- safe mode


@pytest.fixture
def safe_app(wx_make_app):
    return wx_make_app(WECHAT_AES_KEY=TEST_AES_KEY)


def test_safe_mode_decrypts_and_encrypts_the_reply(safe_app, openid):
    platform = WeChatPlatform(aes_key=TEST_AES_KEY)
    client = safe_app.test_client()
    response = platform.post(client, platform.text(openid, "你好"))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<Encrypt>" in body and "养老金" not in body  # nothing readable on the wire
    reply = platform.reply(response)
    assert reply["ToUserName"] == openid and "养老金认证小助手" in reply["Content"]


def test_safe_mode_verification_still_echoes(safe_app):
    platform = WeChatPlatform(aes_key=TEST_AES_KEY)
    response = safe_app.test_client().get(
        "/wechat", query_string={**platform.query(), "echostr": "abc"}
    )
    assert response.get_data(as_text=True) == "abc"


# --------------------------------------------------------------------------- once, in time


def test_a_repeated_message_is_processed_once(wx_app, wx_client, platform, openid, standin):
    xml = platform.text(openid, "你好")
    first = platform.post(wx_client, xml)
    again = platform.post(wx_client, xml)  # WeChat re-sends it (new signature, same MsgId)
    assert platform.reply(first)["Content"]
    assert again.get_data(as_text=True) == "success"
    assert len(spy(wx_app).messages) == 1
    assert standin.custom == [] and queued(wx_app) == 0


def test_events_are_deduplicated_by_sender_and_create_time(wx_app, wx_client, platform, openid):
    created = int(time.time())
    platform.post(wx_client, platform.event(openid, "subscribe", create_time=created))
    platform.post(wx_client, platform.event(openid, "subscribe", create_time=created))
    platform.post(wx_client, platform.event(openid, "subscribe", create_time=created + 1))
    assert [m.event for m in spy(wx_app).messages] == ["subscribe", "subscribe"]


def test_slow_answer_goes_as_a_customer_service_message_from_rq(
    wx_make_app, platform, openid, standin
):
    app = wx_make_app(WECHAT_REPLY_WAIT=0.5)
    spy(app).delay = 1.5
    client = app.test_client()
    xml = platform.text(openid, "你好")
    started = time.monotonic()
    response = platform.post(client, xml)
    assert response.get_data(as_text=True) == "success"
    assert time.monotonic() - started < 1.2

    assert wait_for(lambda: queued(app) == 1, timeout=10)
    assert standin.custom == []  # nothing before the worker runs
    run_jobs(app)
    replies = render_texts(spy(app).calls[0][1])
    assert standin.sent_texts(openid) == replies

    # A late retry of the same message changes nothing.
    assert platform.post(client, xml).get_data(as_text=True) == "success"
    run_jobs(app)
    assert standin.sent_texts(openid) == replies
    assert len(spy(app).messages) == 1


def test_retry_while_the_first_is_still_running_gets_the_one_passive_reply(
    wx_make_app, platform, openid, standin
):
    """WeChat gave up on the first connection and re-sent: the retry answers, once."""
    app = wx_make_app(WECHAT_REPLY_WAIT=3.0)
    spy(app).delay = 1.2
    xml = platform.text(openid, "你好")
    responses: dict[str, object] = {}
    timings: dict[str, float] = {}

    def deliver(name: str, pause: float) -> None:
        time.sleep(pause)
        started = time.monotonic()
        responses[name] = platform.post(app.test_client(), xml)
        timings[name] = time.monotonic() - started

    threads = [
        threading.Thread(target=deliver, args=("first", 0.0)),
        threading.Thread(target=deliver, args=("retry", 0.4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(spy(app).messages) == 1  # processed once
    assert responses["first"].get_data(as_text=True) == "success"  # its connection is gone
    reply = platform.reply(responses["retry"])
    assert "养老金认证小助手" in reply["Content"]
    assert max(timings.values()) < 4.5
    wait_for_threads()
    assert queued(app) == 0 and standin.custom == []  # never twice


def test_retry_after_the_first_gave_up_does_not_answer_twice(
    wx_make_app, platform, openid, standin
):
    app = wx_make_app(WECHAT_REPLY_WAIT=0.4)
    spy(app).delay = 1.5
    client = app.test_client()
    xml = platform.text(openid, "你好")
    assert platform.post(client, xml).get_data(as_text=True) == "success"  # gave up at 0.4 s
    retry = platform.post(client, xml)  # still running
    assert retry.get_data(as_text=True) == "success"
    assert wait_for(lambda: queued(app) == 1, timeout=10)
    run_jobs(app)
    assert len(standin.sent_texts(openid)) == len(render_texts(spy(app).calls[0][1]))
    assert len(spy(app).messages) == 1


def test_answer_too_long_for_one_message_goes_in_parts(wx_make_app, platform, openid, standin):
    app = wx_make_app()
    spy(app).replace = lambda message: [BotMessage(text="长" * 1000), BotMessage(text="短")]
    response = platform.post(app.test_client(), platform.text(openid, "x"))
    assert response.get_data(as_text=True) == "success"
    run_jobs(app)
    sent = standin.sent_texts(openid)
    assert "".join(sent) == "长" * 1000 + "短"
    assert all(len(part.encode()) <= 2048 for part in sent) and len(sent) == 3


def test_late_answer_outside_the_48_hour_window_becomes_a_template(
    wx_make_app, platform, openid, standin
):
    app = wx_make_app(WECHAT_REPLY_WAIT=0.3)
    spy(app).delay = 0.8
    standin.fail_next(45015, "message/custom/send")
    platform.post(app.test_client(), platform.text(openid, "你好"))
    assert wait_for(lambda: queued(app) == 1, timeout=10)
    run_jobs(app)
    assert standin.custom == []
    [template] = standin.templates
    assert (
        template["touser"] == openid and template["template_id"] == app.config["WECHAT_TEMPLATE_ID"]
    )


def test_late_answer_from_a_real_rq_worker_process(
    wx_make_app, wx_config, platform, openid, standin
):
    app = wx_make_app(WECHAT_REPLY_WAIT=0.3)
    spy(app).delay = 0.8
    platform.post(app.test_client(), platform.text(openid, "你好"))
    assert wait_for(lambda: queued(app) == 1, timeout=10)

    run_rq_worker(wx_config, app.extensions["jobs"].queue.name)
    assert standin.sent_texts(openid) == render_texts(spy(app).calls[0][1])


# --------------------------------------------------------------------------- order


def test_one_senders_messages_are_handled_in_order(wx_make_app, platform, openid):
    app = wx_make_app(WECHAT_REPLY_WAIT=4.0)
    spy(app).delay = lambda message: 1.5 if message.text == "m0" else 0.01
    responses = {}

    def deliver(number: int) -> None:
        responses[number] = platform.post(app.test_client(), platform.text(openid, f"m{number}"))

    threads = []
    for number in range(5):
        threads.append(threading.Thread(target=deliver, args=(number,)))
        threads[-1].start()
        time.sleep(0.2)  # they arrive in this order (even on a busy machine), while m0 runs
    for thread in threads:
        thread.join(10)
    assert [m.text for m in spy(app).messages] == [f"m{n}" for n in range(5)]
    assert all(platform.reply(r)["Content"] for r in responses.values())


def test_different_senders_are_handled_in_parallel(wx_make_app, platform):
    app = wx_make_app(WECHAT_REPLY_WAIT=4.0)
    spy(app).delay = 1.0
    senders = [f"oParallel{n}{os.urandom(4).hex()}" for n in range(4)]
    threads = [
        threading.Thread(target=platform.post, args=(app.test_client(), platform.text(s, "你好")))
        for s in senders
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started < 2.5  # not 4 × 1 s
    assert {m.sender for m in spy(app).messages} == set(senders)


# --------------------------------------------------------------------------- embedded mode


def test_embedded_mode_without_redis(wx_make_app, platform, openid, standin, tmp_path):
    app = wx_make_app(
        REDIS_URL=None, DATABASE_URL=f"sqlite:///{tmp_path / 'wx.db'}", AUTO_MIGRATE=True
    )
    client = app.test_client()
    xml = platform.text(openid, "你好")
    assert "养老金" in platform.reply(platform.post(client, xml))["Content"]
    assert platform.post(client, xml).get_data(as_text=True) == "success"

    app.config["WECHAT_REPLY_WAIT"] = 0.2
    spy(app).delay = 0.6
    assert platform.post(client, platform.text(openid, "谢谢")).get_data(as_text=True) == "success"
    assert wait_for(lambda: len(standin.custom) == 1, timeout=10)  # the thread-pool queue
    assert len(spy(app).messages) == 2


def test_numbers_and_titles_typed_work_like_the_numbered_buttons(wx_client, platform, openid):
    """WeChat shows buttons as numbered lines: "3" is the third, a title typed is that button."""
    first = platform.reply(platform.post(wx_client, platform.text(openid, "常见问题")))
    assert "大家常问" in first["Content"] and "1. " in first["Content"]
    picked = platform.reply(platform.post(wx_client, platform.text(openid, "1")))
    assert "灰" in picked["Content"]
