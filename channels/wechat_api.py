"""Calls to the WeChat Official Account API (wechatpy's client): send, download, menu.

* Customer-service messages (客服消息) reach a user within 48 hours of their last message.
  Outside that window WeChat answers errcode 45015 (45047: too many in the window); the user
  then gets one template message (``WECHAT_TEMPLATE_ID``) asking them to write back.
* The access token lives in Redis (wechatpy's ``RedisStorage``), shared by every worker on
  every host. It is fetched when missing and refreshed at most once per call when WeChat says
  it is invalid or expired (40001 / 40014 / 42001); a lock keeps the workers from fetching it
  all at once — each fetch invalidates the previous token after a few minutes.
* ``WECHAT_API_BASE_URL`` (default ``https://api.weixin.qq.com/cgi-bin/``) points the client at
  a stand-in server in tests and benchmarks.
* WeChat out of reach (no connection, a timeout, HTTP 5xx, errcode -1 "system busy") is told
  apart from a refusal: :func:`send_parts` hands back what was not sent and
  :func:`download_media` raises :class:`ApiUnreachable`, so the jobs in
  :mod:`channels.wechat_jobs` try again later instead of losing the message.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from contextlib import contextmanager

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from channels.inbound import render_texts
from services.clock import system_clock

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com/cgi-bin/"
REFRESH_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / token, token expired
OUT_OF_WINDOW_ERRCODES = frozenset({45015, 45047})  # 48-hour window closed / its quota used up
API_TIMEOUT = 5.0  # seconds per API call
TOKEN_MARGIN = 300  # refresh the token this many seconds before WeChat expires it
MAX_TEXT_BYTES = 2048  # a WeChat text message; longer replies go out in several parts
MAX_MEDIA_BYTES = 10 * 1024 * 1024

MENU = {
    "button": [
        {"type": "click", "name": "我要认证", "key": "CERTIFY"},
        {"type": "click", "name": "认证查询", "key": "STATUS"},
        {"type": "click", "name": "常见问题", "key": "FAQ"},
    ]
}


class MediaUnavailable(Exception):
    """The photo could not be downloaded (expired, unknown, too large, not an image)."""


class ApiUnreachable(Exception):
    """WeChat's API did not answer: worth trying again later (the photo, the message wait)."""


SYSTEM_BUSY = -1  # errcode: "系统繁忙，此时请开发者稍候再试"


def unreachable(error: Exception) -> bool:
    """No connection, a timeout, HTTP 5xx (wechatpy: errcode None) or WeChat busy."""
    if isinstance(error, requests.RequestException):
        return True
    return isinstance(error, WeChatClientException) and error.errcode in (None, SYSTEM_BUSY)


class OfficialAccountClient(WeChatClient):
    """wechatpy's client with a configurable API address, a shared token and one refresh.

    wechatpy's own ``auto_retry`` refreshes the token and retries without limit; here it is off
    and :meth:`_request` refreshes at most once.
    """

    def __init__(self, appid, secret, *, api_base_url, session, refresh_lock, timeout=API_TIMEOUT):
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_base_url  # instance attribute: read by every API call
        self._refresh_lock = refresh_lock

    @property
    def access_token(self):
        return self.session.get(self.access_token_key) or self.refresh_access_token(stale=None)

    def refresh_access_token(self, stale: str | None) -> str:
        """A fresh token; ``stale`` is the one WeChat refused (another worker may have
        replaced it already, in which case no new fetch is needed)."""
        with self._refresh_lock():
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current
            self.fetch_access_token()
            return self.session.get(self.access_token_key)

    def fetch_access_token(self):
        log.info("fetching a WeChat access token")
        try:
            response = self._http.get(
                self.API_BASE_URL + "token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                },
                timeout=self.timeout,
            )
            response.raise_for_status()
            result = response.json()
        except (requests.RequestException, ValueError) as error:
            raise WeChatClientException(
                None, f"token fetch failed: {error}", client=self
            ) from error
        if result.get("errcode") or not result.get("access_token"):
            raise WeChatClientException(
                result.get("errcode"), result.get("errmsg", "no access_token"), client=self
            )
        expires_in = int(result.get("expires_in") or 7200)
        self.session.set(
            self.access_token_key, result["access_token"], max(60, expires_in - TOKEN_MARGIN)
        )
        return result

    def _request(self, method, url_or_endpoint, **kwargs):
        params = dict(kwargs.pop("params", None) or {})
        token = params.get("access_token") or self.access_token
        params["access_token"] = token
        try:
            return super()._request(method, url_or_endpoint, params=params, **kwargs)
        except WeChatClientException as error:
            if error.errcode not in REFRESH_ERRCODES:
                raise
            log.info("WeChat refused the access token (errcode %s); refreshing once", error.errcode)
        params["access_token"] = self.refresh_access_token(stale=token)
        return super()._request(method, url_or_endpoint, params=params, **kwargs)


