"""The Alipay life account gateway against a stand-in for Alipay, on real PostgreSQL and Redis.

These tests put a recording engine in place of the dialogue engine, so they see exactly what
the channel hands over (text, photo bytes, events) and in which order; the real engine talks
through the same channel in ``test_alipay_conversations.py``.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from alipay.aop.api import DefaultAlipayClient as sdk_client
from alipay.aop.api.util import WebUtils
from alipay.aop.api.util.SignatureUtils import sign_with_rsa2, verify_with_rsa

from bot.messages import BotMessage, Button
from channels import alipay_transport
from channels.alipay import (
    PHOTO_NOT_RECEIVED,
    AlipayChannel,
    AlipayError,
    AlipayKeys,
    rsa2_sign,
    rsa2_verify,
)
from channels.inbound import sorry_text
from channels.remote import client_address, trusted_networks
from pension import create_app
from pension.jobs import InlineQueue
from tests import support
from tests.channels.alipay_standin import (
    APP_ID,
    GATEWAY_FORM,
    AlipayStandIn,
    Keys,
    check_xml,
    new_key,
    new_user_id,
    notify_xml,
    pkcs1_b64,
    pkcs8_b64,
    read_reply,
    spki_b64,
)
from tests.tcp_proxy import TcpProxy

GATEWAY = "/alipay/gateway"
FORM = GATEWAY_FORM
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"


# --------------------------------------------------------------------------- helpers


class RecordingEngine:
    """Stands in for the dialogue engine: records what it is given, answers predictably."""

    def __init__(self) -> None:
        self.messages = []
        self.delay = 0.0
        self._mutex = threading.Lock()
        self.active: dict[str, int] = {}
        self.overlap_same_sender = False
        self.max_active = 0

    def handle(self, message):
        with self._mutex:
            self.messages.append(message)
            self.active[message.sender] = self.active.get(message.sender, 0) + 1
            self.overlap_same_sender |= self.active[message.sender] > 1
            self.max_active = max(self.max_active, sum(self.active.values()))
        time.sleep(self.delay)
        with self._mutex:
            self.active[message.sender] -= 1
        if message.text == ENGINE_BREAKS:
            raise RuntimeError("the engine broke on this message")
        if message.image is not None:
            return [BotMessage(text=f"照片{len(message.image)}字节")]
        if message.event:
            return [BotMessage(text=f"事件{message.event}")]
        return [
            BotMessage(
                text=f"收到：{message.text}",
                buttons=(Button("我自己", "/me"), Button("妈妈 王秀兰", "/mum")),
            )
        ]

    def of(self, sender: str) -> list:
        with self._mutex:
            return [m for m in self.messages if m.sender == sender]


ENGINE_BREAKS = "这句话让引擎出错"


class RecordingQueue(InlineQueue):
    """The in-process queue, remembering its jobs so a test can wait for all of them."""

    def __init__(self, app):
        super().__init__(app, threads=4)
        self.futures = []

    def enqueue(self, func, *args, **kwargs):
        future = super().enqueue(func, *args, **kwargs)
        self.futures.append(future)
        return future

    def join(self, timeout: float = 30.0) -> None:
        done = 0
        while done < len(self.futures):  # a job may enqueue another
            self.futures[done].result(timeout=timeout)
            done += 1


def signed_reply(response, keys: Keys) -> str:
    """The text inside ``<response>`` of a gateway reply, its signature checked."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return read_reply(keys, response.headers["Content-Type"], response.get_data())


