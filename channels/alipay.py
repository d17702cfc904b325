"""Alipay life account (支付宝生活号) channel: ``POST /alipay/gateway``.

Relatives of retirees talk to the assistant in an Alipay life account; one Alipay user may bind
up to four people and picks whom a request is for (the dialogue engine asks "为谁认证？"; this
channel only carries messages and events faithfully, in order).

The gateway (the "应用网关" configured on the Alipay open platform) receives GBK form posts:

* ``service=alipay.service.check`` with ``EventType=verifygw`` — activating the developer mode.
  Answered with the signed XML ``<success>true</success><biz_content>APP_PUBLIC_KEY</biz_content>``.
* ``service=alipay.mobile.public.message.notify`` — what a user did: ``MsgType`` text, image or
  event (``EventType`` follow / unfollow / click / enter). ``biz_content`` is an XML document::

      <XML><AppId/><FromUserId/><FromAlipayUserId/><CreateTime/><MsgId/><MsgType>text</MsgType>
           <Text><Content>…</Content></Text></XML>

  The gateway answers at once with a signed ``ack`` and the message goes to a per-sender inbox;
  a background job (RQ when Redis is configured) runs the dialogue engine and sends the replies
  with ``alipay.open.public.message.custom.send`` (``AlipayOpenPublicMessageCustomSendRequest``).

Security: the body is at most 64 KB (else 413) and decoded as GBK by hand (Flask's form parser
would guess UTF-8); the RSA2 signature is checked with the SDK's helpers over the parameters
without ``sign`` (``rsaCheckV2``), then without ``sign`` and ``sign_type`` (``rsaCheckV1``); a
bad signature gets the signed failure reply and nothing is processed; after
``ALIPAY_SIGNATURE_FAILURES_PER_MINUTE`` (20) failures a minute from one client address (see
:mod:`channels.remote`, ``TRUSTED_PROXIES``) that client gets a bare 429 without any RSA work.
Signing and verifying use ``cryptography`` (OpenSSL), not the SDK's pure-Python ``rsa``. ``biz_content`` is parsed
with defusedxml (no DTD, no entities). Each notify is processed once: its ``MsgId`` (else
sender + ``CreateTime`` + ``MsgType``) is claimed in the dedupe store, and notifies older than
the dedupe window are not processed at all.

Ordering: every notify of one sender is appended to that sender's inbox (a Redis list, or a
deque in memory); a drain job holds the sender's inbox lock and handles the inbox front to back,
so one sender's messages are handled in order while other senders' jobs run in parallel.

Nothing is dropped when the database fails: a drain job takes a message out of the inbox only
while the database answers, and otherwise waits (1, 2, 5 … 30 s) and hands over to a new job,
the messages kept in the inbox — answered when the database is back. (With Redis, the inbox
lives as long as Redis keeps its data: run it with persistence, see the README.)

Photos: an image notify carries a media id. The worker downloads the photo with the life
account multimedia download (``alipay.mobile.public.multimedia.download``, a signed GET to
``ALIPAY_MEDIA_URL``, by default ``https://openfile.alipay.com/chat/multimedia.do``, answering
the image bytes, or a JSON error as ``text/plain``). The Python SDK has no client for it, so the
request is signed here over the SDK's own ``get_sign_content``.

Settings: ``ALIPAY_APP_ID``, ``ALIPAY_APP_PRIVATE_KEY`` (bare base64 PKCS#1 or PKCS#8, as
Alipay's key tool hands it out; PEM is accepted too), ``ALIPAY_PUBLIC_KEY`` (Alipay's public
key, bare base64 X.509 SubjectPublicKeyInfo), ``ALIPAY_SERVER_URL`` (default
``https://openapi.alipay.com/gateway.do``), optionally ``ALIPAY_MEDIA_URL`` and
``ALIPAY_GATEWAY_PATH``. The channel is off (404) while ``ALIPAY_APP_ID`` is unset.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree.ElementTree import Element, ParseError

from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayOpenPublicMessageCustomSendModel import (
    AlipayOpenPublicMessageCustomSendModel,
)
from alipay.aop.api.domain.Text import Text
from alipay.aop.api.request.AlipayOpenPublicMessageCustomSendRequest import (
    AlipayOpenPublicMessageCustomSendRequest,
)
from alipay.aop.api.response.AlipayOpenPublicMessageCustomSendResponse import (
    AlipayOpenPublicMessageCustomSendResponse,
)
from alipay.aop.api.util.SignatureUtils import get_sign_content
from Crypto.PublicKey import RSA
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml
from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from bot.messages import UserMessage
from bot.stores import InboxStore, LockTimeout, MemoryInboxStore, Stores
from channels import alipay_transport
from channels.alipay_transport import rsa2_sign, rsa2_verify
from channels.inbound import answer, record_inbound, render_texts
from channels.remote import Network, client_address, trusted_networks
from services.outbound import Recipient

alipay_transport.install()

log = logging.getLogger(__name__)

blueprint = Blueprint("alipay", __name__)

CHANNEL = "alipay"
GATEWAY_PATH = "/alipay/gateway"
SERVER_URL = "https://openapi.alipay.com/gateway.do"
MEDIA_URL = "https://openfile.alipay.com/chat/multimedia.do"
SERVICE_CHECK = "alipay.service.check"
SERVICE_NOTIFY = "alipay.mobile.public.message.notify"

MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 32
MAX_TEXT_CHARS = 2000
MAX_REPLY_CHARS = 2000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DEDUPE_TTL_SECONDS = 24 * 3600  # Alipay retries a notify twice, 5 s apart; a day is ample
SENDER_RATE_LIMIT = (30, 60)  # notifies per sender per minute; more are acknowledged, dropped
MAX_PENDING = 50  # a sender's inbox beyond this is a flood: further notifies are dropped
INBOX_TTL_SECONDS = 24 * 3600
DRAIN_LOCK_SECONDS = 300  # an inbox lock outlives a crashed worker by at most this
DRAIN_BATCH_SECONDS = 60  # a drain job hands over (re-enqueues itself) after this long
# While the database is out of reach a drain job waits (backing off), the messages kept.
DATABASE_RETRY_SECONDS = (1, 2, 5, 10, 20, 30)
HTTP_TIMEOUT_SECONDS = 15
SIGNATURE_FAILURES_PER_MINUTE = 20  # per client address; then a plain 429, no RSA work at all
CHINA = dt.timezone(dt.timedelta(hours=8))

# Menu keys configured for the life account menu (ActionParam of a click event).
MENU_KEYS = {"CERTIFY", "STATUS", "FAQ", "RELATIVE"}
ASCII_DIGITS = re.compile(r"[0-9]{1,20}")
SENDER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")
ALIPAY_USER_ID = re.compile(r"2088\d{12}")  # else the id is an open_id
APP_ID = re.compile(r"[0-9A-Za-z]{1,32}")
CHARSETS = {"gbk": "gbk", "gb2312": "gbk", "gb18030": "gb18030", "utf-8": "utf-8", "utf8": "utf-8"}

PHOTO_NOT_RECEIVED = "抱歉，照片没有收到，请再发一次；也可以在网页版对话里上传照片。"


class AlipayError(Exception):
    """A call to Alipay failed or was refused."""


# --------------------------------------------------------------------------- keys


def _der(text: str, what: str) -> bytes:
    """Bare base64 as Alipay's key tool hands it out (PEM markers and line breaks tolerated)."""
    body = re.sub(r"-----(BEGIN|END) [A-Z ]+-----", "", text or "")
    body = "".join(body.split())
    if not body:
        raise ValueError(f"{what} is empty")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{what} is not base64: {error}") from None


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _import_rsa(der: bytes, what: str):
    try:
        key = RSA.import_key(der)
    except (ValueError, IndexError, TypeError) as error:
        raise ValueError(f"{what} is not an RSA key ({error})") from None
    if key.size_in_bits() < 2048:
        raise ValueError(f"{what} has {key.size_in_bits()} bits; RSA2 needs 2048")
    return key


