"""Relatives talking to the real assistant through the Alipay life account, end to end.

The gateway acknowledges, an RQ worker (a real ``rq.SimpleWorker`` on Redis, in this process)
runs the dialogue engine on PostgreSQL with the demo roster, and the replies arrive at the
stand-in for Alipay as custom sends. One Alipay user binds several people and then picks whom
a request is for by typing the number of a listed person.
"""

from __future__ import annotations

import time
import uuid

import pytest
from rq import SimpleWorker
from sqlalchemy import select

import pension.runtime
from bot.stores import MemoryInboxStore
from pension import create_app
from pension.jobs import RedisQueue
from services.accounts import bound_people
from services.models import ChannelAccount
from tests import support
from tests.channels.alipay_standin import (
    APP_ID,
    GATEWAY_FORM,
    AlipayStandIn,
    Keys,
    new_user_id,
    notify_xml,
    pkcs1_b64,
    read_reply,
)
from tests.support import FACES, ident

GATEWAY = "/alipay/gateway"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def standin(keys):
    with AlipayStandIn(keys) as server:
        yield server


def settings(keys: Keys, standin: AlipayStandIn) -> dict:
    return {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": pkcs1_b64(keys.app),
        "ALIPAY_PUBLIC_KEY": keys.alipay_public,
        "ALIPAY_SERVER_URL": standin.url,
        "ALIPAY_MEDIA_URL": standin.media_url,
    }


@pytest.fixture
def rq_app(
    request, postgres_url, postgres_database, redis_url, redis_prefix, tmp_path, keys, standin
):
    """The service on PostgreSQL + Redis with the demo roster; jobs on a private RQ queue."""
    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "SECRET_KEY": "test",
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": True,
            "PHOTO_DIR": str(tmp_path / "photos"),
            "CLOCK": support.frozen_clock(),
            "TESTING": True,
            **settings(keys, standin),
        }
    )
    queue = RedisQueue(redis_url, name=f"test-alipay-{uuid.uuid4().hex[:8]}")
    app.extensions["jobs"] = queue
    previous = pension.runtime._worker_runtime
    pension.runtime._worker_runtime = app.extensions["runtime"]  # what RQ jobs run with
    yield app
    pension.runtime._worker_runtime = previous
    queue.queue.delete(delete_jobs=True)
    app.extensions["db"].dispose()
    support.empty_tables(postgres_database)


class AlipayUser:
    """One Alipay user in the life account: each action is a signed notify to the gateway,
    then the RQ worker runs until the queue is empty; returns what the user reads."""

    def __init__(self, app, standin: AlipayStandIn, keys: Keys):
        self.app, self.standin, self.keys = app, standin, keys
        self.client = app.test_client()
        self.user_id = new_user_id()
        queue = app.extensions["jobs"].queue
        self.worker = SimpleWorker([queue], connection=queue.connection)

    def _notify(self, msg_type: str, **fields) -> str:
        seen = len(self.standin.texts_to(self.user_id))
        xml = notify_xml(self.user_id, msg_type, msg_id=uuid.uuid4().hex, **fields)
        response = self.client.post(
            GATEWAY, data=self.standin.gateway_body(xml), content_type=GATEWAY_FORM
        )
        assert response.status_code == 200
        ack = read_reply(self.keys, response.headers["Content-Type"], response.get_data())
        assert "<MsgType><![CDATA[ack]]></MsgType>" in ack
        self.worker.work(burst=True)
        return "\n".join(self.standin.texts_to(self.user_id)[seen:])

    def say(self, text: str) -> str:
        return self._notify("text", content=text)

    def click(self, key: str) -> str:
        return self._notify("event", event_type="click", action_param=key)

    def follow(self) -> str:
        return self._notify("event", event_type="follow")

    def send_photo(self, data: bytes) -> str:
        media_id = f"L21pZnMv{uuid.uuid4().hex}"
        self.standin.media[media_id] = data
        return self._notify("image", media_id=media_id)


def numbered_options(reply: str) -> dict[str, str]:
    """``"2. 妈妈 张建军"`` lines → {title: number}."""
    options = {}
    for line in reply.splitlines():
        number, dot, title = line.partition(". ")
        if dot and number.isdigit():
            options[title] = number
    return options


def test_following_the_life_account_greets_with_the_menu_via_an_rq_worker(rq_app, standin, keys):
    user = AlipayUser(rq_app, standin, keys)
    reply = user.follow()
    assert reply, "no greeting was sent"
    assert numbered_options(reply), reply  # the menu's buttons, as lines to type back