def api_base_url(runtime) -> str:
    url = (
        runtime.config.get("WECHAT_API_BASE_URL")
        or os.environ.get("WECHAT_API_BASE_URL")
        or DEFAULT_API_BASE_URL
    )
    return url if url.endswith("/") else url + "/"


def client_for(runtime) -> OfficialAccountClient:
    """The process's client, its token shared through Redis when configured."""
    client = runtime.extensions.get("wechat_client")
    if client is None:
        appid, secret = runtime.config.get("WECHAT_APPID"), runtime.config.get("WECHAT_SECRET")
        if not (appid and secret):
            raise RuntimeError("WECHAT_APPID and WECHAT_SECRET are needed to call the WeChat API")
        redis_client = runtime.extensions["stores"].client
        if redis_client is not None:
            session = RedisStorage(redis_client, prefix=f"{runtime.config['REDIS_PREFIX']}wechatpy")
            lock_name = f"{runtime.config['REDIS_PREFIX']}wechat:token-refresh"

            def refresh_lock():
                return redis_client.lock(lock_name, timeout=15, blocking_timeout=15)

        else:
            session = MemoryStorage()
            refresh_lock = _thread_lock(threading.Lock())
        client = OfficialAccountClient(
            appid,
            secret,
            api_base_url=api_base_url(runtime),
            session=session,
            refresh_lock=refresh_lock,
        )
        runtime.extensions["wechat_client"] = client
    return client


def _thread_lock(lock: threading.Lock):
    @contextmanager
    def hold():
        with lock:
            yield

    return hold


def masked(openid: str) -> str:
    """An openid for the logs: enough to tell people apart, not enough to address them."""
    return f"{openid[:4]}…{openid[-3:]}" if len(openid) > 8 else "…"


# --------------------------------------------------------------------------- outbound


class DeliveryFailed(RuntimeError):
    """WeChat refused or could not be reached; the job fails visibly (and may be retried)."""


class WeChatOutbound:
    """The outbound port for WeChat: customer-service messages, a template outside 48 hours."""

    def __init__(self, runtime):
        self.runtime = runtime

    def deliver(self, recipient, messages) -> None:
        from channels.wechat_jobs import deliver_later

        openid = recipient.external_id
        status, unsent = send_parts(self.runtime, openid, render_texts(messages))
        if status == "unreachable" and deliver_later(self.runtime, openid, unsent, attempt=0):
            return  # a job sends the rest when WeChat answers again
        if status in {"failed", "unreachable"}:
            raise DeliveryFailed(f"WeChat message to {masked(openid)} not sent")


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Cut a text into parts of at most ``limit`` UTF-8 bytes, at line ends where possible."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode("utf-8")) > limit:  # one very long line: cut by characters
            cut = len(line)
            while len(line[:cut].encode("utf-8")) > limit:
                cut = cut * 3 // 4
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:cut])
            line = line[cut:]
        if len((current + line).encode("utf-8")) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return [part.strip("\n") for part in parts if part.strip()]


