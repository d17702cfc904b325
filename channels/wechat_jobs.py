"""The work behind a WeChat message: running the engine, late replies, photos.

* :func:`run_message` runs on a thread of the web process that received the message: it waits
  for the sender's turn, records the inbound message (it opens the 48-hour window for
  customer-service messages), asks the engine and leaves the result for whoever delivers it
  (see :mod:`channels.wechat_state`). When the webhook has already answered ``success`` it
  enqueues :func:`deliver_replies`.
* :func:`deliver_replies` and :func:`process_image` are job functions (``queue.enqueue``): on an
  RQ worker when ``REDIS_URL`` is set, on the thread pool otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from bot.messages import BotMessage, UserMessage
from channels.wechat_api import (
    MAX_TEXT_BYTES,
    MediaUnavailable,
    download_media,
    masked,
    send_texts,
)
from channels.wechat_state import state_for
from services.accounts import account_for

log = logging.getLogger(__name__)

ORDER_WAIT = 15.0  # seconds a message waits for the sender's previous one before going ahead
ENGINE_SLOTS = threading.BoundedSemaphore(8)  # engine turns at once per process (DB pool: 15)

SORRY = "抱歉，系统有点忙，没能处理您刚才的消息。请过一会儿再发一次，或拨打12333咨询。"
PHOTO_MISSING = "抱歉，照片没有收到。请再发一次照片；如果还不行，可以换个时间再试。"


def render(replies: list[BotMessage]) -> list[str]:
    """WeChat shows text only: buttons become numbered lines the user can type back."""
    return [text for text in (reply.as_plain_text() for reply in replies) if text]


def fits_passive(texts: list[str]) -> bool:
    """A passive reply is one text message: all replies joined must fit in one."""
    return len("\n\n".join(texts).encode("utf-8")) <= MAX_TEXT_BYTES


def record_inbound(app, openid: str, received_at: dt.datetime) -> None:
    try:
        with app.extensions["db"].session() as session:
            account_for(session, "wechat", openid, inbound=True, now=received_at)
    except Exception:  # noqa: BLE001 — the reply matters more than the bookkeeping
        log.exception("could not record an inbound WeChat message of %s", masked(openid))


def _answer(app, message: UserMessage, received_at: dt.datetime) -> list[str]:
    with ENGINE_SLOTS:
        record_inbound(app, message.sender, received_at)
        try:
            return render(app.extensions["engine"].handle(message))
        except Exception:  # noqa: BLE001 — the user gets an apology, the log the traceback
            log.exception("the engine failed on a WeChat message of %s", masked(message.sender))
            return [SORRY]


def run_message(
    app,
    key: str,
    sender: str,
    message: UserMessage | None,
    fixed: list[str] | None,
    ticket: int,
    received_at: dt.datetime,
    done: threading.Event | None = None,
) -> None:
    """Handle one accepted message on a background thread; ``fixed`` answers without the engine."""
    state = state_for(app)
    texts: list[str] = []
    try:
        if not state.wait_turn(sender, ticket, ORDER_WAIT):
            log.warning("%s: previous message still running; going ahead", masked(sender))
        if message is not None:
            texts = _answer(app, message, received_at)
        else:
            record_inbound(app, sender, received_at)
            texts = list(fixed or [])
    except Exception:  # noqa: BLE001
        log.exception("a WeChat message of %s failed", masked(sender))
        texts = [SORRY]
    finally:
        try:
            state.turn_done(sender, ticket)
        except Exception:  # noqa: BLE001 — the next message waits ORDER_WAIT at most
            log.exception("could not mark the turn of %s done", masked(sender))
    try:
        owed = state.finish(key, texts, fits_passive(texts))
        if owed and texts:
            app.extensions["jobs"].enqueue(deliver_replies, sender, texts)
    except Exception:  # noqa: BLE001
        log.exception("could not hand over the reply for %s", masked(sender))
    finally:
        if done is not None:
            done.set()


def deliver_replies(app, openid: str, texts: list[str]) -> str:
    """Job: send a late answer as customer-service messages (template outside the window)."""
    return send_texts(app, openid, texts)


def process_image(app, openid: str, media_id: str, key: str, ticket: int, received_iso: str) -> str:
    """Job: download a photo now (WeChat keeps it 3 days), hand it to the engine — which files
    it for manual review — and send the answers as customer-service messages."""
    state = state_for(app)
    received_at = dt.datetime.fromisoformat(received_iso)
    try:
        try:
            image = download_media(app, media_id)
        except MediaUnavailable as error:
            log.warning("photo of %s could not be downloaded: %s", masked(openid), error)
            image = None
        if not state.wait_turn(openid, ticket, ORDER_WAIT):
            log.warning("%s: previous message still running; going ahead", masked(openid))
        if image is None:
            record_inbound(app, openid, received_at)
            texts = [PHOTO_MISSING]
        else:
            message = UserMessage(sender=openid, channel="wechat", image=image)
            texts = _answer(app, message, received_at)
    finally:
        state.turn_done(openid, ticket)
    log.info("photo message %s of %s handled", key, masked(openid))
    return send_texts(app, openid, texts) if texts else "nothing to send"