@dataclass(frozen=True)
class AlipayKeys:
    app_private_key: str
    """Bare base64 PKCS#1: what the SDK's client signs its requests with."""
    app_public_key: str
    """Bare base64 SubjectPublicKeyInfo: what ``verifygw`` hands back to Alipay."""
    alipay_public_key: str
    """Bare base64 SubjectPublicKeyInfo: what the SDK's client verifies answers with."""
    signer: rsa.RSAPrivateKey = field(init=False, compare=False, repr=False)
    """The app private key, loaded once for :func:`rsa2_sign`."""
    verifier: rsa.RSAPublicKey = field(init=False, compare=False, repr=False)
    """Alipay's public key, loaded once for :func:`rsa2_verify`."""

    def __post_init__(self) -> None:
        private = serialization.load_der_private_key(_der(self.app_private_key, "key"), None)
        public = serialization.load_der_public_key(_der(self.alipay_public_key, "key"))
        object.__setattr__(self, "signer", private)
        object.__setattr__(self, "verifier", public)

    @classmethod
    def load(cls, app_private_key: str, alipay_public_key: str) -> AlipayKeys:
        """Accept the app private key in PKCS#1 or PKCS#8, Alipay's public key as X.509 SPKI."""
        private = _import_rsa(
            _der(app_private_key, "ALIPAY_APP_PRIVATE_KEY"), "ALIPAY_APP_PRIVATE_KEY"
        )
        if not private.has_private():
            raise ValueError("ALIPAY_APP_PRIVATE_KEY holds a public key, not the app private key")
        public = _import_rsa(_der(alipay_public_key, "ALIPAY_PUBLIC_KEY"), "ALIPAY_PUBLIC_KEY")
        if public.has_private():
            raise ValueError("ALIPAY_PUBLIC_KEY holds a private key; it takes Alipay's public key")
        return cls(
            app_private_key=_b64(private.export_key(format="DER", pkcs=1)),
            app_public_key=_b64(private.public_key().export_key(format="DER")),
            alipay_public_key=_b64(public.export_key(format="DER")),
        )


