"""What goes into the dialogue and what comes out of it — the same for both engines.

A channel's :class:`UserMessage` becomes one Rasa message (a text and its metadata): platform
events and photos become ``/intent`` payloads, overlong text is cut, and a number or a button's
title typed back (WeChat and Alipay show buttons as numbered lines) becomes that button's
payload. A Rasa response (from the domain, an action, or a Rasa server's REST channel) becomes
one :class:`BotMessage`, its ``custom.link`` a link. The embedded engine and the Rasa engine
both call these, so a user cannot tell which one answered.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from bot.domain import Domain
from bot.messages import BotMessage, Button, UserMessage
from bot.uploads import ParkingFull, UploadParking

log = logging.getLogger(__name__)

MAX_TEXT = 2000  # longer messages are cut: nobody types more, a script might
EVENT_INTENTS = {
    "subscribe": "greet",
    "menu:CERTIFY": "start_certification",
    "menu:STATUS": "check_status",
    "menu:FAQ": "faq_menu",
    "menu:RELATIVE": "certify_for_relative",
}


@dataclass(frozen=True)
class RasaMessage:
    """What Rasa's ``UserMessage`` carries: the text (or ``/intent`` payload) and metadata."""

    text: str
    metadata: dict


def rasa_message(
    message: UserMessage, uploads: UploadParking | None, last_buttons: list[dict]
) -> RasaMessage | None:
    """The message as Rasa should see it; None for an event the dialogue ignores.

    ``uploads`` None: a photo is not kept (nothing would claim it), only that one came.
    """
    metadata = dict(message.metadata)
    if message.event:
        intent = EVENT_INTENTS.get(message.event)
        return RasaMessage(f"/{intent}", metadata) if intent else None
    if message.image is not None:
        # Only a random token travels with the message; the action claims the bytes.
        if uploads is not None:
            try:
                metadata["photo_upload"] = uploads.park(message.image)
            except ParkingFull as full:  # the action asks for the photo again
                log.warning("photo not kept: %s", full)
        return RasaMessage("/send_photo", metadata)
    text = (message.text or "").strip()[:MAX_TEXT]
    return RasaMessage(chosen_button(text, last_buttons) or text, metadata)


def chosen_button(text: str, buttons: list[dict]) -> str | None:
    """The payload of the button the user meant by typing its number ("2") or its title.

    A title of the main menu ("常见问题", "我要认证") works even when no buttons were shown
    yet — the first message — or when the menu was offered several messages ago.
    """
    typed = text.strip().strip(_TRAILING).strip()
    if typed.isdigit() and 1 <= int(typed) <= len(buttons):
        return buttons[int(typed) - 1]["payload"]
    return next((b["payload"] for b in (*buttons, *menu_buttons()) if b["title"] == typed), None)


_TRAILING = "。.，,！!？?~～ \u3000"
MENU_RESPONSES = ("utter_greet", "utter_what_next")  # nlu/domain/base.yml: the main menu


@functools.cache
def menu_buttons() -> tuple[dict, ...]:
    """The main menu's buttons, as the domain's menu responses offer them."""
    domain = Domain.load()
    found: dict[str, dict] = {}
    for name in MENU_RESPONSES:
        for variant in domain.responses.get(name, []):
            for button in variant.get("buttons") or []:
                found.setdefault(
                    str(button["title"]),
                    {"title": str(button["title"]), "payload": str(button["payload"])},
                )
    return tuple(found.values())


def buttons_offered(messages: list[BotMessage]) -> list[dict]:
    """The buttons a typed number refers to next turn: those of the last message that had any."""
    for message in reversed(messages):
        if message.buttons:
            return [{"title": b.title, "payload": b.payload} for b in message.buttons]
    return []


def bot_message(response: dict, text: str | None = None) -> BotMessage:
    """One Rasa response (``text``, ``buttons``, ``image``, ``custom``) as a BotMessage.

    ``text`` replaces the response's text (the embedded engine fills slots into it first). A
    link travels as ``custom.link``, Rasa's way for what its REST channel has no field for.
    """
    buttons = tuple(
        Button(str(b.get("title", "")), str(b.get("payload", "")))
        for b in response.get("buttons") or []
        if isinstance(b, dict)
    )
    custom = response.get("custom") or response.get("json_message")
    custom = dict(custom) if isinstance(custom, dict) else {}
    link = custom.pop("link", None)
    return BotMessage(
        text=response.get("text") if text is None else text,
        buttons=buttons,
        image=response.get("image"),
        link=str(link) if link else None,
        custom=custom or None,
    )
