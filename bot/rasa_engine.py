"""The dialogue on a Rasa server (``RASA_URL``): its REST channel and its NLU HTTP API.

Rasa Open Source runs on Python ≤ 3.10, so it lives in its own runtime (e.g. the
``rasa/rasa:3.6.21-full`` image) trained on ``nlu/`` and pointed at an action server running
``python -m rasa_sdk --actions bot.actions``. We keep what must stay ours: the per-sender lock,
the silence while a human has the conversation, and where photos are parked.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from bot import exchange
from bot.messages import BotMessage, UserMessage
from bot.stores import Stores
from bot.uploads import UploadParking
from nlu.normalize import to_halfwidth, to_simplified
from services import handoffs
from services.db import Database

log = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    """The Rasa server did not answer, or answered something that is not Rasa's format."""


def _post(url: str, body: dict, timeout: float) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except (urllib.error.URLError, TimeoutError, ValueError) as error:
        raise RasaUnavailable(f"{url}: {error}") from error


class RasaNLU:
    """``/model/parse`` of a Rasa server."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def parse(self, text: str) -> dict:
        result = _post(f"{self.url}/model/parse", {"text": text}, self.timeout)
        if not isinstance(result, dict) or "intent" not in result:
            raise RasaUnavailable("unexpected /model/parse answer")
        return result


class RasaEngine:
    """Relays each message to a Rasa server's REST channel.

    Besides the lock and the handoff check, we keep one small record per conversation (in the
    tracker store, beside the embedded engine's trackers): the buttons last offered, so a
    typed "2" means the same here as in the embedded engine, and whether Rasa paused the
    conversation for a human (``ConversationPaused``) — released by staff, it is resumed on
    Rasa's side too, or Rasa would stay silent for good.
    """

    def __init__(
        self,
        *,
        url: str,
        stores: Stores,
        database: Database,
        photo_dir,
        timeout=10.0,
        session_ttl_seconds: int = 30 * 60,
    ):
        self.url = url.rstrip("/")
        self.stores = stores
        self.database = database
        self.uploads = UploadParking(photo_dir)  # the action server claims them from here
        self.timeout = timeout
        self.session_ttl_seconds = session_ttl_seconds

    def handle(self, message: UserMessage) -> list[BotMessage]:
        conversation_id = message.conversation_id
        record_key = f"rasa:{conversation_id}"
        with self.stores.turns.begin(conversation_id, record_key) as turn:
            record = turn.tracker or {}
            if self._handed_off(conversation_id):
                return []
            if record.get("paused"):
                self._resume(conversation_id)
            incoming = exchange.rasa_message(message, self.uploads, record.get("buttons") or [])
            if incoming is None:
                return []
            body = {
                "sender": conversation_id,
                "message": _as_rasa_reads_it(incoming.text),
                "metadata": incoming.metadata,
            }
            answer = _post(f"{self.url}/webhooks/rest/webhook", body, self.timeout)
            if not isinstance(answer, list):
                raise RasaUnavailable("unexpected REST channel answer")
            replies = [exchange.bot_message(item) for item in answer if isinstance(item, dict)]
            record = {
                "buttons": exchange.buttons_offered(replies),
                "paused": self._handed_off(conversation_id),
            }
            turn.save(record, self.session_ttl_seconds)
        return replies

    def _handed_off(self, conversation_id: str) -> bool:
        with self.database.session() as session:
            return handoffs.is_handed_off(session, conversation_id)

    def _resume(self, conversation_id: str) -> None:
        """Staff gave the conversation back: undo Rasa's ConversationPaused."""
        # ":" stays as it is: Rasa's router does not decode %3A back into the sender id.
        path = f"/conversations/{urllib.parse.quote(conversation_id, safe=':')}/tracker/events"
        _post(f"{self.url}{path}", {"event": "resume"}, self.timeout)


def _as_rasa_reads_it(text: str) -> str:
    """Typed text in simplified characters and half-width forms, as the embedded NLU reads it:
    the Rasa project's training data is simplified Chinese (趙建國 is 赵建国). Payloads as sent."""
    if text.startswith("/"):
        return text
    return to_simplified(to_halfwidth(text))
