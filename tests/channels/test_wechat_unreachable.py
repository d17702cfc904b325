"""WeChat's API out of reach (the stand-in stopped, then started again on the same address):
photos are downloaded and answered, late replies delivered, once each, when it is back."""

from __future__ import annotations

import os
import time

import pytest
from wechat_standin import run_jobs, run_jobs_until

from channels.inbound import render_texts
from channels.wechat_api import SYSTEM_BUSY, send_texts
from channels.wechat_jobs import deliver_replies
from services.outbound import BotMessage, Recipient

pytest_plugins = ["wechat_fixtures"]

FAST_RETRIES = "0.2,0.5,0.5,1,1,1,2,2"


@pytest.fixture
def app(wx_make_app):
    return wx_make_app(WECHAT_RETRY_SECONDS=FAST_RETRIES)


def outage(app, seconds: float = 1.5) -> None:
    """Let the first tries and a few retries fail while the stand-in is down."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run_jobs(app)
        time.sleep(0.1)


def test_a_photo_sent_while_wechat_is_unreachable_is_answered_when_it_is_back(
    app, platform, openid, standin
):
    photo = b"\xff\xd8\xff\xe0" + os.urandom(2048)
    media_id = standin.add_media(photo)
    standin.stop()
    response = platform.post(app.test_client(), platform.image(openid, media_id))
    assert response.get_data(as_text=True) == "success"
    outage(app)
    assert app.extensions["engine"].messages == []  # not handled as "no photo"

    standin.restart()
    assert run_jobs_until(app, lambda: standin.sent_texts(openid))
    [(message, replies)] = app.extensions["engine"].calls
    assert message.image == photo and message.sender == openid
    assert standin.media_downloads == [media_id]
    run_jobs(app)
    assert standin.sent_texts(openid) == render_texts(replies)  # told, once


def test_a_late_reply_waits_for_wechat_and_goes_out_once(app, openid, standin):
    standin.stop()
    app.extensions["jobs"].enqueue(deliver_replies, openid, ["您的认证已受理", "下次认证：明年"])
    outage(app)
    standin.restart()
    assert run_jobs_until(app, lambda: len(standin.sent_texts(openid)) >= 2)
    run_jobs(app)
    assert standin.sent_texts(openid) == ["您的认证已受理", "下次认证：明年"]


def test_when_wechat_is_busy_mid_reply_only_the_parts_not_sent_are_sent_again(app, openid, standin):
    standin.fail_next(SYSTEM_BUSY, "message/custom/send", times=2, skip=1)
    app.extensions["jobs"].enqueue(deliver_replies, openid, ["一", "二", "三"])
    assert run_jobs_until(app, lambda: len(standin.sent_texts(openid)) >= 3)
    run_jobs(app)
    assert standin.sent_texts(openid) == ["一", "二", "三"]


def test_a_direct_send_still_reports_unreachable_as_failed(app, openid, standin):
    standin.stop()
    assert send_texts(app.extensions["runtime"], openid, ["你好"]) == "failed"
    standin.restart()


def test_a_notice_to_a_wechat_user_while_wechat_is_unreachable_is_sent_when_it_is_back(
    app, openid, standin
):
    runtime = app.extensions["runtime"]
    standin.stop()
    runtime.outbound.deliver(Recipient("wechat", openid), [BotMessage(text="您的照片已审核通过")])
    outage(app)
    standin.restart()
    assert run_jobs_until(app, lambda: standin.sent_texts(openid))
    run_jobs(app)
    assert standin.sent_texts(openid) == ["您的照片已审核通过"]