def is_failure_reply(response, keys: Keys) -> bool:
    return response.status_code == 200 and "<success>false</success>" in signed_reply(
        response, keys
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def standin(keys):
    with AlipayStandIn(keys) as server:
        yield server


def alipay_settings(keys: Keys, standin: AlipayStandIn, private_key: str | None = None) -> dict:
    return {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": private_key or pkcs8_b64(keys.app),
        "ALIPAY_PUBLIC_KEY": keys.alipay_public,
        "ALIPAY_SERVER_URL": standin.url,
        "ALIPAY_MEDIA_URL": standin.media_url,
    }


@pytest.fixture(scope="module")
def module_redis(request):
    """(Redis URL, a key prefix private to this module); the keys are deleted afterwards."""
    client = redis.Redis.from_url(support.REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        support.service_missing("Redis", error)
    prefix = f"test:alipay:{uuid.uuid4().hex[:8]}:"
    yield support.REDIS_URL, prefix
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def gateway_app(
    request, postgres_url, postgres_database, module_redis, keys, standin, tmp_path_factory
):
    """One app for the protocol tests: PostgreSQL, Redis stores, a recording engine, jobs on
    this process's threads (so a test can wait for them)."""
    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "REDIS_URL": module_redis[0],
            "REDIS_PREFIX": module_redis[1],
            "SECRET_KEY": "test",
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": False,
            "PHOTO_DIR": str(tmp_path_factory.mktemp("alipay-photos")),
            "TESTING": True,
            **alipay_settings(keys, standin),
        }
    )
    app.extensions["engine"] = RecordingEngine()
    app.extensions["jobs"] = RecordingQueue(app.extensions["runtime"])
    yield app
    app.extensions["jobs"].pool.shutdown(wait=True)
    app.extensions["db"].dispose()
    support.empty_tables(postgres_database)


@pytest.fixture
def gw(gateway_app):
    gateway_app.extensions["engine"].delay = 0.0
    return gateway_app


@pytest.fixture
def client(gw):
    return gw.test_client()


def post(client, body: bytes, content_type: str = FORM):
    return client.post(GATEWAY, data=body, content_type=content_type)


# --------------------------------------------------------------------------- keys


def test_private_key_in_pkcs1_or_pkcs8_and_pem_all_load_to_the_same_key(keys):
    loaded = [
        AlipayKeys.load(pkcs1_b64(keys.app), keys.alipay_public),
        AlipayKeys.load(pkcs8_b64(keys.app), keys.alipay_public),
        AlipayKeys.load(
            "-----BEGIN PRIVATE KEY-----\n"
            + "\n".join(re.findall(".{1,64}", pkcs8_b64(keys.app)))
            + "\n-----END PRIVATE KEY-----\n",
            f"-----BEGIN PUBLIC KEY-----\n{keys.alipay_public}\n-----END PUBLIC KEY-----",
        ),
    ]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0].app_private_key == pkcs1_b64(keys.app)  # what the SDK's signer reads
    assert loaded[0].app_public_key == keys.app_public  # what verifygw answers
    assert loaded[0].alipay_public_key == keys.alipay_public


@pytest.mark.parametrize(
    "private, public, complaint",
    [
        ("not base64!", None, "not base64"),
        ("bm90IGEga2V5", None, "not an RSA key"),
        (None, "bm90IGEga2V5", "not an RSA key"),
        ("APP_PUBLIC", None, "public key"),
        (None, "ALIPAY_PRIVATE", "private key"),
        ("", None, "empty"),
    ],
)
def test_unusable_keys_are_refused_with_a_reason(keys, private, public, complaint):
    private = {"APP_PUBLIC": keys.app_public}.get(private, private)
    public = {"ALIPAY_PRIVATE": pkcs8_b64(keys.alipay)}.get(public, public)
    with pytest.raises(ValueError, match=complaint):
        AlipayKeys.load(
            pkcs8_b64(keys.app) if private is None else private,
            keys.alipay_public if public is None else public,
        )


def test_a_configured_app_id_without_keys_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="ALIPAY_APP_PRIVATE_KEY is required"):
        create_app(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
                "REDIS_URL": None,
                "LOAD_DEMO_ROSTER": False,
                "ALIPAY_APP_ID": APP_ID,
                "ALIPAY_APP_PRIVATE_KEY": None,
            }
        )


