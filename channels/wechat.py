"""The WeChat Official Account channel: ``GET/POST /wechat`` (公众号服务器配置 → 服务器地址).

* ``GET`` — server verification: ``signature`` = sha1 of the sorted token, ``timestamp`` and
  ``nonce``; the answer is ``echostr``.
* ``POST`` — a message or event as XML, plaintext or, with ``WECHAT_AES_KEY`` set, in safe mode
  (``encrypt_type=aes`` + ``msg_signature``; the reply is encrypted too).

A bad or missing signature, a stale timestamp or a signature reused for another message is a
403; malformed XML, DTDs/entities (parsed with defusedxml before wechatpy sees the text),
missing fields a 400; a body over 64 KB a 413. None of them changes anything.

Each accepted message is processed once (dedupe by ``MsgId``, events by ``FromUserName`` +
``CreateTime``: Redis first, then a row in ``processed_messages`` that survives a Redis restart)
on a background thread. WeChat's 5 seconds run from when it sent the request, so the wait is
measured from the request's *arrival* (``X-Request-Start``, stamped by nginx or by our gunicorn
worker class before the request queues for a thread): a result within ``WECHAT_REPLY_WAIT``
seconds of arrival (default 4) is the passive XML reply; otherwise the answer is ``success``
and the result follows as customer-service messages from an RQ job. Retries that
arrive meanwhile wait for the same result; :mod:`channels.wechat_state` makes sure exactly one
reply goes out. Photos are downloaded and reviewed by a job (``success`` at once).
"""

from __future__ import annotations

import logging
import re
import time
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.messages import UserMessage
from channels.wechat_api import masked
from channels.wechat_jobs import RUNS, Handover, deliver_replies, process_image
from channels.wechat_state import (
    LATE,
    PASSIVE,
    POLL_INTERVAL,
    WAIT,
    Outcome,
    state_for,
)
from services.processed import first_processing

log = logging.getLogger(__name__)

blueprint = Blueprint("wechat", __name__)

PATH = "/wechat"
MAX_BODY = 64 * 1024
MAX_CLOCK_SKEW = 300  # seconds between WeChat's timestamp and ours; older requests are replays
DEFAULT_REPLY_WAIT = 4.0  # seconds of WeChat's 5 spent waiting for a passive reply
MAX_ARRIVAL_AGE = 30.0  # seconds; an older X-Request-Start is a wrong clock, not a queue
CHANNEL = "wechat"
MENU_KEYS = frozenset({"CERTIFY", "STATUS", "FAQ"})
SUBSCRIBE_EVENTS = frozenset({"subscribe"})

VOICE_NOT_UNDERSTOOD = "不好意思，这段语音我没听清。请您再说一遍，或者直接打字告诉我。"
UNSUPPORTED = "我能看懂文字和照片，也能听语音。请打字告诉我您想办什么，或者点下方的菜单。"
UNKNOWN_MENU = "这个菜单我还不认识。请点“我要认证”“认证查询”或“常见问题”，也可以直接打字问我。"

_OPENID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DIGITS = re.compile(r"\d{1,20}")


def success() -> Response:
    """WeChat's "received, no passive reply": it will not retry."""
    return Response("success", mimetype="text/plain")


# --------------------------------------------------------------------------- verification


def _token() -> str:
    token = current_app.config.get("WECHAT_TOKEN")
    if not token:
        abort(404, description="the WeChat channel is not configured (WECHAT_TOKEN)")
    return token


@blueprint.record_once
def _check_settings(state) -> None:
    """A wrong EncodingAESKey would fail every message: refuse to start with one instead."""
    config = state.app.config
    if config.get("WECHAT_TOKEN") and config.get("WECHAT_AES_KEY"):
        state.app.extensions["wechat_crypto"] = _make_crypto(config)


def _make_crypto(config) -> WeChatCrypto:
    key, appid = config["WECHAT_AES_KEY"], config.get("WECHAT_APPID")
    if not appid:
        raise ValueError("WECHAT_AES_KEY (safe mode) needs WECHAT_APPID as well")
    try:
        return WeChatCrypto(config["WECHAT_TOKEN"], key, appid)
    except (AssertionError, ValueError) as error:
        raise ValueError(
            "WECHAT_AES_KEY must be the 43-character EncodingAESKey from the WeChat console"
        ) from error


def _crypto() -> WeChatCrypto | None:
    if not current_app.config.get("WECHAT_AES_KEY"):
        return None
    crypto = current_app.extensions.get("wechat_crypto")
    if crypto is None:  # the key was set after start-up
        crypto = current_app.extensions["wechat_crypto"] = _make_crypto(current_app.config)
    return crypto


