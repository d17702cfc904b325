"""Channel-neutral messages: what a channel hands the dialogue engine and what it gets back.

Channels turn a platform request into one :class:`UserMessage` and render each
:class:`BotMessage` the platform's way (WeChat XML / customer-service JSON, Alipay custom
send, REST JSON) — Rasa's ``UserMessage`` / ``OutputChannel`` split, kept small.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Button:
    title: str
    payload: str  # "/intent" or '/intent{"slot": "value"}' as in Rasa, or plain text


@dataclass(frozen=True)
class UserMessage:
    """One thing a user did: text, a photo, or a platform event (subscribe, menu click)."""

    sender: str  # the platform's user id (openid, Alipay user id, REST sender)
    channel: str  # rest | wechat | alipay | web | shell
    text: str | None = None
    image: bytes | None = None  # a downloaded photo, for manual review
    event: str | None = None  # subscribe | unsubscribe | menu:<KEY>
    metadata: dict = field(default_factory=dict)  # region, message id, …

    @property
    def conversation_id(self) -> str:
        """Senders are unique per channel only: one WeChat openid may equal a REST sender."""
        return f"{self.channel}:{self.sender}"


@dataclass(frozen=True)
class BotMessage:
    text: str | None = None
    buttons: tuple[Button, ...] = ()
    image: str | None = None  # URL
    link: str | None = None  # URL
    custom: dict | None = None

    def to_rest(self, recipient_id: str) -> dict:
        """Rasa REST channel shape: ``{"recipient_id", "text", "buttons", "image", "custom"}``."""
        body: dict = {"recipient_id": recipient_id}
        if self.text is not None:
            body["text"] = self.text
        if self.buttons:
            body["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.image:
            body["image"] = self.image
        if self.link:
            body["custom"] = {"link": self.link, **(self.custom or {})}
        elif self.custom:
            body["custom"] = self.custom
        return body

    def as_plain_text(self) -> str:
        """For channels without buttons (WeChat text): numbered options the user can type."""
        lines = [self.text or ""]
        lines += [f"{n}. {b.title}" for n, b in enumerate(self.buttons, start=1)]
        if self.link:
            lines.append(self.link)
        return "\n".join(line for line in lines if line)