def test_the_gateway_is_off_while_no_app_id_is_configured(postgres_url, tmp_path):
    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "REDIS_URL": None,
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": False,
            "PHOTO_DIR": str(tmp_path),
            "ALIPAY_APP_ID": None,
        }
    )
    try:
        assert app.extensions["alipay"] is None
        response = app.test_client().post(GATEWAY, data=b"service=x", content_type=FORM)
        assert response.status_code == 404
    finally:
        app.extensions["jobs"].pool.shutdown(wait=True)
        app.extensions["db"].dispose()


# --------------------------------------------------------------------------- transport hook


def test_transport_hook_opens_what_the_sdk_opens_for_the_production_gateway():
    url = "https://openapi.alipay.com/gateway.do"
    ours_target, ours = alipay_transport.get_http_connection(url, "a=1&b=2", 15)
    sdk_target, sdk = alipay_transport._SDK_GET_HTTP_CONNECTION(url, "a=1&b=2", 15)
    assert ours_target == sdk_target == "https://openapi.alipay.com/gateway.do?a=1&b=2"
    assert type(ours) is type(sdk) is http.client.HTTPSConnection
    assert (ours.host, ours.port, ours.timeout) == (sdk.host, sdk.port, sdk.timeout)
    assert WebUtils.get_http_connection is alipay_transport.get_http_connection


def test_without_the_hook_the_sdk_cannot_reach_a_gateway_on_another_port(keys, standin):
    channel = AlipayChannel(
        app_id=APP_ID,
        keys=AlipayKeys.load(pkcs1_b64(keys.app), keys.alipay_public),
        server_url=standin.url,
    )
    sender = new_user_id()
    alipay_transport.uninstall()
    try:
        with pytest.raises(AlipayError):
            channel.send_text(sender, "无钩子")
    finally:
        alipay_transport.install()
    channel.send_text(sender, "有钩子")
    assert standin.texts_to(sender) == ["有钩子"]


def test_the_standin_and_the_sdk_check_each_others_signatures(keys, standin):
    sender = new_user_id()
    wrong_app_key = AlipayChannel(
        app_id=APP_ID,
        keys=AlipayKeys.load(pkcs1_b64(new_key()), keys.alipay_public),
        server_url=standin.url,
    )
    rejected = len(standin.rejected)
    with pytest.raises(AlipayError, match="invalid-signature"):
        wrong_app_key.send_text(sender, "伪造的应用签名")
    assert len(standin.rejected) == rejected + 1
    wrong_alipay_key = AlipayChannel(
        app_id=APP_ID,
        keys=AlipayKeys.load(pkcs1_b64(keys.app), spki_b64(new_key())),
        server_url=standin.url,
    )
    with pytest.raises(AlipayError, match="verify failed"):
        wrong_alipay_key.send_text(sender, "应答签名对不上")
    assert standin.texts_to(sender) == ["应答签名对不上"]  # sent, but the answer was refused


@pytest.mark.parametrize("charset", ["utf-8", "gbk"])
def test_our_rsa2_signature_is_the_sdks_byte_for_byte(keys, charset):
    loaded = AlipayKeys.load(pkcs8_b64(keys.app), keys.alipay_public)
    content = "biz_content=<XML><Content>王秀兰 认证</Content></XML>&charset=GBK&sign_type=RSA2"
    ours = rsa2_sign(loaded.signer, content.encode(charset))
    assert ours == sign_with_rsa2(loaded.app_private_key, content, charset)
    # The SDK's client signs its own requests through the same OpenSSL code (the hook).
    assert sdk_client.sign_with_rsa2 is alipay_transport.sign_with_rsa2
    assert sdk_client.sign_with_rsa2(loaded.app_private_key, content, charset) == ours
    # … and the SDK's verifier accepts what ours signed, ours what Alipay's key signed.
    assert verify_with_rsa(loaded.app_public_key, content.encode(charset), ours)
    alipay_keys = AlipayKeys.load(pkcs8_b64(keys.alipay), keys.app_public)
    assert rsa2_verify(alipay_keys.verifier, content.encode(charset), ours)
    assert not rsa2_verify(alipay_keys.verifier, content.encode(charset) + b"x", ours)
    assert not rsa2_verify(alipay_keys.verifier, content.encode(charset), "not base64!")