def _verified_query(token: str) -> tuple[str, str, str]:
    """``signature``, ``timestamp``, ``nonce`` — checked, and the timestamp recent."""
    signature, timestamp, nonce = (
        request.args.get(k, "") for k in ("signature", "timestamp", "nonce")
    )
    if (
        not (signature and timestamp and nonce)
        or len(nonce) > 64
        or not _DIGITS.fullmatch(timestamp)
    ):
        abort(403, description="missing or malformed signature")
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        abort(403, description="bad signature")
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW:
        abort(403, description="stale timestamp")
    return signature, timestamp, nonce


@blueprint.get(PATH)
def verify():
    _verified_query(_token())
    echostr = request.args.get("echostr", "")
    if not echostr or len(echostr) > 256:
        abort(400, description="echostr is missing")
    return Response(echostr, mimetype="text/plain")


# --------------------------------------------------------------------------- parsing


def _body() -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        abort(413)
    if not body:
        abort(400, description="empty body")
    return body


def _xml_fields(raw: bytes | str) -> dict[str, str | None]:
    """The children of ``<xml>``: text of leaves, None for nested elements. No DTDs/entities."""
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError, LookupError):
        # LookupError: a signed body may still declare an encoding nobody has (x-nope)
        abort(400, description="malformed XML")
    if root.tag != "xml":
        abort(400, description="the document must be <xml>")
    return {child.tag: None if len(child) else (child.text or "") for child in root}


def _plaintext(raw: bytes, signature: str, timestamp: str, nonce: str, crypto) -> str:
    """The message XML: the body, or in safe mode the decrypted ``Encrypt`` field."""
    if crypto is None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            abort(400, description="the body is not UTF-8")
    if request.args.get("encrypt_type") != "aes":
        abort(403, description="safe mode: messages must be encrypted")
    msg_signature = request.args.get("msg_signature", "")
    envelope = _xml_fields(raw)
    if not msg_signature or not envelope.get("Encrypt"):
        abort(403, description="missing msg_signature or Encrypt")
    try:
        return crypto.decrypt_message(
            {"Encrypt": envelope["Encrypt"]}, msg_signature, timestamp, nonce
        )
    except InvalidSignatureException:
        abort(403, description="bad msg_signature")
    except InvalidAppIdException:
        abort(403, description="message for another AppID")
    except Exception:  # noqa: BLE001 — base64, padding, length: all mean a broken envelope
        abort(400, description="cannot decrypt")


def _field(fields: dict, name: str, pattern: re.Pattern | None = None, limit: int = 64) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        abort(400, description=f"{name} is missing or malformed")
    value = value.strip()
    if pattern is not None and not pattern.fullmatch(value):
        abort(400, description=f"{name} is malformed")
    return value


class Inbound:
    """One parsed message: who, its dedupe key, and what to do with it."""

    def __init__(self, xml: str):
        fields = _xml_fields(xml.encode("utf-8"))
        self.openid = _field(fields, "FromUserName", _OPENID, 128)
        _field(fields, "ToUserName", None, 64)
        self.create_time = _field(fields, "CreateTime", _DIGITS)
        self.type = _field(fields, "MsgType", None, 32).lower()
        msg_id = fields.get("MsgId")
        if msg_id is not None and not _DIGITS.fullmatch(msg_id.strip()):
            abort(400, description="MsgId is malformed")
        try:
            self.message = parse_message(xml)  # wechatpy's typed message, for replies
        except Exception:  # noqa: BLE001 — xmltodict on odd but well-formed XML
            abort(400, description="unreadable message")
        msg_id = (msg_id or "").strip()
        self.fields = fields
        if msg_id and int(msg_id):
            self.key = f"m{msg_id}"
        else:  # events have no MsgId (wechatpy: id 0): FromUserName + CreateTime, as WeChat advises
            event = (fields.get("Event") or "").strip().lower()[:32]
            self.key = f"e{self.openid}:{self.create_time}:{event}"

    def classify(self) -> tuple[str, object]:
        """``("engine", UserMessage)``, ``("fixed", [text])``, ``("image", media_id)`` or
        ``("ignore", None)``."""
        fields = self.fields

        def user(**kwargs) -> UserMessage:
            return UserMessage(sender=self.openid, channel="wechat", **kwargs)

        if self.type == "text":
            return "engine", user(text=fields.get("Content") or "")
        if self.type == "voice":
            recognition = (fields.get("Recognition") or "").strip()
            if recognition:
                return "engine", user(text=recognition)
            return "fixed", [VOICE_NOT_UNDERSTOOD]
        if self.type == "image":
            return "image", _field(fields, "MediaId", None, 256)
        if self.type != "event":
            return "fixed", [UNSUPPORTED]
        event = (fields.get("Event") or "").strip().lower()
        if event in SUBSCRIBE_EVENTS:
            return "engine", user(event="subscribe")
        if event == "click":
            key = (fields.get("EventKey") or "").strip()
            if key in MENU_KEYS:
                return "engine", user(event=f"menu:{key}")
            return "fixed", [UNKNOWN_MENU]
        return "ignore", None  # unsubscribe, VIEW, LOCATION, template receipts, …