def test_a_relative_binds_two_parents_then_picks_one_by_number(rq_app, standin, keys):
    user = AlipayUser(rq_app, standin, keys)
    for person_no in ("DEMO0005", "DEMO0006"):
        name, id_number = ident(person_no)
        reply = user.say(f"帮我妈认证 {name} {id_number}")
        assert name in reply, reply
        user.say("谢谢")

    with rq_app.extensions["db"].session() as session:
        account = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.channel == "alipay", ChannelAccount.external_id == user.user_id
            )
        ).one()
        bound = {person.person_no for person, _relation in bound_people(session, account)}
        assert bound == {"DEMO0005", "DEMO0006"}
        assert account.last_inbound_at is not None

    reply = user.say("查一下认证状态")
    assert "查询谁" in reply, reply
    options = numbered_options(reply)
    chosen_name = ident("DEMO0006")[0]
    title = next(t for t in options if chosen_name in t)
    reply = user.say(options[title])  # typed back, as the life account shows no buttons
    assert chosen_name in reply and "上次认证" in reply, reply


def test_the_menu_binds_a_parent_then_certify_asks_for_whom(rq_app, standin, keys):
    user = AlipayUser(rq_app, standin, keys)
    name, id_number = ident("DEMO0005")
    assert "哪位家人" in user.click("RELATIVE")
    assert "姓名" in user.say("妈妈")
    assert "身份证号码" in user.say(name)
    reply = user.say(id_number)
    assert f"{name}（妈妈）" in reply and "刷脸认证" in numbered_options(reply), reply

    reply = user.click("CERTIFY")
    assert "为谁认证" in reply, reply
    options = numbered_options(reply)
    assert set(options) == {f"妈妈 {name}", "添加家人", "我自己"}
    reply = user.say(options[f"妈妈 {name}"])
    assert name in reply and "认证" in reply, reply


def test_one_alipay_user_binds_four_people_and_the_fifth_is_refused(rq_app, standin, keys):
    user = AlipayUser(rq_app, standin, keys)
    for relation, person_no in [
        ("妈妈", "DEMO0005"),
        ("爸爸", "DEMO0002"),
        ("岳母", "DEMO0009"),
        ("奶奶", "DEMO0012"),
    ]:
        name, id_number = ident(person_no)
        reply = user.say(f"帮我{relation}认证 {name} {id_number}")
        if "为谁认证" in reply:
            user.say(numbered_options(reply)["添加家人"])
            user.say(relation)
            user.say(name)
            reply = user.say(id_number)
        assert name in reply, reply
    reply = user.say("帮家人认证")
    assert "为谁认证" in reply
    assert len([t for t in numbered_options(reply) if t not in {"我自己", "添加家人"}]) == 4
    name, id_number = ident("DEMO0013")
    reply = user.say(f"给我爷爷认证 {name} {id_number}")
    assert "最多" in reply and "4" in reply, reply


def test_a_photo_sent_in_the_life_account_reaches_manual_review(rq_app, standin, keys):
    user = AlipayUser(rq_app, standin, keys)
    name, id_number = ident("DEMO0011")  # no smartphone: photo review
    user.say("能不能拍照认证")
    user.say(name)
    assert "照片" in user.say(id_number)
    reply = user.send_photo((FACES / "obama.jpg").read_bytes())
    assert "收到" in reply and "审核" in reply, reply


def test_without_redis_the_same_channel_runs_on_threads_and_memory(tmp_path, keys, standin):
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.db'}",
            "REDIS_URL": None,
            "AUTO_MIGRATE": True,
            "LOAD_DEMO_ROSTER": True,
            "PHOTO_DIR": str(tmp_path / "photos"),
            "CLOCK": support.frozen_clock(),
            **settings(keys, standin),
        }
    )
    try:
        assert isinstance(app.extensions["alipay"].inbox, MemoryInboxStore)
        user_id = new_user_id()
        xml = notify_xml(user_id, "event", event_type="follow")
        response = app.test_client().post(
            GATEWAY, data=standin.gateway_body(xml), content_type=GATEWAY_FORM
        )
        assert response.status_code == 200
        assert "ack" in read_reply(keys, response.headers["Content-Type"], response.get_data())
        deadline = time.monotonic() + 20
        while not standin.texts_to(user_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert numbered_options("\n".join(standin.texts_to(user_id)))
    finally:
        app.extensions["jobs"].pool.shutdown(wait=True)
        app.extensions["db"].dispose()