def send_texts(runtime, openid: str, texts: list[str]) -> str:
    """Send replies as customer-service text messages, in order.

    Returns ``"custom"`` when all went out, ``"template"`` when the 48-hour window was closed
    and a template message went instead, ``"failed"`` otherwise (logged, never raised: a
    background job has nobody to raise to). To try again what WeChat did not receive, use
    :func:`send_parts` (the jobs do).
    """
    status, _ = send_parts(runtime, openid, texts)
    return "failed" if status == "unreachable" else status


def send_parts(runtime, openid: str, texts: list[str]) -> tuple[str, list[str]]:
    """:func:`send_texts`, and the parts not sent: ``("unreachable", unsent)`` when WeChat
    could not be reached — every part before them went out, exactly once."""
    client = client_for(runtime)
    parts = [part for text in texts for part in split_text(text)]
    for number, part in enumerate(parts):
        try:
            client.message.send_text(openid, part)
        except (WeChatClientException, requests.RequestException) as error:
            if not unreachable(error):
                return _refused(runtime, openid, parts[number], error), []
            log.warning("WeChat unreachable sending to %s: %s", masked(openid), _reason(error))
            return "unreachable", parts[number:]
    return "custom", []


def _refused(runtime, openid: str, part: str, error: Exception) -> str:
    """WeChat answered no: a template outside the 48-hour window, else ``"failed"``."""
    errcode = getattr(error, "errcode", None)
    if errcode in OUT_OF_WINDOW_ERRCODES:
        log.info(
            "customer-service window closed for %s (errcode %s); sending a template",
            masked(openid),
            errcode,
        )
        return "template" if send_template_notice(runtime, openid, part) else "failed"
    log.error("customer-service message to %s failed: errcode %s", masked(openid), errcode)
    return "failed"


def template_data(text: str, now: dt.datetime | None = None) -> dict:
    """The template's fields: ``thing1`` an excerpt (WeChat allows 20 characters), ``time2`` the
    time, ``thing3`` what to do. Adapt here if the chosen template has other field names."""
    now = now or system_clock.now()
    excerpt = " ".join(text.split())
    excerpt = excerpt if len(excerpt) <= 20 else excerpt[:19] + "…"
    return {
        "thing1": {"value": excerpt},
        "time2": {"value": now.strftime("%Y-%m-%d %H:%M")},
        "thing3": {"value": "回复任意文字即可查看完整答复"},
    }


def send_template_notice(runtime, openid: str, text: str) -> bool:
    template_id = runtime.config.get("WECHAT_TEMPLATE_ID")
    if not template_id:
        log.error(
            "no WECHAT_TEMPLATE_ID: cannot reach %s outside the 48-hour window", masked(openid)
        )
        return False
    try:
        client_for(runtime).message.send_template(
            openid, template_id, template_data(text, runtime.clock.now())
        )
    except (WeChatClientException, requests.RequestException) as error:
        log.error("template message to %s failed: %s", masked(openid), _reason(error))
        return False
    return True


def _reason(error: Exception) -> str:
    if isinstance(error, WeChatClientException) and error.errcode is not None:
        return f"errcode {error.errcode}"
    return error.__class__.__name__


def download_media(runtime, media_id: str) -> bytes:
    """A temporary media file (kept by WeChat for 3 days) as bytes."""
    try:
        response = client_for(runtime).media.download(media_id)
    except (WeChatClientException, requests.RequestException) as error:
        if unreachable(error):
            raise ApiUnreachable(_reason(error)) from error
        raise MediaUnavailable(_reason(error)) from error
    if not isinstance(response, requests.Response):
        raise MediaUnavailable("WeChat sent JSON instead of a file")
    data = response.content
    if not data or len(data) > MAX_MEDIA_BYTES:
        raise MediaUnavailable(f"{len(data)} bytes")
    return data


def create_menu(runtime, menu: dict | None = None) -> dict:
    """Create the Official Account's menu: 我要认证 / 认证查询 / 常见问题."""
    return client_for(runtime).menu.create(menu or MENU)