# --------------------------------------------------------------------------- activation


@pytest.mark.parametrize("private_format", [pkcs1_b64, pkcs8_b64], ids=["pkcs1", "pkcs8"])
def test_verifygw_gets_the_signed_activation_reply(
    postgres_url, redis_url, redis_prefix, tmp_path, keys, standin, private_format
):
    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": False,
            "PHOTO_DIR": str(tmp_path),
            **alipay_settings(keys, standin, private_format(keys.app)),
        }
    )
    try:
        body = standin.gateway_body(check_xml(), service="alipay.service.check")
        response = post(app.test_client(), body)
        assert response.headers["Content-Type"] == "text/xml;charset=GBK"
        content = signed_reply(response, keys)
        assert content == f"<success>true</success><biz_content>{keys.app_public}</biz_content>"
    finally:
        app.extensions["db"].dispose()


def test_verifygw_with_a_forged_signature_gets_the_signed_failure_reply(client, keys, standin):
    body = standin.gateway_body(check_xml(), service="alipay.service.check", key=new_key())
    content = signed_reply(post(client, body), keys)
    assert content == (
        "<success>false</success><error_code>VERIFY_FAILED</error_code>"
        f"<biz_content>{keys.app_public}</biz_content>"
    )


def forged_from(client, standin, address: str, forwarded_for: str | None = None):
    body = standin.gateway_body(check_xml(), service="alipay.service.check", key=new_key())
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(
        GATEWAY,
        data=body,
        content_type=FORM,
        headers=headers,
        environ_base={"REMOTE_ADDR": address},
    )


def test_after_20_bad_signatures_a_minute_a_client_gets_a_bare_429(client, keys, standin):
    forger, other = "203.0.113.7", "203.0.113.8"
    for _ in range(20):
        assert is_failure_reply(forged_from(client, standin, forger), keys)
    refused = forged_from(client, standin, forger)
    assert refused.status_code == 429
    assert b"<sign>" not in refused.get_data()  # no RSA work spent on the forger
    # Rotating X-Forwarded-For does not help: it is believed from trusted proxies only.
    assert forged_from(client, standin, forger, forwarded_for="198.51.100.1").status_code == 429
    # Another client is still answered, valid notifies from it handled.
    assert is_failure_reply(forged_from(client, standin, other), keys)
    sender = new_user_id()
    body = standin.gateway_body(notify_xml(sender, "text", content="你好"))
    response = client.post(
        GATEWAY, data=body, content_type=FORM, environ_base={"REMOTE_ADDR": other}
    )
    assert "ack" in signed_reply(response, keys)


def test_behind_a_trusted_proxy_the_limit_counts_the_forwarded_client(gw, client, standin):
    channel = gw.extensions["alipay"]
    proxy, forger, configured = "10.0.0.5", "198.51.100.23", channel.trusted_proxies
    channel.trusted_proxies = trusted_networks("10.0.0.0/8")
    try:
        for _ in range(20):
            forged_from(client, standin, proxy, forwarded_for=f"1.2.3.4, {forger}")
        assert forged_from(client, standin, proxy, f"{forger}").status_code == 429
        assert forged_from(client, standin, proxy, "198.51.100.24").status_code == 200
    finally:
        channel.trusted_proxies = configured


