"""What every chat platform does with a message it has accepted, and how it renders replies.

* :func:`answer` — note when the account last wrote to us (WeChat's 48-hour window for
  customer-service messages runs from it), ask the dialogue engine, and apologise with the
  hotline when the engine fails: nobody is left without an answer.
* :func:`render_texts` — WeChat and Alipay show text only: buttons become numbered lines the
  user can type back, an image or a link its address.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable

from bot.messages import UserMessage
from services.accounts import note_inbound
from services.outbound import BotMessage
from services.regions import policy_for

log = logging.getLogger(__name__)


def sorry_text() -> str:
    return (
        "抱歉，系统有点忙，没能处理您刚才的消息。请过一会儿再发一次，"
        f"或拨打{policy_for(None).hotline}咨询。"
    )


INBOUND_MARK_EVERY = dt.timedelta(seconds=60)
"""A sender's "last wrote to us" is written at most this often by one process: a time up to a
minute old only makes the 48-hour window end a minute early (a template instead), never late."""


class InboundMarks:
    """When this process last wrote each sender's inbound time (bounded; a miss only writes)."""

    LIMIT = 50_000

    def __init__(self) -> None:
        self._written: dict[tuple[str, str], dt.datetime] = {}
        self._mutex = threading.Lock()

    def due(self, channel: str, sender: str, at: dt.datetime) -> bool:
        with self._mutex:
            last = self._written.get((channel, sender))
            return last is None or not (dt.timedelta(0) <= at - last < INBOUND_MARK_EVERY)

    def written(self, channel: str, sender: str, at: dt.datetime) -> None:
        with self._mutex:
            if len(self._written) >= self.LIMIT:
                self._written.clear()
            self._written[(channel, sender)] = at


def record_inbound(runtime, channel: str, sender: str, at: dt.datetime | None = None) -> None:
    """The account row (created on first contact) notes when its user last wrote to us."""
    at = at or runtime.clock.now()
    marks = runtime.extensions.setdefault("inbound_marks", InboundMarks())
    if not marks.due(channel, sender, at):
        return
    try:
        note_inbound(runtime.database, channel, sender, at)
        marks.written(channel, sender, at)
    except Exception:  # noqa: BLE001 — the reply matters more than the bookkeeping
        log.exception("could not record an inbound %s message", channel)


def answer(runtime, message: UserMessage, at: dt.datetime | None = None) -> list[BotMessage]:
    """The engine's replies to ``message``, or an apology when the engine fails."""
    record_inbound(runtime, message.channel, message.sender, at)
    try:
        return runtime.extensions["engine"].handle(message)
    except Exception:  # noqa: BLE001 — the user gets an apology, the log the traceback
        log.exception("the engine failed on a %s message", message.channel)
        return [BotMessage(text=sorry_text())]


def render_text(reply: BotMessage) -> str:
    text = reply.as_plain_text()
    if reply.image:
        text = f"{text}\n{reply.image}" if text else reply.image
    return text.strip()


def render_texts(replies: Iterable[BotMessage]) -> list[str]:
    return [text for text in map(render_text, replies) if text]
