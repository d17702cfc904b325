"""Stand-ins for WeChat in tests: its API server, and its servers that post to our webhook.

* :class:`WeChatAPIStandIn` — a real HTTP server on a free local port, in a thread, answering
  like ``https://api.weixin.qq.com/cgi-bin/``: ``token`` issues access tokens, every other call
  checks its ``access_token``; ``message/custom/send``, ``message/template/send`` and
  ``menu/create`` are recorded; ``media/get`` serves files. ``fail_next(errcode)`` makes the
  next calls answer an error (45015, 40001, …).
* :class:`WeChatPlatform` — builds signed (and, in safe mode, encrypted) requests the way the
  WeChat servers send them, and reads the replies.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import defusedxml.ElementTree as SafeET
from wechatpy.crypto import WeChatCrypto

TEST_APPID = "wx0123456789abcdef"
TEST_SECRET = "s3cr3t-for-tests"
TEST_TOKEN = "token-for-tests"
TEST_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues
TEST_TEMPLATE_ID = "tmpl-certification-reply"
OFFICIAL_ACCOUNT = "gh_0123456789ab"


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


class WeChatAPIStandIn:
    def __init__(self, appid: str = TEST_APPID, secret: str = TEST_SECRET):
        self.appid = appid
        self.secret = secret
        self.lock = threading.Lock()
        self.tokens_issued: list[str] = []
        self.valid_tokens: set[str] = set()
        self.custom: list[dict] = []
        self.templates: list[dict] = []
        self.menus: list[dict] = []
        self.media: dict[str, bytes] = {}
        self.media_downloads: list[str] = []
        self.calls: list[str] = []
        self._failures: list[list] = []  # [endpoint, errcode, good calls to let through first]
        self._counter = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

        self._handler = Handler
        self._listen(0)

    def _listen(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- control -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/"

    def start(self) -> WeChatAPIStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> None:
        """Serve again on the same address after :meth:`stop` (WeChat back from an outage);
        what it recorded and the media it holds are kept."""
        self._listen(self.server.server_address[1])
        self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def fail_next(
        self, errcode: int, endpoint: str | None = None, times: int = 1, skip: int = 0
    ) -> None:
        """After ``skip`` good ones, the next ``times`` calls (to ``endpoint``, e.g.
        ``message/custom/send``) answer ``errcode``."""
        with self.lock:
            self._failures.extend([endpoint, errcode, skip if n == 0 else 0] for n in range(times))

    def revoke_tokens(self) -> None:
        """Every issued token stops working (as if another system had fetched a new one)."""
        with self.lock:
            self.valid_tokens.clear()

    def add_media(self, data: bytes) -> str:
        media_id = "media-" + uuid.uuid4().hex
        self.media[media_id] = data
        return media_id

    def sent_texts(self, openid: str | None = None) -> list[str]:
        with self.lock:
            return [
                c["text"]["content"]
                for c in self.custom
                if c.get("msgtype") == "text" and (openid is None or c["touser"] == openid)
            ]

    # -- serving -------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if not url.path.startswith("/cgi-bin/"):
            return self._json(handler, {"errcode": 404, "errmsg": "not found"}, status=404)
        endpoint = url.path[len("/cgi-bin/") :]
        with self.lock:
            self.calls.append(endpoint)
        if endpoint == "token":
            return self._token(handler, query)

        with self.lock:
            token_ok = query.get("access_token") in self.valid_tokens
            failure = None
            if token_ok:
                for index, entry in enumerate(self._failures):
                    target, errcode, skip = entry
                    if target is None or target == endpoint:
                        if skip:
                            entry[2] -= 1
                        else:
                            failure = errcode
                            del self._failures[index]
                        break
        if not token_ok:
            return self._json(handler, {"errcode": 40001, "errmsg": "invalid credential"})
        if failure is not None:
            return self._json(handler, {"errcode": failure, "errmsg": f"stand-in error {failure}"})

        if method == "POST" and endpoint in {
            "message/custom/send",
            "message/template/send",
            "menu/create",
        }:
            try:
                data = json.loads(body.decode("utf-8"))
            except ValueError:
                return self._json(handler, {"errcode": 47001, "errmsg": "data format error"})
            record = {
                "message/custom/send": self.custom,
                "message/template/send": self.templates,
                "menu/create": self.menus,
            }[endpoint]
            with self.lock:
                record.append(data)
            answer = {"errcode": 0, "errmsg": "ok"}
            if endpoint == "message/template/send":
                answer["msgid"] = next(self._counter)
            return self._json(handler, answer)
        if method == "GET" and endpoint == "media/get":
            media_id = query.get("media_id", "")
            with self.lock:
                self.media_downloads.append(media_id)
                data = self.media.get(media_id)
            if data is None:
                return self._json(handler, {"errcode": 40007, "errmsg": "invalid media_id"})
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Disposition", f'attachment; filename="{media_id}.jpg"')
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return None
        return self._json(handler, {"errcode": 48001, "errmsg": "api unauthorized"})

    def _token(self, handler, query: dict) -> None:
        if query.get("grant_type") != "client_credential" or query.get("appid") != self.appid:
            return self._json(handler, {"errcode": 40013, "errmsg": "invalid appid"})
        if query.get("secret") != self.secret:
            return self._json(handler, {"errcode": 40125, "errmsg": "invalid appsecret"})
        with self.lock:
            token = f"ACCESS_TOKEN_{next(self._counter)}_{uuid.uuid4().hex[:8]}"
            self.tokens_issued.append(token)
            self.valid_tokens.add(token)
        return self._json(handler, {"access_token": token, "expires_in": 7200})

    @staticmethod
    def _json(handler, payload: dict, status: int = 200) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


# --------------------------------------------------------------------------- the platform


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


class WeChatPlatform:
    """What the WeChat servers send to our ``/wechat`` URL."""

    def __init__(
        self, token: str = TEST_TOKEN, aes_key: str | None = None, appid: str = TEST_APPID
    ):
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        self._ids = itertools.count(int(time.time() * 1000) * 1000 + uuid.uuid4().int % 1000)

    def new_msg_id(self) -> str:
        return str(next(self._ids))

    def query(self, timestamp: int | None = None, nonce: str | None = None) -> dict:
        timestamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or uuid.uuid4().hex[:10]
        return {
            "signature": sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }

    # -- message bodies --------------------------------------------------------------------
    @staticmethod
    def _xml(openid: str, msg_type: str, fields: dict, create_time: int | None = None) -> str:
        created = create_time if create_time is not None else int(time.time())
        parts = [
            f"<ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>",
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
            f"<CreateTime>{created}</CreateTime>",
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        ]
        for name, value in fields.items():
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
        return "<xml>" + "".join(parts) + "</xml>"

    def text(self, openid: str, content: str, msg_id: str | None = None) -> str:
        return self._xml(openid, "text", {"Content": content, "MsgId": msg_id or self.new_msg_id()})

    def voice(self, openid: str, recognition: str | None, msg_id: str | None = None) -> str:
        fields = {"MediaId": "voice-media", "Format": "amr"}
        if recognition is not None:
            fields["Recognition"] = recognition
        fields["MsgId"] = msg_id or self.new_msg_id()
        return self._xml(openid, "voice", fields)

    def image(self, openid: str, media_id: str, msg_id: str | None = None) -> str:
        fields = {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": media_id}
        fields["MsgId"] = msg_id or self.new_msg_id()
        return self._xml(openid, "image", fields)

    def event(self, openid: str, event: str, key: str | None = None, create_time=None) -> str:
        fields = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        return self._xml(openid, "event", fields, create_time)

    def other(self, openid: str, msg_type: str = "video") -> str:
        return self._xml(openid, msg_type, {"MediaId": "m", "MsgId": self.new_msg_id()})

    # -- requests ----------------------------------------------------------------------------
    def envelope(self, xml: str, query: dict | None = None) -> tuple[dict, bytes]:
        """Query string and body for one delivery of ``xml`` (encrypted in safe mode)."""
        query = dict(query or self.query())
        if self.crypto is None:
            return query, xml.encode("utf-8")
        sealed = SafeET.fromstring(
            self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
        )
        encrypt = sealed.findtext("Encrypt")
        query.update(
            encrypt_type="aes", msg_signature=sealed.findtext("MsgSignature"), openid="o-ignored"
        )
        body = (
            f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
        return query, body.encode("utf-8")

    def post(self, client, xml: str, query: dict | None = None, path: str = "/wechat"):
        query, body = self.envelope(xml, query)
        return client.post(path, query_string=query, data=body, content_type="text/xml")

    def reply(self, response) -> dict:
        """The passive reply's fields ({} for ``success``), decrypted in safe mode."""
        body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
        if body in ("", "success"):
            return {}
        root = SafeET.fromstring(body)
        if self.crypto is not None:
            assert root.find("Encrypt") is not None, "safe mode replies must be encrypted"
            signature = root.findtext("MsgSignature")
            timestamp, nonce = root.findtext("TimeStamp"), root.findtext("Nonce")
            root = SafeET.fromstring(self.crypto.decrypt_message(body, signature, timestamp, nonce))
        return {child.tag: child.text for child in root}