# --------------------------------------------------------------------------- the channel


class AlipayChannel:
    """Signing, verifying and talking to Alipay for one app (one life account)."""

    def __init__(
        self,
        *,
        app_id: str,
        keys: AlipayKeys,
        server_url: str = SERVER_URL,
        media_url: str = MEDIA_URL,
        inbox: InboxStore | None = None,
        trusted_proxies: tuple[Network, ...] = (),
        signature_failures_per_minute: int = SIGNATURE_FAILURES_PER_MINUTE,
    ):
        if not APP_ID.fullmatch(app_id or ""):
            raise ValueError(f"ALIPAY_APP_ID {app_id!r} is not an Alipay app id")
        for name, url in (("ALIPAY_SERVER_URL", server_url), ("ALIPAY_MEDIA_URL", media_url)):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"{name} must be an http(s) URL, not {url!r}")
        self.app_id = app_id
        self.keys = keys
        self.server_url = server_url
        self.media_url = media_url
        self.inbox = inbox or MemoryInboxStore()
        self.trusted_proxies = trusted_proxies
        self.signature_failures_per_minute = signature_failures_per_minute
        config = AlipayClientConfig()
        config.server_url = server_url
        config.app_id = app_id
        config.app_private_key = keys.app_private_key
        config.alipay_public_key = keys.alipay_public_key
        config.sign_type = "RSA2"
        config.charset = "utf-8"
        config.timeout = HTTP_TIMEOUT_SECONDS
        # No logger: the SDK would log every request with its content (messages, user ids).
        self.client = DefaultAlipayClient(alipay_client_config=config)

    @classmethod
    def from_settings(cls, config, stores: Stores) -> AlipayChannel | None:
        """The channel as configured, or None while ``ALIPAY_APP_ID`` is unset."""
        if not config.get("ALIPAY_APP_ID"):
            return None
        for key in ("ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"):
            if not config.get(key):
                raise ValueError(f"{key} is required when ALIPAY_APP_ID is set")
        inbox = stores.inbox(f"{CHANNEL}", INBOX_TTL_SECONDS)
        return cls(
            app_id=str(config["ALIPAY_APP_ID"]),
            keys=AlipayKeys.load(config["ALIPAY_APP_PRIVATE_KEY"], config["ALIPAY_PUBLIC_KEY"]),
            server_url=config.get("ALIPAY_SERVER_URL") or SERVER_URL,
            media_url=config.get("ALIPAY_MEDIA_URL") or MEDIA_URL,
            inbox=inbox,
            trusted_proxies=trusted_networks(config.get("TRUSTED_PROXIES")),
            signature_failures_per_minute=int(
                config.get("ALIPAY_SIGNATURE_FAILURES_PER_MINUTE") or SIGNATURE_FAILURES_PER_MINUTE
            ),
        )

    # -- signatures -------------------------------------------------------------------------
    def verify(self, params: dict[str, str], charset: str) -> bool:
        """``rsaCheckV2`` (all but ``sign``), falling back to ``rsaCheckV1`` (also without
        ``sign_type``), both over the SDK's ``get_sign_content``."""
        signature = params.get("sign") or ""
        if not signature or params.get("sign_type", "RSA2") != "RSA2":
            return False
        candidates = []
        for excluded in ({"sign"}, {"sign", "sign_type"}):
            signed = {k: v for k, v in params.items() if k not in excluded}
            candidates.append(signed)
            if "" in signed.values():  # some signers leave empty values out of the content
                candidates.append({k: v for k, v in signed.items() if v != ""})
        for signed in candidates:
            try:
                content = get_sign_content(signed).encode(charset)
            except UnicodeEncodeError:  # not even expressible in the declared charset
                continue
            if rsa2_verify(self.keys.verifier, content, signature):
                return True
        return False

    def signed_reply(self, content: str, charset: str) -> Response:
        """Alipay's synchronous reply: ``<alipay><response>…</response><sign>…</sign>…``, the
        signature (app private key, RSA2) over the text inside ``<response>``."""
        signature = rsa2_sign(self.keys.signer, content.encode(charset))
        body = (
            f'<?xml version="1.0" encoding="{charset.upper()}"?>'
            f"<alipay><response>{content}</response>"
            f"<sign>{signature}</sign><sign_type>RSA2</sign_type></alipay>"
        )
        return Response(body.encode(charset), content_type=f"text/xml;charset={charset.upper()}")

    def verify_failed(self, charset: str) -> Response:
        return self.signed_reply(
            "<success>false</success><error_code>VERIFY_FAILED</error_code>"
            f"<biz_content>{self.keys.app_public_key}</biz_content>",
            charset,
        )

    def activated(self, charset: str) -> Response:
        return self.signed_reply(
            f"<success>true</success><biz_content>{self.keys.app_public_key}</biz_content>",
            charset,
        )

    def ack(self, sender: str, charset: str) -> Response:
        # sender matched SENDER_ID and app_id matched APP_ID: nothing to escape.
        return self.signed_reply(
            f"<XML><ToUserId><![CDATA[{sender}]]></ToUserId>"
            f"<AppId><![CDATA[{self.app_id}]]></AppId>"
            f"<CreateTime>{int(time.time() * 1000)}</CreateTime>"
            "<MsgType><![CDATA[ack]]></MsgType></XML>",
            charset,
        )

    # -- calls to Alipay (from workers) -----------------------------------------------------
    def send_text(self, user_id: str, content: str) -> None:
        """``alipay.open.public.message.custom.send``: one text message to one user."""
        model = AlipayOpenPublicMessageCustomSendModel()
        if ALIPAY_USER_ID.fullmatch(user_id):
            model.to_user_id = user_id
        else:
            model.open_id = user_id
        model.msg_type = "text"
        text = Text()
        text.content = content[:MAX_REPLY_CHARS]
        model.text = text
        try:
            raw = self.client.execute(AlipayOpenPublicMessageCustomSendRequest(biz_model=model))
        except Exception as error:  # the SDK raises plain Exceptions of its own
            raise AlipayError(f"custom send failed: {error}") from error
        response = AlipayOpenPublicMessageCustomSendResponse()
        try:
            response.parse_response_content(raw)
        except ValueError as error:
            raise AlipayError(f"custom send answer unreadable: {error}") from error
        if response.code != "10000" or not response.is_success():
            raise AlipayError(
                f"custom send refused: {response.code} {response.msg} {response.sub_code}"
            )

    def download_media(self, media_id: str) -> bytes:
        """The photo behind an image message's media id (a signed GET; see the module doc)."""
        params = {
            "app_id": self.app_id,
            "method": "alipay.mobile.public.multimedia.download",
            "charset": "utf-8",
            "format": "json",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps({"mediaId": media_id}, separators=(",", ":")),
        }
        params["sign"] = rsa2_sign(self.keys.signer, get_sign_content(params).encode("utf-8"))
        separator = "&" if urlsplit(self.media_url).query else "?"
        url = self.media_url + separator + urlencode(params)
        try:
            # The URL's scheme was checked (http/https) when the channel was built.
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
                content_type = response.headers.get_content_type()
                data = response.read(MAX_IMAGE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise AlipayError(f"media download failed: {error}") from error
        if content_type.startswith("text/") or content_type.endswith("json"):
            raise AlipayError(f"media download refused: {data[:200]!r}")
        if len(data) > MAX_IMAGE_BYTES:
            raise AlipayError("media larger than the photo limit")
        if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
            raise AlipayError("media is not a JPEG or PNG photo")
        return data


# --------------------------------------------------------------------------- the gateway


class AlipayOutbound:
    """The outbound port for Alipay: custom-send text messages, one per reply."""

    def __init__(self, channel: AlipayChannel):
        self.channel = channel

    def deliver(self, recipient: Recipient, messages) -> None:
        for text in render_texts(messages):
            self.channel.send_text(recipient.external_id, text)


@blueprint.record_once
def _setup(state) -> None:
    # The channel itself is built with the runtime (workers need it without the web app).
    path = state.app.config.get("ALIPAY_GATEWAY_PATH") or GATEWAY_PATH
    state.add_url_rule(path, "gateway", gateway, methods=["POST"])


def _read_form() -> tuple[dict[str, str], str]:
    """The form fields, decoded with the charset Alipay declares (GBK unless it says UTF-8)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        abort(413, description=f"body larger than {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        abort(413, description=f"body larger than {MAX_BODY_BYTES} bytes")
    declared = re.search(rb"(?:^|&)charset=([A-Za-z0-9\-]{1,16})(?:&|$)", raw)
    charset = CHARSETS.get(declared.group(1).decode().lower()) if declared else "gbk"
    if charset is None:
        abort(400, description="unsupported charset")
    try:
        text = raw.decode(charset)
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding=charset,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        abort(400, description=f"body is not a {charset.upper()} form")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            abort(400, description=f"field {name!r} given twice")
        params[name] = value
    return params, charset


def _signature_failures_key(channel: AlipayChannel) -> str:
    client = client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), channel.trusted_proxies
    )
    return f"{CHANNEL}-bad-signature:{client}"


def _parse_biz_content(text: str) -> Element:
    try:
        root = parse_xml(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError):
        abort(400, description="biz_content is not acceptable XML")
    if root.tag.upper() != "XML":
        abort(400, description="biz_content must be an <XML> document")
    return root


def _field(root: Element, path: str, limit: int = 128) -> str:
    value = (root.findtext(path) or "").strip()
    if len(value) > limit:
        abort(400, description=f"{path} is too long")
    return value


def gateway():
    channel: AlipayChannel | None = current_app.extensions.get("alipay")
    if channel is None:
        abort(404, description="the Alipay life account channel is not configured")
    failures = _signature_failures_key(channel)
    limiter = current_app.extensions["stores"].rate_limits
    if limiter.used(failures) >= channel.signature_failures_per_minute:
        # A forger (or a misconfigured key) gets a plain answer: no RSA work for them.
        return Response("too many bad signatures\n", 429, {"Retry-After": "60"}, "text/plain")
    params, charset = _read_form()
    if not channel.verify(params, charset):
        service = (params.get("service") or "")[:64]
        log.warning("alipay gateway: signature check failed (service %r)", service)
        limiter.allow(failures, channel.signature_failures_per_minute, 60)
        return channel.verify_failed(charset)

    service = params.get("service")
    biz_content = params.get("biz_content")
    if not service or not biz_content:
        abort(400, description="service and biz_content are required")
    if params.get("app_id") and params["app_id"] != channel.app_id:
        abort(400, description="app_id is not this life account's")
    root = _parse_biz_content(biz_content)
    app_id = _field(root, "AppId")
    if app_id and app_id != channel.app_id:
        abort(400, description="AppId is not this life account's")

    if service == SERVICE_CHECK:
        if _field(root, "EventType") != "verifygw":
            abort(400, description="alipay.service.check without EventType verifygw")
        log.info("alipay gateway: activation check answered")
        return channel.activated(charset)
    if service == SERVICE_NOTIFY:
        return _notify(channel, root, charset)
    abort(400, description="unknown service")


def _notify(channel: AlipayChannel, root: Element, charset: str) -> Response:
    sender = _field(root, "FromAlipayUserId") or _field(root, "FromUserId")
    if not SENDER_ID.fullmatch(sender):
        abort(400, description="FromUserId is missing or malformed")
    msg_type = _field(root, "MsgType").lower()
    create_time = _field(root, "CreateTime")
    msg_id = _field(root, "MsgId")
    if not msg_type:
        abort(400, description="MsgType is required")
    item = _inbox_item(root, msg_type)  # aborts on missing fields

    if item is None:  # unfollow, enter, unknown menu keys and message types: nothing to do
        return channel.ack(sender, charset)
    if _stale(create_time):
        log.warning("alipay notify older than the dedupe window: not processed")
        return channel.ack(sender, charset)
    identity = msg_id or f"{sender}:{create_time}:{msg_type}:{item.get('event', '')}"
    stores = current_app.extensions["stores"]
    key = f"{CHANNEL}:{hashlib.sha256(identity.encode()).hexdigest()[:40]}"
    if not stores.dedupe.first_time(key, DEDUPE_TTL_SECONDS):
        log.info("alipay notify already processed: acknowledged again")
        if channel.inbox.size(sender):  # in case the first delivery could not enqueue a job
            _enqueue_drain(sender)
        return channel.ack(sender, charset)
    limit, per = SENDER_RATE_LIMIT
    if not stores.rate_limits.allow(f"{CHANNEL}:{sender}", limit, per):
        log.warning("alipay sender over the rate limit: notify dropped")
        return channel.ack(sender, charset)
    if channel.inbox.size(sender) >= MAX_PENDING:
        log.warning("alipay sender inbox full: notify dropped")
        return channel.ack(sender, charset)
    if msg_id:
        item["msg_id"] = msg_id
    channel.inbox.push(sender, item)
    _enqueue_drain(sender)
    return channel.ack(sender, charset)


def _enqueue_drain(sender: str) -> None:
    """Start a drain job; if the queue is down, 503 makes Alipay deliver again (the retry is
    deduplicated, finds the inbox non-empty and enqueues the job then)."""
    try:
        current_app.extensions["runtime"].jobs.enqueue(drain_inbox, sender)
    except Exception:
        log.exception("alipay: could not enqueue the drain job")
        abort(503, description="job queue unavailable")


def _inbox_item(root: Element, msg_type: str) -> dict | None:
    """What the worker needs to rebuild the :class:`UserMessage`; None for nothing to do."""
    if msg_type == "text":
        content = root.findtext("Text/Content") or root.findtext("Content") or ""
        content = content.replace("\x00", "").strip()
        if not content:
            abort(400, description="a text message without Text/Content")
        return {"kind": "text", "text": content[:MAX_TEXT_CHARS]}
    if msg_type == "image":
        media_id = _field(root, "Image/MediaId", 512) or _field(root, "MediaId", 512)
        if not media_id:
            abort(400, description="an image message without MediaId")
        return {"kind": "image", "media_id": media_id}
    if msg_type == "event":
        event_type = _field(root, "EventType").lower()
        if not event_type:
            abort(400, description="an event without EventType")
        if event_type == "follow":
            return {"kind": "event", "event": "subscribe"}
        if event_type == "click":
            key = _field(root, "ActionParam").upper()
            return {"kind": "event", "event": f"menu:{key}"} if key in MENU_KEYS else None
        return None  # unfollow (nothing to say to someone who left), enter, others
    return None  # voice, location, …: acknowledged, not understood


def _stale(create_time: str) -> bool:
    if not ASCII_DIGITS.fullmatch(create_time):  # str.isdigit() takes "²", int() does not
        return False
    age = time.time() - int(create_time) / 1000
    return age > DEDUPE_TTL_SECONDS


# --------------------------------------------------------------------------- the worker


def drain_inbox(runtime, sender: str) -> None:
    """Background job: handle one sender's inbox front to back, holding its inbox lock.

    A job that finds the lock taken leaves: the holder re-checks the inbox after releasing
    the lock and enqueues a new job when something arrived meanwhile, so nothing is stranded.
    """
    channel: AlipayChannel = runtime.extensions["alipay"]
    stores = runtime.extensions["stores"]
    try:
        with stores.locks.lock(
            f"{CHANNEL}-inbox:{sender}", timeout=DRAIN_LOCK_SECONDS, blocking_timeout=0
        ):
            deadline = time.monotonic() + DRAIN_BATCH_SECONDS
            while time.monotonic() < deadline and channel.inbox.size(sender):
                if not _database_reachable(runtime, deadline):
                    break  # the messages stay in the inbox for the next job
                item = channel.inbox.pop(sender)
                if item is None:
                    break
                _handle(runtime, channel, sender, item)
    except LockTimeout:
        return
    if channel.inbox.size(sender):
        runtime.jobs.enqueue(drain_inbox, sender)


def _database_reachable(runtime, deadline: float) -> bool:
    """Wait, backing off, until the database answers; False when the job's time runs out first.

    A message handled while the database is down would only get an apology and be gone: it is
    left in the inbox (Redis) instead, and answered properly once the database is back."""
    waits = itertools.chain(DATABASE_RETRY_SECONDS, itertools.repeat(DATABASE_RETRY_SECONDS[-1]))
    for wait in waits:
        try:
            runtime.database.ping()
            return True
        except SQLAlchemyError as error:
            reason = str(error).splitlines()[0][:120]
        if time.monotonic() + wait > deadline:
            return False
        log.warning("alipay: database unavailable (%s); retrying in %s s", reason, wait)
        time.sleep(wait)
    return False


def _message(sender: str, item: dict, photo: bytes | None) -> UserMessage:
    metadata = {"message_id": item["msg_id"]} if item.get("msg_id") else {}
    kind = {"image": "image", "event": "event"}.get(item["kind"], "text")
    content = {kind: photo if kind == "image" else item[kind]}
    return UserMessage(sender=sender, channel=CHANNEL, metadata=metadata, **content)


def _handle(runtime, channel: AlipayChannel, sender: str, item: dict) -> None:
    try:
        photo = None
        if item["kind"] == "image":
            try:
                photo = channel.download_media(item["media_id"])
            except AlipayError as error:
                log.warning("alipay photo not downloaded: %s", error)
                record_inbound(runtime, CHANNEL, sender)
                channel.send_text(sender, PHOTO_NOT_RECEIVED)
                return
        replies = answer(runtime, _message(sender, item, photo))
        for content in render_texts(replies):
            channel.send_text(sender, content)
    except AlipayError as error:
        log.error("alipay reply not delivered: %s", error)
    except Exception:  # one bad message must not block the sender's later ones
        log.exception("alipay message not handled")