@pytest.mark.parametrize(
    "remote, forwarded, client",
    [
        ("203.0.113.1", "9.9.9.9", "203.0.113.1"),  # untrusted caller: header ignored
        ("127.0.0.1", "9.9.9.9", "9.9.9.9"),
        ("127.0.0.1", "9.9.9.9, 10.1.1.1, 127.0.0.1", "9.9.9.9"),  # proxies skipped
        ("127.0.0.1", "spoofed, 9.9.9.9", "9.9.9.9"),  # the caller's own hops are not read
        ("127.0.0.1", "not-an-address", "not-an-address"),
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_the_client_address_sees_through_trusted_proxies_only(remote, forwarded, client):
    assert client_address(remote, forwarded, trusted_networks("127.0.0.1,10.0.0.0/8")) == client


# --------------------------------------------------------------------------- messages


def test_a_gbk_text_is_acknowledged_at_once_and_answered_by_custom_send(gw, client, standin, keys):
    sender = new_user_id()
    xml = notify_xml(sender, "text", content="帮我妈认证，她叫王秀兰", msg_id=uuid.uuid4().hex)
    content = signed_reply(post(client, standin.gateway_body(xml)), keys)
    assert re.fullmatch(
        rf"<XML><ToUserId><!\[CDATA\[{sender}\]\]></ToUserId><AppId><!\[CDATA\[{APP_ID}\]\]>"
        r"</AppId><CreateTime>\d{13}</CreateTime><MsgType><!\[CDATA\[ack\]\]></MsgType></XML>",
        content,
    )
    gw.extensions["jobs"].join()
    (message,) = gw.extensions["engine"].of(sender)
    assert (message.channel, message.text) == ("alipay", "帮我妈认证，她叫王秀兰")
    assert standin.texts_to(sender) == ["收到：帮我妈认证，她叫王秀兰\n1. 我自己\n2. 妈妈 王秀兰"]


def test_v1_signatures_without_sign_type_and_utf8_forms_are_accepted(gw, client, standin, keys):
    sender = new_user_id()
    for version, charset, text in [("v1", "GBK", "第一条"), ("v2", "UTF-8", "第二条")]:
        body = standin.gateway_body(
            notify_xml(sender, "text", content=text), version=version, charset=charset
        )
        response = post(client, body, f"application/x-www-form-urlencoded; charset={charset}")
        assert "<MsgType><![CDATA[ack]]></MsgType>" in signed_reply(response, keys)
    gw.extensions["jobs"].join()
    assert [m.text for m in gw.extensions["engine"].of(sender)] == ["第一条", "第二条"]


@pytest.mark.parametrize(
    "event_type, action_param, expected",
    [
        ("follow", None, "subscribe"),
        ("click", "CERTIFY", "menu:CERTIFY"),
        ("click", "STATUS", "menu:STATUS"),
        ("click", "FAQ", "menu:FAQ"),
        ("click", "RELATIVE", "menu:RELATIVE"),
        ("click", "UNKNOWN_KEY", None),
        ("unfollow", None, None),
        ("enter", '{"scene":{"sceneCode":"1"}}', None),
    ],
)
def test_follow_and_menu_clicks_become_engine_events_and_unfollow_nothing(
    gw, client, standin, keys, event_type, action_param, expected
):
    sender = new_user_id()
    fields = {"event_type": event_type}
    if action_param:
        fields["action_param"] = action_param
    response = post(client, standin.gateway_body(notify_xml(sender, "event", **fields)))
    assert "ack" in signed_reply(response, keys)
    gw.extensions["jobs"].join()
    events = [m.event for m in gw.extensions["engine"].of(sender)]
    assert events == ([expected] if expected else [])
    assert standin.texts_to(sender) == ([f"事件{expected}"] if expected else [])


def test_a_photo_is_downloaded_with_a_signed_request_and_handed_to_the_engine(
    gw, client, standin, keys
):
    sender, media_id = new_user_id(), f"L21pZnMv{uuid.uuid4().hex}"
    standin.media[media_id] = JPEG
    rejected = len(standin.rejected)
    post(client, standin.gateway_body(notify_xml(sender, "image", media_id=media_id)))
    gw.extensions["jobs"].join()
    (message,) = gw.extensions["engine"].of(sender)
    assert message.image == JPEG and message.text is None
    assert media_id in standin.media_requests and len(standin.rejected) == rejected
    assert standin.texts_to(sender) == [f"照片{len(JPEG)}字节"]


def test_a_photo_that_cannot_be_downloaded_gets_an_apology_not_the_engine(gw, client, standin):
    sender = new_user_id()
    post(client, standin.gateway_body(notify_xml(sender, "image", media_id="expired-media")))
    gw.extensions["jobs"].join()
    assert gw.extensions["engine"].of(sender) == []
    assert standin.texts_to(sender) == [PHOTO_NOT_RECEIVED]


def test_an_engine_failure_gets_the_same_apology_as_on_wechat(gw, client, standin):
    sender = new_user_id()
    post(client, standin.gateway_body(notify_xml(sender, "text", content=ENGINE_BREAKS)))
    gw.extensions["jobs"].join()
    assert standin.texts_to(sender) == [sorry_text()]
    assert "12333" in sorry_text()  # a phone number: the user is never left without a next step


def test_replayed_notifies_are_acknowledged_but_processed_once(gw, client, standin, keys):
    sender = new_user_id()
    with_id = standin.gateway_body(notify_xml(sender, "text", content="一", msg_id="M1" + sender))
    recent = int(time.time() * 1000)
    no_id = standin.gateway_body(notify_xml(sender, "text", content="二", create_time=recent))
    days_ago = int((time.time() - 3 * 24 * 3600) * 1000)  # older than the dedupe window
    stale = standin.gateway_body(notify_xml(sender, "text", content="三", create_time=days_ago))
    for body in [with_id, with_id, no_id, no_id, stale, with_id]:
        assert "ack" in signed_reply(post(client, body), keys)
    gw.extensions["jobs"].join()
    assert [m.text for m in gw.extensions["engine"].of(sender)] == ["一", "二"]


def test_one_senders_messages_are_handled_in_order_and_senders_in_parallel(gw, client, standin):
    engine = gw.extensions["engine"]
    engine.delay = 0.05
    senders = [new_user_id(), new_user_id(), new_user_id()]
    texts = [f"第{n}句" for n in range(8)]
    for text in texts:
        for sender in senders:
            post(client, standin.gateway_body(notify_xml(sender, "text", content=text)))
    gw.extensions["jobs"].join()
    for sender in senders:
        assert [m.text for m in engine.of(sender)] == texts
        assert standin.texts_to(sender) == [f"收到：{t}\n1. 我自己\n2. 妈妈 王秀兰" for t in texts]
    assert not engine.overlap_same_sender
    assert engine.max_active >= 2  # different senders were handled at the same time


def test_a_failed_custom_send_is_logged_and_later_messages_still_flow(gw, client, standin):
    sender = new_user_id()
    standin.fail_sends = 1
    for text in ["丢失的回复", "送达的回复"]:
        post(client, standin.gateway_body(notify_xml(sender, "text", content=text)))
    gw.extensions["jobs"].join()
    assert standin.texts_to(sender) == ["收到：送达的回复\n1. 我自己\n2. 妈妈 王秀兰"]
    assert len(gw.extensions["engine"].of(sender)) == 2


def test_a_flood_from_one_sender_is_acknowledged_but_only_30_a_minute_handled(gw, client, standin):
    sender = new_user_id()
    for n in range(35):
        post(client, standin.gateway_body(notify_xml(sender, "text", content=f"刷屏{n}")))
    gw.extensions["jobs"].join()
    assert [m.text for m in gw.extensions["engine"].of(sender)] == [f"刷屏{n}" for n in range(30)]


def test_a_notify_whose_job_cannot_be_queued_gets_503_and_alipays_retry_delivers_it(
    gw, client, standin, keys
):
    class DownQueue:
        def enqueue(self, *args, **kwargs):
            raise redis.ConnectionError("queue down")

    sender, jobs = new_user_id(), gw.extensions["jobs"]
    body = standin.gateway_body(notify_xml(sender, "text", content="重试", msg_id=uuid.uuid4().hex))
    gw.extensions["jobs"] = DownQueue()
    try:
        response = post(client, body)
    finally:
        gw.extensions["jobs"] = jobs
    assert response.status_code == 503
    assert "ack" in signed_reply(post(client, body), keys)  # Alipay's retry, deduplicated
    jobs.join()
    assert [m.text for m in gw.extensions["engine"].of(sender)] == ["重试"]


@pytest.fixture
def db_proxy(postgres_url):
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname, parts.port or 5432) as proxy:
        yield (
            proxy,
            postgres_url.replace(f"@{parts.hostname}:{parts.port}", f"@127.0.0.1:{proxy.port}", 1),
        )


@pytest.fixture
def app_through_proxy(db_proxy, postgres_database, module_redis, keys, standin, tmp_path):
    """An app whose database is reached through a TCP proxy the test can stop."""
    app = create_app(
        {
            "DATABASE_URL": db_proxy[1],
            "REDIS_URL": module_redis[0],
            "REDIS_PREFIX": module_redis[1],
            "SECRET_KEY": "test",
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": False,
            "PHOTO_DIR": str(tmp_path / "photos"),
            "TESTING": True,
            **alipay_settings(keys, standin),
        }
    )
    app.extensions["engine"] = RecordingEngine()
    app.extensions["jobs"] = RecordingQueue(app.extensions["runtime"])
    yield app
    app.extensions["jobs"].pool.shutdown(wait=True)
    app.extensions["db"].dispose()


def test_a_notify_while_the_database_is_down_is_kept_and_answered_when_it_is_back(
    app_through_proxy, db_proxy, standin, keys
):
    proxy, app = db_proxy[0], app_through_proxy
    client, engine, sender = app.test_client(), app.extensions["engine"], new_user_id()
    assert "ack" in signed_reply(
        post(client, standin.gateway_body(notify_xml(sender, "text", content="第一句"))), keys
    )
    app.extensions["jobs"].join()
    proxy.stop()  # PostgreSQL out of reach (only through this proxy: the server keeps running)
    body = standin.gateway_body(notify_xml(sender, "text", content="数据库断了", msg_id="m-db-1"))
    assert "ack" in signed_reply(post(client, body), keys)
    time.sleep(2.5)
    assert [m.text for m in engine.of(sender)] == ["第一句"]  # not handled into an apology
    proxy.start()
    app.extensions["jobs"].join(timeout=60)
    assert [m.text for m in engine.of(sender)] == ["第一句", "数据库断了"]
    replies = standin.texts_to(sender)
    assert [r for r in replies if "数据库断了" in r] and len(replies) == 2, replies


# --------------------------------------------------------------------------- bad input

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    )
    + "]><XML><FromUserId>2088000000000001</FromUserId><MsgType>text</MsgType>"
    "<Text><Content>&lol9;</Content></Text></XML>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<XML><FromUserId>2088000000000001</FromUserId><MsgType>text</MsgType>"
    "<Text><Content>&xxe;</Content></Text></XML>"
)
SENDER = "2088000000000001"


