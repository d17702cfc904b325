"""The work behind a WeChat message: running the engine, late replies, photos.

* :func:`run_message` runs on a thread of the web process that received the message: it waits
  for the sender's turn, records the inbound message (it opens the 48-hour window for
  customer-service messages), asks the engine and leaves the result for whoever delivers it
  (see :mod:`channels.wechat_state`). When the webhook has already answered ``success`` it
  enqueues :func:`deliver_replies`.
* :func:`deliver_replies` and :func:`process_image` are job functions (``queue.enqueue``): on an
  RQ worker when ``REDIS_URL`` is set, on the thread pool otherwise.
* WeChat's API out of reach: the photo's download, or the messages not yet sent, are tried
  again later (``queue.enqueue_in``) after 5 s, 15 s, 1 min, 5 min, 15 min, 1 h, 3 h and 6 h
  (``WECHAT_RETRY_SECONDS``): when WeChat answers again the user gets the answer — or the
  apology — that was owed. Parts already sent are not sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from bot.messages import UserMessage
from channels.inbound import answer, record_inbound, render_texts, sorry_text
from channels.wechat_api import (
    MAX_TEXT_BYTES,
    ApiUnreachable,
    MediaUnavailable,
    download_media,
    masked,
    send_parts,
)
from channels.wechat_state import LATE, OWED, PASSIVE, Outcome, state_for

log = logging.getLogger(__name__)

CHANNEL = "wechat"
ORDER_WAIT = 15.0  # seconds a message waits for the sender's previous one before going ahead
ENGINE_SLOTS = threading.BoundedSemaphore(8)  # engine turns at once per process (DB pool: 15)
RUN_THREADS = 64  # runs at once per process: those past ENGINE_SLOTS wait their turn there

PHOTO_MISSING = "抱歉，照片没有收到。请再发一次照片；如果还不行，可以换个时间再试。"
# Seconds between tries while WeChat's API is out of reach (about 10 hours in all: within the
# 48-hour customer-service window and the 3 days WeChat keeps a photo).
RETRY_SECONDS = (5, 15, 60, 300, 900, 3600, 3 * 3600, 6 * 3600)


def retry_seconds(runtime) -> tuple[float, ...]:
    """``WECHAT_RETRY_SECONDS`` ("5,15,60"), else :data:`RETRY_SECONDS`."""
    setting = runtime.config.get("WECHAT_RETRY_SECONDS")
    if not setting:
        return RETRY_SECONDS
    items = setting.split(",") if isinstance(setting, str) else setting
    return tuple(float(item) for item in items)


def _again_later(runtime, job, attempt: int, *args) -> bool:
    """Enqueue ``job(*args, attempt=attempt + 1)`` after the next wait; False when all are used."""
    waits = retry_seconds(runtime)
    if attempt >= len(waits):
        log.error("WeChat unreachable %d times: %s given up", attempt + 1, job.__name__)
        return False
    log.warning("WeChat unreachable: %s again in %s s", job.__name__, waits[attempt])
    runtime.jobs.enqueue_in(waits[attempt], job, *args, attempt=attempt + 1)
    return True


def fits_passive(texts: list[str]) -> bool:
    """A passive reply is one text message: all replies joined must fit in one."""
    return len("\n\n".join(texts).encode("utf-8")) <= MAX_TEXT_BYTES


def _answer(runtime, message: UserMessage, received_at: dt.datetime) -> list[str]:
    with ENGINE_SLOTS:
        return render_texts(answer(runtime, message, received_at))


class Runs:
    """The threads that run accepted messages: a pool kept for the process (a thread started per
    message costs more than the message's own bookkeeping). First in, first out, so a sender's
    earlier message has started before a later one waits for it. :meth:`wait_idle` lets tests
    and shutdown see the runs through."""

    def __init__(self, threads: int = RUN_THREADS):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wechat-run")
        self._busy = 0
        self._idle = threading.Condition()

    def start(self, *args, **kwargs) -> None:
        with self._idle:
            self._busy += 1
        self._pool.submit(self._run, args, kwargs)

    def _run(self, args, kwargs) -> None:
        try:
            run_message(*args, **kwargs)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)


class Handover:
    """A run and the request that started it, in one process (see :func:`run_message`)."""

    def __init__(self, attempt: int):
        self.attempt = attempt  # the request's attempt: the run may claim the result for it
        self.mutex = threading.Lock()
        self.waiting = True  # False once the request has stopped waiting (its deadline)
        self.outcome: Outcome | None = None  # what the run claimed for the request
        self.finished = threading.Event()


def run_message(
    runtime,
    key: str,
    sender: str,
    message: UserMessage | None,
    fixed: list[str] | None,
    ticket: int,
    received_at: dt.datetime,
    handover: Handover | None = None,
    in_turn: bool = False,
) -> None:
    """Handle one accepted message on a background thread; ``fixed`` answers without the engine.

    ``in_turn``: the sender's previous message was done when this one was accepted. The result
    goes straight to ``handover`` while its request still waits; otherwise it is left for a
    retry to claim, or, when the request gave up, sent by a job.
    """
    state = state_for(runtime)
    texts: list[str] = []
    try:
        if not (in_turn or state.wait_turn(sender, ticket, ORDER_WAIT)):
            log.warning("%s: previous message still running; going ahead", masked(sender))
        if message is not None:
            texts = _answer(runtime, message, received_at)
        else:
            record_inbound(runtime, CHANNEL, sender, received_at)
            texts = list(fixed or [])
    except Exception:  # noqa: BLE001
        log.exception("a WeChat message of %s failed", masked(sender))
        texts = [sorry_text()]
    except BaseException:
        state.turn_done(sender, ticket)  # the thread dies; the sender's next message goes on
        raise
    try:
        # The turn's end and its reply in one round trip; should it fail, the next message
        # waits ORDER_WAIT at most and the request is answered as the 5 s budget allows.
        if handover is None:
            owed = state.finish_turn(sender, ticket, key, texts, fits_passive(texts))
        else:
            owed = _hand_over(state, handover, sender, ticket, key, texts)
        if owed and texts:
            runtime.jobs.enqueue(deliver_replies, sender, texts)
    except Exception:  # noqa: BLE001
        log.exception("could not hand over the reply for %s", masked(sender))
    finally:
        if handover is not None:
            handover.finished.set()


def _hand_over(state, handover: Handover, sender: str, ticket: int, key: str, texts) -> bool:
    """Finish the turn, claiming the result for the waiting request; True when a job owes it."""
    with handover.mutex:
        attempt = handover.attempt if handover.waiting else 0
        kind = state.hand_over(sender, ticket, key, texts, fits_passive(texts), attempt)
        if kind in (PASSIVE, LATE):
            handover.outcome = Outcome(kind, tuple(texts))
        return kind == OWED


def deliver_replies(runtime, openid: str, texts: list[str], attempt: int = 0) -> str:
    """Job: send a late answer as customer-service messages (template outside the window);
    what WeChat could not be reached for is sent again later."""
    status, unsent = send_parts(runtime, openid, texts)
    if status == "unreachable":
        return "retrying" if deliver_later(runtime, openid, unsent, attempt) else "failed"
    return status


def deliver_later(runtime, openid: str, unsent: list[str], attempt: int) -> bool:
    """Try :func:`deliver_replies` again for the parts WeChat did not get (False: given up)."""
    return _again_later(runtime, deliver_replies, attempt, openid, unsent)


def process_image(
    runtime,
    openid: str,
    media_id: str,
    key: str,
    ticket: int,
    received_iso: str,
    attempt: int = 0,
) -> str:
    """Job: download a photo now (WeChat keeps it 3 days), hand it to the engine — which files
    it for manual review — and send the answers as customer-service messages. While WeChat is
    out of reach the download is tried again later; the sender's later messages go ahead."""
    state = state_for(runtime)
    received_at = dt.datetime.fromisoformat(received_iso)
    job = (openid, media_id, key, ticket, received_iso)
    try:
        try:
            image = download_media(runtime, media_id)
        except ApiUnreachable as error:
            log.warning("photo of %s not downloaded yet: %s", masked(openid), error)
            if _again_later(runtime, process_image, attempt, *job):
                return "retrying"
            image = None
        except MediaUnavailable as error:
            log.warning("photo of %s could not be downloaded: %s", masked(openid), error)
            image = None
        if not state.wait_turn(openid, ticket, ORDER_WAIT):
            log.warning("%s: previous message still running; going ahead", masked(openid))
        if image is None:
            record_inbound(runtime, CHANNEL, openid, received_at)
            texts = [PHOTO_MISSING]
        else:
            message = UserMessage(sender=openid, channel=CHANNEL, image=image)
            texts = _answer(runtime, message, received_at)
    finally:
        state.turn_done(openid, ticket)
    log.info("photo message %s of %s handled", key, masked(openid))
    return deliver_replies(runtime, openid, texts) if texts else "nothing to send"


RUNS = Runs()