# --------------------------------------------------------------------------- test helpers


class SpyEngine:
    """The real engine, optionally slowed down, recording what it was asked and answered."""

    def __init__(self, inner, delay: float = 0.0):
        self.inner = inner
        self.delay = delay
        self.lock = threading.Lock()
        self.calls: list = []  # (UserMessage, [BotMessage])
        self.replace = None  # a function message -> [BotMessage], instead of the real engine

    @property
    def messages(self) -> list:
        with self.lock:
            return [message for message, _ in self.calls]

    def handle(self, message):
        with self.lock:
            entry = [message, None]
            self.calls.append(entry)
        if self.delay:
            time.sleep(self.delay(message) if callable(self.delay) else self.delay)
        replies = self.replace(message) if self.replace else self.inner.handle(message)
        entry[1] = replies
        return replies


def run_jobs(app) -> None:
    """Work off the app's private RQ queue in this process (an RQ ``SimpleWorker``); jobs
    enqueued for later are moved to the queue once they are due (RQ's scheduler)."""
    from rq import SimpleWorker

    queue = app.extensions["jobs"].queue
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)


def run_jobs_until(app, predicate, timeout: float = 30.0) -> bool:
    """:func:`run_jobs` again and again (retries come due) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        run_jobs(app)
        time.sleep(0.1)
    return True


def wait_for_threads(timeout: float = 20.0) -> None:
    """Let the background runs of the WeChat channel finish (before the database goes)."""
    from channels.wechat_jobs import RUNS

    assert RUNS.wait_idle(timeout), "WeChat runs still busy"