def _signed(standin, xml, **kwargs) -> bytes:
    return standin.gateway_body(xml, **kwargs)


def _tampered(standin) -> bytes:
    body = standin.gateway_body(notify_xml(SENDER, "text", content="原文"))
    return body.replace(b"%D4%AD%CE%C4", b"%B8%C4%CE%C4")  # 原文 → 改文, same GBK length


BAD_INPUTS = {
    "malformed XML": (lambda s: _signed(s, "<XML><FromUserId>x</XML>"), 400),
    "billion laughs": (lambda s: _signed(s, BILLION_LAUGHS), 400),
    "external entity": (lambda s: _signed(s, EXTERNAL_ENTITY), 400),
    "root is not XML": (lambda s: _signed(s, "<html><body/></html>"), 400),
    "no service": (lambda s: _signed(s, notify_xml(SENDER, "text", content="x"), service=""), 400),
    "unknown service": (lambda s: _signed(s, check_xml(), service="alipay.trade.pay"), 400),
    "check without verifygw": (
        lambda s: _signed(
            s, notify_xml(SENDER, "event", event_type="follow"), service="alipay.service.check"
        ),
        400,
    ),
    "no biz_content": (lambda s: _signed(s, ""), 400),
    "no FromUserId": (lambda s: _signed(s, notify_xml("", "text", content="x")), 400),
    "FromUserId breaks CDATA": (
        lambda s: _signed(s, notify_xml("a]]>b", "text", content="x")),
        400,
    ),
    "no MsgType": (lambda s: _signed(s, notify_xml(SENDER, "", content="x")), 400),
    "text without Content": (lambda s: _signed(s, notify_xml(SENDER, "text")), 400),
    "image without MediaId": (lambda s: _signed(s, notify_xml(SENDER, "image")), 400),
    "event without EventType": (lambda s: _signed(s, notify_xml(SENDER, "event")), 400),
    "another AppId": (
        lambda s: _signed(s, notify_xml(SENDER, "text", content="x", app_id="2021999")),
        400,
    ),
    "another app_id field": (
        lambda s: _signed(s, notify_xml(SENDER, "text", content="x"), extra={"app_id": "2021999"}),
        400,
    ),
    "forged signature": (
        lambda s: _signed(s, notify_xml(SENDER, "text", content="x"), key=new_key()),
        "failure",
    ),
    "tampered after signing": (_tampered, "failure"),
    "no sign": (
        lambda s: urlencode(
            {"service": "alipay.mobile.public.message.notify", "biz_content": "<XML/>"}
        ).encode(),
        "failure",
    ),
    "sign_type RSA": (
        lambda s: s.gateway_body(notify_xml(SENDER, "text", content="x")).replace(
            b"sign_type=RSA2", b"sign_type=RSA"
        ),
        "failure",
    ),
    "sign is not base64": (
        lambda s: re.sub(rb"sign=[^&]+", b"sign=%25%25%25", s.gateway_body(check_xml())),
        "failure",
    ),
    "empty body": (lambda s: b"", "failure"),
    "invalid GBK": (lambda s: b"service=%FF%FF&biz_content=%81", 400),
    "raw bytes that are not GBK": (lambda s: b"service=\xff\xfe", 400),
    "JSON, not a form": (lambda s: b'{"service": "alipay.service.check"}', 400),
    "a field twice": (lambda s: s.gateway_body(check_xml()) + b"&service=x", 400),
    "unsupported charset": (lambda s: b"charset=EBCDIC&service=x", 400),
    "oversize body": (
        lambda s: _signed(s, notify_xml(SENDER, "text", content="长" * 40000)),
        413,
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_gets_a_4xx_or_the_failure_reply_and_changes_nothing(
    gw, client, standin, keys, case
):
    make, expected = BAD_INPUTS[case]
    engine, jobs = gw.extensions["engine"], gw.extensions["jobs"]
    handled, queued, sent = len(engine.messages), len(jobs.futures), len(standin.sent)
    response = post(client, make(standin))
    if expected == "failure":
        assert is_failure_reply(response, keys)
    else:
        assert response.status_code == expected, response.get_data(as_text=True)
        assert "message" in response.get_json()
    jobs.join()
    assert (len(engine.messages), len(jobs.futures), len(standin.sent)) == (handled, queued, sent)
    assert gw.extensions["alipay"].inbox.size(SENDER) == 0


def test_other_methods_and_oversize_declared_lengths_are_refused(client):
    assert client.get(GATEWAY).status_code == 405
    response = client.post(
        GATEWAY, data=b"x" * 10, content_type=FORM, environ_overrides={"CONTENT_LENGTH": "70000"}
    )
    assert response.status_code == 413


def test_nothing_under_the_photo_dir_is_written_for_bad_input(gw, client, standin):
    post(client, _signed(standin, EXTERNAL_ENTITY))
    incoming = Path(gw.config["PHOTO_DIR"]) / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())
