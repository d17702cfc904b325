"""Channel-neutral messages: what a channel hands the dialogue engine and what it gets back.

Channels turn a platform request into one :class:`UserMessage` and render each
:class:`BotMessage` the platform's way (WeChat XML / customer-service JSON, Alipay custom
send, REST JSON) — Rasa's ``UserMessage`` / ``OutputChannel`` split, kept small. The replies
are the outbound port's messages (:mod:`services.outbound`): what the dialogue says in a turn
and what the domain later tells a person are the same kind of thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.outbound import BotMessage, Button

__all__ = ["BotMessage", "Button", "UserMessage"]


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
