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
import urllib.request

from bot.messages import BotMessage, Button, UserMessage
from bot.stores import Stores
from bot.uploads import UploadParking
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
    def __init__(self, *, url: str, stores: Stores, database: Database, photo_dir, timeout=10.0):
        self.url = url.rstrip("/")
        self.stores = stores
        self.database = database
        self.uploads = UploadParking(photo_dir)  # the action server claims them from here
        self.timeout = timeout

    def handle(self, message: UserMessage) -> list[BotMessage]:
        conversation_id = message.conversation_id
        with self.stores.locks.lock(conversation_id):
            with self.database.session() as session:
                if handoffs.is_handed_off(session, conversation_id):
                    return []
            text, metadata = self._as_rasa_message(message)
            if text is None:
                return []
            body = {"sender": conversation_id, "message": text, "metadata": metadata}
            answer = _post(f"{self.url}/webhooks/rest/webhook", body, self.timeout)
        if not isinstance(answer, list):
            raise RasaUnavailable("unexpected REST channel answer")
        return [_bot_message(item) for item in answer if isinstance(item, dict)]

    def _as_rasa_message(self, message: UserMessage) -> tuple[str | None, dict]:
        from bot.engine import EVENT_INTENTS

        metadata = dict(message.metadata)
        if message.event:
            intent = EVENT_INTENTS.get(message.event)
            return (f"/{intent}" if intent else None), metadata
        if message.image is not None:
            metadata["photo_upload"] = self.uploads.park(message.image)
            return "/send_photo", metadata
        return (message.text or "").strip(), metadata


def _bot_message(item: dict) -> BotMessage:
    buttons = tuple(
        Button(str(b.get("title", "")), str(b.get("payload", "")))
        for b in item.get("buttons") or []
        if isinstance(b, dict)
    )
    custom = item.get("custom") if isinstance(item.get("custom"), dict) else None
    return BotMessage(
        text=item.get("text"), buttons=buttons, image=item.get("image"), custom=custom
    )
