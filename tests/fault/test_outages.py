"""Redis and PostgreSQL go away in the middle of a conversation and come back.

Each server is reached through a TCP proxy the test starts (tcp_proxy.py) — the machine's own
servers are never stopped. While a part is away every request is a 503 that changed nothing
and ``/health`` says which part; when it is back ``/health`` is 200 within seconds and the
user's resent message is answered once: nothing lost, nothing answered twice.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from tcp_proxy import TcpProxy
from wechat_standin import WeChatPlatform, run_jobs, wait_for_threads

from tests.support import POSTGRES_URL, REDIS_URL

pytest_plugins = ["wechat_fixtures"]

RECOVERY_SECONDS = 10  # /health must say 200 within this after the server is back


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def proxy_for(url: str) -> TcpProxy:
    parts = urlsplit(url)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port)


@pytest.fixture
def redis_proxy():
    with proxy_for(REDIS_URL) as proxy:
        yield proxy


@pytest.fixture
def postgres_proxy():
    with proxy_for(POSTGRES_URL) as proxy:
        yield proxy


class RestUser:
    """One person on the REST channel, keeping what was answered."""

    def __init__(self, client):
        self.client = client
        self.sender = f"fault-{uuid.uuid4().hex[:12]}"
        self.answered: list[str] = []

    def say(self, text: str):
        response = self.client.post(
            "/webhooks/rest/webhook", json={"sender": self.sender, "message": text}
        )
        if response.status_code == 200:
            self.answered.append(text)
        return response


def health(client) -> tuple[int, dict]:
    response = client.get("/health")
    return response.status_code, response.get_json()


def until_healthy(client) -> list[int]:
    """Poll /health until 200; the statuses seen (each 200 or an honest 503)."""
    seen = []
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        status, body = health(client)
        seen.append(status)
        if status == 200:
            return seen
        assert status == 503 and body["status"] == "unavailable", body
        time.sleep(0.2)
    raise AssertionError(f"/health still not 200 {RECOVERY_SECONDS} s after the restart: {seen}")


def user_texts(app, user: RestUser) -> list[str]:
    tracker = app.extensions["stores"].trackers.get(f"rest:{user.sender}") or {}
    return [e.get("text") for e in tracker.get("events", []) if e.get("event") == "user"]


def test_redis_stopped_and_restarted_mid_conversation(app_config, redis_proxy):
    from pension import create_app

    app = create_app({**app_config, "REDIS_URL": through(REDIS_URL, redis_proxy)})
    client = app.test_client()
    user = RestUser(client)
    try:
        assert user.say("你好").status_code == 200
        assert health(client)[0] == 200

        redis_proxy.stop()
        status, body = health(client)
        assert status == 503 and body["redis"] == "unavailable" and body["database"] == "ok"
        refused = user.say("认证要带什么")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "稍后再试" in refused.get_json()["message"]

        redis_proxy.start()
        until_healthy(client)
        assert user.say("认证要带什么").status_code == 200  # the user sends it again
        assert user.say("谢谢").status_code == 200
        assert user_texts(app, user) == user.answered == ["你好", "认证要带什么", "谢谢"]
    finally:
        app.extensions["stores"].close()
        app.extensions["db"].dispose()


NEEDS_THE_ROSTER = "我叫王秀兰，身份证号610102195203150020，查询认证状态"


def test_postgres_stopped_and_restarted_mid_conversation(app_config, postgres_url, postgres_proxy):
    from pension import create_app

    app = create_app({**app_config, "DATABASE_URL": through(postgres_url, postgres_proxy)})
    client = app.test_client()
    user = RestUser(client)
    try:
        assert user.say("你好").status_code == 200

        postgres_proxy.stop()
        status, body = health(client)
        assert status == 503 and body["database"] == "unavailable" and body["redis"] == "ok"
        # A turn that reads the roster is refused (an FAQ may still be answered from Redis).
        refused = user.say(NEEDS_THE_ROSTER)
        assert refused.status_code == 503 and refused.is_json

        postgres_proxy.start()
        until_healthy(client)
        assert user.say(NEEDS_THE_ROSTER).status_code == 200  # the user sends it again
        assert user.say("谢谢").status_code == 200
        assert user_texts(app, user) == user.answered == ["你好", NEEDS_THE_ROSTER, "谢谢"]
    finally:
        app.extensions["stores"].close()
        app.extensions["db"].dispose()


def test_a_wechat_message_retried_across_a_redis_restart_is_answered_once(
    wx_make_app, redis_proxy, standin, openid
):
    app = wx_make_app(REDIS_URL=through(REDIS_URL, redis_proxy))
    client, platform = app.test_client(), WeChatPlatform()
    first = platform.post(client, platform.text(openid, "你好"))
    assert platform.reply(first)  # answered passively

    message_id = platform.new_msg_id()
    redis_proxy.stop()
    during = platform.post(client, platform.text(openid, "谢谢", msg_id=message_id))
    # A 503 (nothing was kept; WeChat sends it again), or answered from what survives.
    assert during.status_code in (200, 503)
    redis_proxy.start()
    until_healthy(client)
    # WeChat's retries: the same message id, twice more.
    retries = [platform.post(client, platform.text(openid, "谢谢", msg_id=message_id))]
    retries.append(platform.post(client, platform.text(openid, "谢谢", msg_id=message_id)))
    assert all(r.status_code == 200 for r in retries)
    retries.insert(0, during)
    wait_for_threads()
    run_jobs(app)

    engine = app.extensions["engine"]
    asked = [m.text for m in engine.messages if m.sender == openid]
    assert asked == ["你好", "谢谢"]  # nothing lost, nothing handled twice
    passive = [r for r in retries if r.status_code == 200 and platform.reply(r)]
    late = standin.sent_texts(openid)
    assert len(passive) + len(late) >= 1, "the retried message was never answered"
    answers = [platform.reply(r)["Content"] for r in passive] + late
    assert len(set(answers)) == 1 and (len(late) == 0 or not passive), answers
