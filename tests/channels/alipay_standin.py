"""A local stand-in for the Alipay open platform, for the Alipay life account tests.

It plays both sides of Alipay with its own "Alipay" RSA key pair, written independently of the
SDK (with ``cryptography``), so the app's signing and verification are checked against a
second implementation:

* inbound — :meth:`AlipayStandIn.gateway_body` builds the GBK form Alipay posts to the app's
  gateway, signed like Alipay signs it (``rsaCheckV2`` content, or V1 without ``sign_type``);
* outbound — a real HTTP server on a free port of 127.0.0.1 that checks the RSA2 signature of
  every request with the *app's* public key and answers Alipay-signed JSON, like
  ``openapi.alipay.com/gateway.do``: custom sends are recorded in :attr:`sent`; and the life
  account multimedia download (``/chat/multimedia.do``) serves the photos in :attr:`media`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

APP_ID = "2021000000000001"
GATEWAY_FORM = "application/x-www-form-urlencoded; charset=GBK"
CUSTOM_SEND = "alipay.open.public.message.custom.send"
MEDIA_DOWNLOAD = "alipay.mobile.public.multimedia.download"


# --------------------------------------------------------------------------- keys


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def pkcs1_b64(key: rsa.RSAPrivateKey) -> str:
    """A private key as Alipay's key tool writes it for PHP/Python: bare base64 PKCS#1."""
    return _b64(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def pkcs8_b64(key: rsa.RSAPrivateKey) -> str:
    """A private key as Alipay's key tool writes it for Java: bare base64 PKCS#8."""
    return _b64(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def spki_b64(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """A public key as Alipay shows it: bare base64 X.509 SubjectPublicKeyInfo."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return _b64(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def rsa2_sign(key: rsa.RSAPrivateKey, content: bytes) -> str:
    return _b64(key.sign(content, padding.PKCS1v15(), hashes.SHA256()))


def rsa2_verify(key: rsa.RSAPublicKey, content: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), content, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_content(params: dict[str, str], exclude: tuple[str, ...] = ("sign",)) -> str:
    """Alipay's content to sign: ``k=v`` pairs sorted by key, joined with ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude)


@dataclass
class Keys:
    app: rsa.RSAPrivateKey
    alipay: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> Keys:
        return cls(app=new_key(), alipay=new_key())

    @property
    def app_public(self) -> str:
        return spki_b64(self.app)

    @property
    def alipay_public(self) -> str:
        return spki_b64(self.alipay)


# --------------------------------------------------------------------------- notify bodies


def new_user_id() -> str:
    """An Alipay user id: 2088 and 12 more digits."""
    return "2088" + str(uuid.uuid4().int)[:12]


def notify_xml(sender: str, msg_type: str, *, msg_id: str | None = None, **fields) -> str:
    """The ``biz_content`` of ``alipay.mobile.public.message.notify``.

    ``fields``: ``content`` (text), ``media_id`` (image), ``event_type`` and ``action_param``
    (events), ``create_time`` (ms), ``app_id``.
    """
    create_time = fields.get("create_time", int(time.time() * 1000))
    parts = [
        f"<AppId><![CDATA[{fields.get('app_id', APP_ID)}]]></AppId>",
        f"<FromUserId><![CDATA[{sender}]]></FromUserId>",
        f"<CreateTime><![CDATA[{create_time}]]></CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
    ]
    if msg_id:
        parts.append(f"<MsgId><![CDATA[{msg_id}]]></MsgId>")
    if "content" in fields:
        parts.append(f"<Text><Content><![CDATA[{fields['content']}]]></Content></Text>")
    if "media_id" in fields:
        parts.append(
            f"<Image><MediaId><![CDATA[{fields['media_id']}]]></MediaId><Format>jpg</Format></Image>"
        )
    if "event_type" in fields:
        parts.append(f"<EventType><![CDATA[{fields['event_type']}]]></EventType>")
    if "action_param" in fields:
        parts.append(f"<ActionParam><![CDATA[{fields['action_param']}]]></ActionParam>")
    parts.append('<UserInfo><![CDATA[{"logon_id":"138***0000","user_name":"*某"}]]></UserInfo>')
    return "<XML>" + "".join(parts) + "</XML>"


def check_xml(app_id: str = APP_ID) -> str:
    return (
        f"<XML><AppId><![CDATA[{app_id}]]></AppId><CreateTime>{int(time.time() * 1000)}"
        "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<EventType><![CDATA[verifygw]]></EventType></XML>"
    )


# --------------------------------------------------------------------------- the app's replies

_REPLY = re.compile(
    r'<\?xml version="1\.0" encoding="(?P<charset>[A-Z0-9-]+)"\?><alipay>'
    r"<response>(?P<response>.*)</response><sign>(?P<sign>[A-Za-z0-9+/=]+)</sign>"
    r"<sign_type>RSA2</sign_type></alipay>",
    re.S,
)


def read_reply(keys: Keys, content_type: str, body: bytes) -> str:
    """What Alipay reads from the gateway's synchronous reply: the text inside ``<response>``,
    after checking the XML frame and the RSA2 signature with the app's public key."""
    assert content_type.lower().startswith("text/xml"), content_type
    charset = content_type.split("charset=")[1]
    text = body.decode(charset)
    match = _REPLY.fullmatch(text)
    assert match, text
    assert match["charset"].lower() == charset.lower()
    signed = match["response"].encode(charset)
    assert rsa2_verify(keys.app.public_key(), signed, match["sign"]), "reply signature"
    return match["response"]


# --------------------------------------------------------------------------- the server


class AlipayStandIn:
    """The stand-in: ``with AlipayStandIn(keys) as alipay: … alipay.url …``."""

    def __init__(self, keys: Keys):
        self.keys = keys
        self.sent: list[dict] = []
        self.media: dict[str, bytes] = {}
        self.media_requests: list[str] = []
        self.rejected: list[str] = []  # methods of requests whose signature did not verify
        self.fail_sends = 0  # answer this many custom sends with an error
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> AlipayStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/gateway.do"

    @property
    def media_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/chat/multimedia.do"

    # -- what Alipay posts to the app -------------------------------------------------------
    def gateway_body(
        self,
        biz_content: str,
        *,
        service: str = "alipay.mobile.public.message.notify",
        charset: str = "GBK",
        version: str = "v2",
        key: rsa.RSAPrivateKey | None = None,
        extra: dict[str, str] | None = None,
    ) -> bytes:
        """A gateway post as Alipay sends it: a form in ``charset``, RSA2-signed by Alipay
        (``version="v1"`` leaves ``sign_type`` out of the signed content)."""
        params = {
            "service": service,
            "charset": charset,
            "sign_type": "RSA2",
            "biz_content": biz_content,
            **(extra or {}),
        }
        exclude = ("sign",) if version == "v2" else ("sign", "sign_type")
        content = sign_content(params, exclude).encode(charset)
        params["sign"] = rsa2_sign(key or self.keys.alipay, content)
        return urlencode(params, encoding=charset).encode("ascii")

    # -- what the app sent ------------------------------------------------------------------
    def wait_for_sends(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.sent) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.sent)} custom sends, expected {count}")
                self._changed.wait(left)
            return list(self.sent)

    def texts_to(self, user_id: str) -> list[str]:
        with self._changed:
            return [
                s["text"]["content"]
                for s in self.sent
                if user_id in (s.get("to_user_id"), s.get("open_id"))
            ]

    # -- handling ---------------------------------------------------------------------------
    def _verified(self, params: dict[str, str]) -> bool:
        charset = params.get("charset", "utf-8")
        content = sign_content(params).encode(charset)
        ok = params.get("sign_type") == "RSA2" and rsa2_verify(
            self.keys.app.public_key(), content, params.get("sign", "")
        )
        if not ok:
            with self._changed:
                self.rejected.append(params.get("method", "?"))
        return ok

    def _signed_json(self, method: str, payload: dict) -> bytes:
        """``{"<method>_response": {...}, "sign": "..."}`` signed over the inner object."""
        name = "error_response" if payload.get("code") != "10000" else method.replace(".", "_")
        if name != "error_response":
            name += "_response"
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        signature = rsa2_sign(self.keys.alipay, inner.encode("utf-8"))
        return f'{{"{name}":{inner},"sign":"{signature}"}}'.encode()

    def _openapi(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        method = params.get("method", "")
        if not self._verified(params):
            error = {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-signature",
                "sub_msg": "验签出错",
            }
            return 200, "application/json;charset=utf-8", self._signed_json(method, error)
        if method != CUSTOM_SEND:
            error = {"code": "40004", "msg": "Business Failed", "sub_code": "isv.unknown-method"}
            return 200, "application/json;charset=utf-8", self._signed_json(method, error)
        biz = json.loads(params["biz_content"])
        with self._changed:
            if self.fail_sends > 0:
                self.fail_sends -= 1
                payload = {
                    "code": "40004",
                    "msg": "Business Failed",
                    "sub_code": "PUBLIC_MSG_USER_NOT_FOLLOW",
                    "sub_msg": "用户未关注",
                }
            else:
                self.sent.append(biz)
                self._changed.notify_all()
                payload = {"code": "10000", "msg": "Success"}
        return 200, "application/json;charset=utf-8", self._signed_json(method, payload)

    def _multimedia(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        error = {"alipay_mobile_public_multimedia_download_response": {"code": "40004"}}
        if not self._verified(params) or params.get("method") != MEDIA_DOWNLOAD:
            return 200, "text/plain;charset=utf-8", json.dumps(error).encode()
        media_id = json.loads(params.get("biz_content") or "{}").get("mediaId", "")
        with self._changed:
            self.media_requests.append(media_id)
            data = self.media.get(media_id)
        if data is None:
            return 200, "text/plain;charset=utf-8", json.dumps(error).encode()
        return 200, "image/jpeg", data


def _params(query: str, body: bytes, charset: str) -> dict[str, str]:
    params = dict(parse_qsl(query, keep_blank_values=True, encoding=charset))
    if body:
        params.update(parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding=charset))
    return params


def _handler_for(standin: AlipayStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _request(self) -> tuple[str, dict[str, str]]:
            # The SDK sends an absolute request target: http://host:port/path?query
            target = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            charset = dict(parse_qsl(target.query)).get("charset", "utf-8")
            return target.path, _params(target.query, body, charset)

        def do_POST(self) -> None:
            path, params = self._request()
            if path != "/gateway.do":
                self._answer(404, "text/plain", b"not found")
                return
            self._answer(*standin._openapi(params))

        def do_GET(self) -> None:
            path, params = self._request()
            if path != "/chat/multimedia.do":
                self._answer(404, "text/plain", b"not found")
                return
            self._answer(*standin._multimedia(params))

    return Handler
