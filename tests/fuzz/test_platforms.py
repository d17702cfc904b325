"""hypothesis over the endpoints no OpenAPI document describes: the WeChat webhook (XML signed
with this test's own token), the Alipay gateway (forms RSA2-signed with this test's Alipay key)
and the REST-shaped endpoints fed raw hostile bytes.

Each request goes through ``checked`` (tests/fuzz/conftest.py): never a 5xx, and a refused one
leaves every table as it was. The app is the real one (embedded engine, PostgreSQL, Redis);
its jobs go to a private RQ queue nobody works off, so nothing writes behind a request's back.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from alipay_standin import APP_ID, AlipayStandIn, Keys, rsa2_sign, sign_content
from fuzzing import checked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechat_standin import (
    OFFICIAL_ACCOUNT,
    TEST_APPID,
    TEST_SECRET,
    TEST_TOKEN,
    WeChatAPIStandIn,
    WeChatPlatform,
    wait_for_threads,
)

from pension import create_app
from pension.jobs import RedisQueue
from tests import support

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a CI failure can be replayed
    suppress_health_check=list(HealthCheck),
)
# Any character at all: lone surrogates, NUL and other controls included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
# Text an XML document can carry (no controls, no lone surrogates).
XML_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=60)
WORDS = st.sampled_from(["你好", "我要认证", "查询状态", "转人工", "1", "2", "退出", ""])
NUMBERISH = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["²", "１２３", "1e9", "", " 7 "]),
    ANY_TEXT,
)


def raw(text: str) -> bytes:
    """The bytes a sloppy client would send for ``text`` (a lone surrogate as \\xed\\xa0\\x80)."""
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    keys = Keys.generate()
    with WeChatAPIStandIn() as wechat, AlipayStandIn(keys) as alipay:
        yield keys, wechat, alipay, tmp_path_factory.mktemp("fuzz-photos")


@pytest.fixture
def platform_app(services, postgres_url, postgres_database, redis_url, redis_prefix):
    keys, wechat, alipay, photos = services
    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "SECRET_KEY": "fuzz",
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": True,
            "PHOTO_DIR": str(photos),
            "CLOCK": support.frozen_clock(),
            "TESTING": True,
            "WECHAT_TOKEN": TEST_TOKEN,
            "WECHAT_APPID": TEST_APPID,
            "WECHAT_SECRET": TEST_SECRET,
            "WECHAT_API_BASE_URL": wechat.base_url,
            "WECHAT_REPLY_WAIT": 3.0,
            "ALIPAY_APP_ID": APP_ID,
            "ALIPAY_APP_PRIVATE_KEY": support_pkcs8(keys),
            "ALIPAY_PUBLIC_KEY": keys.alipay_public,
            "ALIPAY_SERVER_URL": alipay.url,
            "ALIPAY_MEDIA_URL": alipay.media_url,
        }
    )
    app.extensions["jobs"] = RedisQueue(redis_url, name=f"{redis_prefix}fuzz-jobs")
    yield app
    wait_for_threads()
    app.extensions["jobs"].queue.delete(delete_jobs=True)
    app.extensions["stores"].close()
    app.extensions["db"].dispose()
    support.empty_tables(postgres_database)


def support_pkcs8(keys: Keys) -> str:
    from alipay_standin import pkcs8_b64

    return pkcs8_b64(keys.app)


# --------------------------------------------------------------------------- WeChat


def mutated(draw, good: dict[str, str], bad: dict[str, st.SearchStrategy]) -> dict[str, str]:
    """``good`` with up to three fields broken (a value from ``bad``, else any text) and up
    to one left out: most cases get past the parser and reach the dialogue."""
    names = st.sampled_from(sorted(good))
    broken = draw(st.lists(names, unique=True, max_size=3))
    dropped = draw(st.lists(names, unique=True, max_size=1))
    return {
        name: draw(bad.get(name, st.one_of(XML_TEXT, ANY_TEXT))) if name in broken else value
        for name, value in good.items()
        if name not in dropped
    }


def cdata(fields: dict[str, str]) -> str:
    return "".join(f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items())


# What may stand around a WeChat message: the first of each list is the ordinary case.
DECLARATIONS = ["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="x-nope"?>']
DECLARATIONS += ['<?xml version="1.0" encoding="gbk"?>', '<?xml encoding="utf-16"?>']
DOCTYPES = ["", '<!DOCTYPE xml [<!ENTITY e "ha">]>', "<!DOCTYPE x SYSTEM 'file:///etc/passwd'>"]
EXTRAS = ["", "<a>" * 400 + "</a>" * 400, "<x/>" * 50, "&lt;", "&bogus;", "<Content>2</Content>"]


@st.composite
def wechat_xml(draw) -> bytes:
    """A message as WeChat sends it, or as an attacker holding the token might."""
    msg_type = draw(st.sampled_from(["text", "event", "voice", "image", "video", "location"]))
    good = {
        "ToUserName": OFFICIAL_ACCOUNT,
        "FromUserName": "o" + draw(st.sampled_from("abcdef")) * 27,
        "CreateTime": "1764640000",
        "MsgType": msg_type,
        "Content": draw(WORDS),
        "MsgId": str(draw(st.integers(10**15, 10**16))),
        "Event": draw(st.sampled_from(["subscribe", "CLICK", "unsubscribe", "SCAN", "x"])),
        "EventKey": draw(st.sampled_from(["CERTIFY", "STATUS", "FAQ", "RELATIVE", "?"])),
        "MediaId": "media-1",
        "Recognition": draw(WORDS),
    }
    fields = mutated(draw, good, {"CreateTime": NUMBERISH, "MsgId": NUMBERISH})
    text = cdata(fields) + draw(st.sampled_from(EXTRAS))
    head = draw(st.sampled_from(DECLARATIONS)) + draw(st.sampled_from(DOCTYPES))
    return raw(f"{head}<xml>{text}</xml>")


@settings(FUZZ, max_examples=400)
@given(body=st.one_of(wechat_xml(), st.binary(max_size=200)))
def _fuzz_wechat(client, database, body):
    platform = WeChatPlatform()
    checked(
        "POST /wechat (signed)",
        database,
        lambda: client.post(
            "/wechat", query_string=platform.query(), data=body, content_type="text/xml"
        ),
        settle=wait_for_threads,
    )


def test_signed_wechat_messages_never_fail(platform_app):
    _fuzz_wechat(platform_app.test_client(), platform_app.extensions["db"])


# --------------------------------------------------------------------------- Alipay


@st.composite
def alipay_form(draw, keys: Keys) -> bytes:
    """A gateway post as Alipay sends it (signed with its key), or broken in a few places."""
    good = {
        "AppId": APP_ID,
        "FromUserId": "2088" + str(draw(st.integers(10**11, 10**12 - 1))),
        "CreateTime": "1764640000000",
        "MsgType": draw(st.sampled_from(["text", "event", "image", "x"])),
        "MsgId": str(draw(st.integers(10**15, 10**16))),
        "EventType": draw(st.sampled_from(["follow", "click", "unfollow", "enter", "verifygw"])),
        "ActionParam": draw(st.sampled_from(["CERTIFY", "STATUS", "", "?"])),
    }
    fields = mutated(draw, good, {"CreateTime": NUMBERISH, "MsgId": NUMBERISH})
    parts = cdata(fields) + draw(st.sampled_from(["", "<Image><MediaId>m1</MediaId></Image>"]))
    parts += f"<Text><Content><![CDATA[{draw(st.one_of(WORDS, ANY_TEXT))}]]></Content></Text>"
    envelope = mutated(
        draw,
        {
            "service": "alipay.mobile.public.message.notify",
            "charset": "GBK",
            "sign_type": "RSA2",
            "biz_content": f"<XML>{parts}</XML>",
        },
        {
            "service": st.sampled_from(["alipay.service.check", "x"]),
            "charset": st.sampled_from(["UTF-8", "x-nope", "", "utf-16"]),
            "sign_type": st.sampled_from(["RSA", ""]),
        },
    )
    charset = envelope.get("charset", "")
    encoding = charset if charset.upper() in {"GBK", "UTF-8"} else "utf-8"
    content = raw(sign_content(envelope, ("sign",))) if encoding == "utf-8" else None
    if content is None:
        try:
            content = sign_content(envelope, ("sign",)).encode(encoding)
        except UnicodeEncodeError:
            content = raw(sign_content(envelope, ("sign",)))
    forged = draw(st.sampled_from([False, True]))
    envelope["sign"] = "AAAA" if forged else rsa2_sign(keys.alipay, content)
    return urlencode({k: _encoded(v, encoding) for k, v in envelope.items()}).encode("ascii")


def _encoded(value: str, encoding: str) -> bytes:
    try:
        return value.encode(encoding)
    except UnicodeEncodeError:
        return raw(value)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def _fuzz_alipay(client, database, keys, data):
    body = data.draw(st.one_of(alipay_form(keys), st.binary(max_size=200)))
    checked(
        "POST /alipay/gateway (signed)",
        database,
        lambda: client.post(
            "/alipay/gateway",
            data=body,
            content_type="application/x-www-form-urlencoded; charset=GBK",
        ),
    )


def test_signed_alipay_posts_never_fail(platform_app, services):
    _fuzz_alipay(platform_app.test_client(), platform_app.extensions["db"], services[0])


# --------------------------------------------------------------------------- raw JSON


def hostile_json():
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT)
    value = st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    )
    message = st.fixed_dictionaries(
        {},
        optional={
            "sender": st.one_of(ANY_TEXT, value, st.just("a\x00b")),
            "message": st.one_of(WORDS, ANY_TEXT, value, st.just("/image")),
            "text": st.one_of(ANY_TEXT, value),
            "metadata": st.one_of(
                value,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "channel": st.one_of(st.just("shell"), value),
                        "region": st.one_of(st.just("610102"), st.just("6" * 5000), value),
                        "image_base64": st.one_of(st.just("iVBORw0KGgo="), ANY_TEXT, value),
                    },
                ),
            ),
        },
    )
    documents = st.one_of(message, value).map(lambda doc: json.dumps(doc, ensure_ascii=False))
    deep = st.integers(1, 100_000).map(lambda n: "[" * n + "]" * n)
    return st.one_of(documents, deep, ANY_TEXT).map(raw)


@settings(FUZZ, max_examples=800)
@given(
    path=st.sampled_from(
        ["/webhooks/rest/webhook", "/chat/messages", "/model/parse", "/chat/inbox"]
    ),
    body=hostile_json(),
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=x"]),
)
def _fuzz_json(client, database, path, body, content_type):
    checked(
        f"POST {path} (raw)",
        database,
        lambda: client.post(path, data=body, content_type=content_type),
    )


def test_hostile_bytes_to_the_json_endpoints_never_fail(app):
    _fuzz_json(app.test_client(), app.extensions["db"])
