"""Bad input of every kind gets a 4xx, never a 500, and changes nothing: no engine turn, no
dedupe key, no job, nothing sent."""

from __future__ import annotations

import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechat_standin import TEST_AES_KEY, TEST_TOKEN, WeChatPlatform, sign

pytest_plugins = ["wechat_fixtures"]


def assert_nothing_changed(app, redis_url, redis_prefix, standin):
    assert app.extensions["engine"].calls == []
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=redis_prefix + "*")) == []
    finally:
        client.close()
    assert app.extensions["jobs"].queue.count == 0
    assert standin.custom == [] and standin.templates == [] and standin.calls == []


def post_raw(client, body: bytes, query: dict, content_type: str = "text/xml"):
    return client.post("/wechat", query_string=query, data=body, content_type=content_type)


def message(openid="oAttacker000000000000000001", **overrides) -> str:
    fields = {
        "ToUserName": "gh_x",
        "FromUserName": openid,
        "CreateTime": str(int(time.time())),
        "MsgType": "text",
        "Content": "你好",
        "MsgId": "1234567890123456",
    }
    fields.update(overrides)
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items() if v is not None)
    return f"<xml>{inner}</xml>"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&secret;</Content><MsgId>1</MsgId></xml>"""

BAD_BODIES = {
    "not-xml": (b"hello", 400),
    "truncated": (message().encode()[:-10], 400),
    "wrong-root": (message().replace("xml>", "root>").encode(), 400),
    "billion-laughs": (BILLION_LAUGHS.encode(), 400),
    "external-entity": (EXTERNAL_ENTITY.encode(), 400),
    "doctype-only": (b'<!DOCTYPE xml SYSTEM "http://evil/x.dtd">' + message().encode(), 400),
    "no-sender": (message(FromUserName=None).encode(), 400),
    "empty-sender": (message(FromUserName="").encode(), 400),
    "nested-sender": (message(FromUserName="<a>o1</a>").encode(), 400),
    "odd-sender": (message(FromUserName="o1 DROP TABLE").encode(), 400),
    "no-type": (message(MsgType=None).encode(), 400),
    "no-create-time": (message(CreateTime=None).encode(), 400),
    "bad-create-time": (message(CreateTime="yesterday").encode(), 400),
    "bad-msg-id": (message(MsgId="12ab").encode(), 400),
    "image-without-media": (message(MsgType="image", Content=None).encode(), 400),
    "not-utf8": (message(Content="你好").encode("gbk"), 400),
    "empty": (b"", 400),
    "oversize": (message(Content="长" * 30_000).encode(), 413),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_bad_bodies_are_refused(
    case, wx_app, wx_client, platform, redis_url, redis_prefix, standin
):
    body, status = BAD_BODIES[case]
    response = post_raw(wx_client, body, platform.query())
    assert response.status_code == status
    assert_nothing_changed(wx_app, redis_url, redis_prefix, standin)


def test_oversize_is_refused_before_the_signature_is_even_checked(
    wx_app, wx_client, redis_url, redis_prefix, standin
):
    response = post_raw(wx_client, b"<xml>" + b"x" * 70_000 + b"</xml>", {})
    assert response.status_code == 413
    assert_nothing_changed(wx_app, redis_url, redis_prefix, standin)


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "f" * 40},
        {"signature": None},
        {"timestamp": None},
        {"nonce": None},
        {"nonce": "tampered"},
        {"timestamp": "not-a-number"},
        {"timestamp": str(int(time.time()) - 3600)},  # a replay of an old delivery
        {"timestamp": str(int(time.time()) + 3600)},
    ],
    ids=["forged", "no-signature", "no-timestamp", "no-nonce", "nonce", "bad-ts", "old", "future"],
)
def test_forged_or_stale_signatures_are_refused(
    change, wx_app, wx_client, platform, openid, redis_url, redis_prefix, standin
):
    query = {k: v for k, v in {**platform.query(), **change}.items() if v is not None}
    response = platform.post(wx_client, platform.text(openid, "你好"), query=query)
    assert response.status_code == 403
    assert_nothing_changed(wx_app, redis_url, redis_prefix, standin)


def test_old_signed_request_is_refused_even_if_correctly_signed(
    wx_app, wx_client, platform, openid, redis_url, redis_prefix, standin
):
    old = int(time.time()) - 600
    query = {"timestamp": str(old), "nonce": "n1", "signature": sign(TEST_TOKEN, str(old), "n1")}
    response = platform.post(wx_client, platform.text(openid, "你好"), query=query)
    assert response.status_code == 403
    assert_nothing_changed(wx_app, redis_url, redis_prefix, standin)


def test_a_signature_cannot_carry_another_message(wx_app, wx_client, platform, openid):
    """Plaintext mode signs only the URL: a captured URL must not carry a new body."""
    query = platform.query()
    first = platform.post(wx_client, platform.text(openid, "你好"), query=query)
    assert first.status_code == 200
    forged = platform.post(wx_client, platform.text(openid, "帮我解绑"), query=query)
    assert forged.status_code == 403
    assert [m.text for m in wx_app.extensions["engine"].messages] == ["你好"]


def test_a_replayed_message_is_answered_once(wx_app, wx_client, platform, openid):
    xml = platform.text(openid, "你好")
    query = platform.query()
    assert platform.reply(platform.post(wx_client, xml, query=query))
    replay = platform.post(wx_client, xml, query=query)
    assert replay.get_data(as_text=True) == "success"
    assert len(wx_app.extensions["engine"].messages) == 1


# --------------------------------------------------------------------------- safe mode


@pytest.fixture
def safe_app(wx_make_app):
    return wx_make_app(WECHAT_AES_KEY=TEST_AES_KEY)


def test_safe_mode_refuses_plaintext(safe_app, openid, redis_url, redis_prefix, standin):
    plain = WeChatPlatform()
    response = plain.post(safe_app.test_client(), plain.text(openid, "你好"))
    assert response.status_code == 403
    assert_nothing_changed(safe_app, redis_url, redis_prefix, standin)


def test_safe_mode_refuses_a_forged_msg_signature(
    safe_app, openid, redis_url, redis_prefix, standin
):
    sealed = WeChatPlatform(aes_key=TEST_AES_KEY)
    query, body = sealed.envelope(sealed.text(openid, "你好"))
    query["msg_signature"] = "0" * 40
    response = post_raw(safe_app.test_client(), body, query)
    assert response.status_code == 403
    assert_nothing_changed(safe_app, redis_url, redis_prefix, standin)


def test_safe_mode_refuses_a_message_for_another_account(
    safe_app, openid, redis_url, redis_prefix, standin
):
    other = WeChatPlatform(aes_key=TEST_AES_KEY, appid="wx_someone_else_00")
    response = other.post(safe_app.test_client(), other.text(openid, "你好"))
    assert response.status_code == 403
    assert_nothing_changed(safe_app, redis_url, redis_prefix, standin)


@pytest.mark.parametrize("encrypt", ["", "not base64 !!", "QUJD", "A" * 64])
def test_safe_mode_refuses_broken_envelopes(safe_app, redis_url, redis_prefix, standin, encrypt):
    sealed = WeChatPlatform(aes_key=TEST_AES_KEY)
    query = sealed.query()
    query.update(
        encrypt_type="aes",
        msg_signature=sign(TEST_TOKEN, query["timestamp"], query["nonce"], encrypt),
    )
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{encrypt}</Encrypt></xml>".encode()
    response = post_raw(safe_app.test_client(), body, query)
    assert response.status_code in {400, 403}
    assert_nothing_changed(safe_app, redis_url, redis_prefix, standin)


def test_safe_mode_refuses_entities_inside_the_encrypted_message(
    safe_app, redis_url, redis_prefix, standin
):
    sealed = WeChatPlatform(aes_key=TEST_AES_KEY)
    query, body = sealed.envelope(BILLION_LAUGHS)
    response = post_raw(safe_app.test_client(), body, query)
    assert response.status_code == 400
    assert_nothing_changed(safe_app, redis_url, redis_prefix, standin)


@pytest.mark.parametrize("key", ["too-short", "!" * 43])
def test_a_wrong_aes_key_stops_the_start(wx_make_app, key):
    with pytest.raises(ValueError, match="EncodingAESKey"):
        wx_make_app(WECHAT_AES_KEY=key)


# --------------------------------------------------------------------------- fuzzing

xml_ish = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=300).map(lambda t: f"<xml>{t}</xml>".encode()),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "ToUserName",
                    "FromUserName",
                    "CreateTime",
                    "MsgType",
                    "Content",
                    "MsgId",
                    "Event",
                    "EventKey",
                    "MediaId",
                    "Recognition",
                    "Encrypt",
                    "x",
                ]
            ),
            st.one_of(
                st.text(max_size=40),
                st.sampled_from(["text", "event", "image", "voice", "CLICK", "subscribe", "0"]),
            ),
        ),
        max_size=8,
    ).map(
        lambda pairs: (
            "<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in pairs) + "</xml>"
        ).encode("utf-8", "surrogatepass")
    ),
)


def test_no_body_makes_a_500(wx_make_app, platform):
    client = wx_make_app(WECHAT_REPLY_WAIT=1.0).test_client()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=xml_ish)
    def check(body):
        response = post_raw(client, body, platform.query())
        assert response.status_code < 500, response.get_data(as_text=True)[:200]

    check()