# --------------------------------------------------------------------------- messages


def arrived_at(environ) -> float:
    """When the request arrived, on the ``time.monotonic()`` clock.

    ``X-Request-Start`` (``t=<seconds since the epoch>``, as nginx's ``t=${msec}``; also in
    milli- or microseconds) when it is plausible — not in the future, under
    :data:`MAX_ARRIVAL_AGE` old — otherwise now. Several values (proxy and worker): the earliest.
    """
    now_wall, now = time.time(), time.monotonic()
    stamps = []
    for part in str(environ.get("HTTP_X_REQUEST_START", ""))[:200].split(","):
        try:
            stamp = float(part.strip().removeprefix("t="))
        except ValueError:
            continue
        stamp /= 1e6 if stamp > 1e14 else 1e3 if stamp > 1e11 else 1
        if 0 <= now_wall - stamp < MAX_ARRIVAL_AGE:
            stamps.append(stamp)
    return now - (now_wall - min(stamps)) if stamps else now


def _never_processed(runtime, key: str, received_at) -> bool:
    """Claim a message Redis has not seen in PostgreSQL: False when it was processed before a
    Redis restart (Redis lost its dedupe key, the row is still there)."""
    try:
        return first_processing(runtime.database, CHANNEL, key, received_at)
    except SQLAlchemyError:  # the database down: Redis alone decides; the engine will apologise
        log.exception("could not record WeChat message %s as processed", key)
        return True


@blueprint.post(PATH)
def receive():
    started = arrived_at(request.environ)
    runtime = current_app.extensions["runtime"]
    received_at = runtime.clock.now()
    token = _token()
    raw = _body()
    signature, timestamp, nonce = _verified_query(token)
    crypto = _crypto()
    inbound = Inbound(_plaintext(raw, signature, timestamp, nonce, crypto))
    kind, payload = inbound.classify()
    if kind == "ignore":
        return success()

    state = state_for(runtime)
    arrival = state.accept(
        request.args.get("msg_signature") or signature, inbound.key, sender=inbound.openid
    )
    if arrival is None:
        abort(403, description="this signature was issued for another message")
    # Redis answers retries without the database; the row outlives a Redis restart.
    if arrival.first and not _never_processed(runtime, inbound.key, received_at):
        log.info("WeChat message %s was processed before; not again", inbound.key)
        state.turn_done(inbound.openid, arrival.ticket)
        return success()
    handover = None
    if arrival.first:
        if kind == "image":
            runtime.jobs.enqueue(
                process_image,
                *(inbound.openid, payload, inbound.key, arrival.ticket, received_at.isoformat()),
            )
            state.claim(inbound.key, arrival.attempt, give_up=True)  # the job answers
            return success()
        handover = Handover(arrival.attempt)
        message, fixed = (payload, None) if kind == "engine" else (None, payload)
        RUNS.start(
            *(runtime, inbound.key, inbound.openid, message, fixed, arrival.ticket, received_at),
            handover=handover,
            in_turn=arrival.in_turn,
        )
    else:
        log.info(
            "retry %d of WeChat message %s from %s",
            *(arrival.attempt, inbound.key, masked(inbound.openid)),
        )

    wait = float(runtime.config.get("WECHAT_REPLY_WAIT") or DEFAULT_REPLY_WAIT)
    outcome = _await_result(state, inbound.key, arrival.attempt, started + wait, handover)
    if outcome.kind == PASSIVE and outcome.texts:
        return _passive_reply(inbound, outcome.texts, crypto, nonce)
    if outcome.kind == LATE and outcome.texts:
        runtime.jobs.enqueue(deliver_replies, inbound.openid, list(outcome.texts))
    return success()


def _await_result(state, key: str, attempt: int, deadline: float, handover) -> Outcome:
    """The run's result by ``deadline``: handed over by the run this request started, or
    claimed (a retry polls); after the deadline, a late delivery is claimed instead."""
    if handover is not None:
        handover.finished.wait(max(0.0, deadline - time.monotonic()))
        with handover.mutex:  # the run hands over under it: one of the two sees the other
            if handover.outcome is not None:
                return handover.outcome
            handover.waiting = False
            if not handover.finished.is_set():
                return state.claim(key, attempt, give_up=True)
        # finished without handing over: a newer retry of the message answers it
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return state.claim(key, attempt, give_up=True)
        outcome = state.claim(key, attempt, give_up=False)
        if outcome.kind != WAIT:
            return outcome
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


def _passive_reply(inbound: Inbound, texts: tuple[str, ...], crypto, nonce: str) -> Response:
    content = "\n\n".join(texts).replace("]]>", "]]]]><![CDATA[>")  # keep the CDATA closed
    xml = TextReply(message=inbound.message, content=content).render()
    if crypto is not None:
        xml = crypto.encrypt_message(xml, nonce)
    return Response(xml, mimetype="application/xml")
