"""The outbound port: what the domain decides later reaches a person in their own channel.

The domain calls ``services.notifications`` with a person or an account; each channel's side
of the port delivers — WeChat customer-service messages (a template outside 48 hours) to the
WeChat API stand-in, the web chat's inbox that the page fetches. Jobs get a runtime, not the
Flask app: one runs here in a real ``rq worker`` process built from settings alone.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from wechat_fixtures import run_rq_worker

from pension.jobs import RedisQueue
from services import notifications
from services.accounts import account_for, bind_person
from services.models import Person
from services.outbound import CollectingOutbound, NoRoute, OutboundRouter, Recipient
from tests.support import make_person, web_chat_conversation

pytest_plugins = ["wechat_fixtures"]

ROOT = Path(__file__).resolve().parents[2]


# One person per call, never the same twice (the WeChat tests share one database): a random
# seq collided now and then.
_SEQ = itertools.count(5)


def _person_bound_to(runtime, channel: str, external_id: str, relation: str = "self") -> int:
    with runtime.database.session() as session:
        person = make_person(session, seq=next(_SEQ))
        account = account_for(session, channel, external_id)
        bind_person(session, account, person, relation)
        return person.id


def test_a_review_result_reaches_a_wechat_user_as_a_customer_service_message(
    wx_app, standin, openid
):
    runtime = wx_app.extensions["runtime"]
    person_id = _person_bound_to(runtime, "wechat", openid)

    told = notifications.tell_person(runtime, person_id, notifications.texts("照片审核通过了。"))

    assert told == 1
    assert standin.sent_texts(openid) == ["照片审核通过了。"]


def test_outside_the_48_hour_window_the_port_falls_back_to_the_template(wx_app, standin, openid):
    runtime = wx_app.extensions["runtime"]
    person_id = _person_bound_to(runtime, "wechat", openid, relation="妈妈")
    standin.fail_next(45015, "message/custom/send")

    notifications.tell_person(runtime, person_id, notifications.texts("您母亲的认证已通过。"))

    [template] = standin.templates
    assert template["touser"] == openid
    assert template["data"]["thing1"]["value"].startswith("您母亲的认证已通过")


def test_every_account_bound_to_the_person_is_told(wx_app, standin, openid):
    runtime = wx_app.extensions["runtime"]
    person_id = _person_bound_to(runtime, "wechat", openid)
    page = wx_app.test_client()
    sender = web_chat_conversation(wx_app, page)
    with runtime.database.session() as session:
        bind_person(
            session, account_for(session, "web", sender), session.get(Person, person_id), "女儿"
        )

    assert notifications.tell_person(runtime, person_id, notifications.texts("提醒")) == 2
    assert standin.sent_texts(openid) == ["提醒"]
    response = page.post("/chat/inbox", json={})
    assert [m["text"] for m in response.get_json()] == ["提醒"]


def test_the_web_chat_inbox_hands_each_message_over_once(client, chat_app):
    runtime = chat_app.extensions["runtime"]
    sender = web_chat_conversation(chat_app, client)
    runtime.outbound.deliver(
        Recipient("web", sender), notifications.texts("工作人员：您好，照片收到了。")
    )

    first = client.post("/chat/inbox", json={})
    again = client.post("/chat/inbox", json={})
    # A sender named in the body is no key to anyone's inbox: the cookie is.
    other = chat_app.test_client().post("/chat/inbox", json={"sender": sender})

    assert [m["text"] for m in first.get_json()] == ["工作人员：您好，照片收到了。"]
    assert again.get_json() == [] and other.get_json() == []


def test_an_unreachable_person_is_logged_not_an_error(chat_app, caplog):
    runtime = chat_app.extensions["runtime"]
    person_id = _person_bound_to(runtime, "alipay", "2088" + "0" * 12)  # Alipay not configured

    assert notifications.tell_person(runtime, person_id, notifications.texts("你好")) == 0
    assert "no reachable account" in caplog.text


def test_the_router_refuses_a_channel_it_has_no_port_for():
    collecting = CollectingOutbound()
    router = OutboundRouter({"wechat": collecting})
    router.deliver(Recipient("wechat", "o1"), notifications.texts("a"))

    assert collecting.texts_for(Recipient("wechat", "o1")) == ["a"]
    with pytest.raises(NoRoute, match="sms"):
        router.deliver(Recipient("sms", "1"), notifications.texts("b"))


def test_a_notification_job_runs_in_a_real_rq_worker_without_the_web_app(
    wx_app, wx_config, standin, openid, redis_url
):
    runtime = wx_app.extensions["runtime"]
    with runtime.database.session() as session:
        account_id = account_for(session, "wechat", openid).id
    queue = RedisQueue(redis_url, name=f"outbound-{uuid.uuid4().hex[:8]}")
    queue.enqueue(notifications.tell_account, account_id, notifications.texts("审核结果：通过"))

    try:
        run_rq_worker(wx_config, queue.queue.name)
    finally:
        queue.queue.delete(delete_jobs=True)
    assert standin.sent_texts(openid) == ["审核结果：通过"]
