"""对外发消息的端口：领域层说"告诉这个人"，由各渠道去送达。

``services/`` knows no platform. When a review is decided, a face check passes or a reminder
falls due, the domain builds channel-neutral :class:`BotMessage` s and hands them to an
:class:`Outbound` port for a :class:`Recipient` (a channel account). Each channel implements
the port its own way — WeChat customer-service message with the template fallback, Alipay
custom send, the web chat's inbox — and the composition root registers them in one
:class:`OutboundRouter`. Tests register a collecting port.

Whom to tell about a person: every account bound to them (the person themself, or the
relatives who certify for them), most recently active first — see :func:`recipients_for`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Binding, ChannelAccount, Person

__all__ = [
    "BotMessage",
    "Button",
    "CollectingOutbound",
    "NoRoute",
    "Outbound",
    "OutboundRouter",
    "Recipient",
    "recipients_by_person",
    "recipients_for",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str  # "/intent" or '/intent{"slot": "value"}' as in Rasa, or plain text


@dataclass(frozen=True)
class BotMessage:
    """One message to a person: text, buttons, an image or a link — any platform renders it."""

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
        """For channels without buttons (WeChat, Alipay text): numbered options to type back."""
        lines = [self.text or ""]
        lines += [f"{n}. {b.title}" for n, b in enumerate(self.buttons, start=1)]
        if self.link:
            lines.append(self.link)
        return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Recipient:
    """A channel account: ``("wechat", openid)``, ``("alipay", user id)``, ``("web", sender)``."""

    channel: str
    external_id: str

    @classmethod
    def of(cls, account: ChannelAccount) -> Recipient:
        return cls(account.channel, account.external_id)

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}:{self.external_id}"


class Outbound(Protocol):
    """What a channel implements: deliver these messages to this account now (may raise)."""

    def deliver(self, recipient: Recipient, messages: Sequence[BotMessage]) -> None: ...


class NoRoute(LookupError):
    """No channel is configured for the recipient's platform."""


class OutboundRouter:
    """The one port the domain sees: picks the channel's implementation by ``channel``."""

    def __init__(self, routes: Mapping[str, Outbound] | None = None):
        self.routes: dict[str, Outbound] = dict(routes or {})

    def register(self, channel: str, port: Outbound) -> None:
        self.routes[channel] = port

    def can_reach(self, recipient: Recipient) -> bool:
        return recipient.channel in self.routes

    def deliver(self, recipient: Recipient, messages: Sequence[BotMessage]) -> None:
        port = self.routes.get(recipient.channel)
        if port is None:
            raise NoRoute(f"no outbound channel for {recipient.channel!r}")
        port.deliver(recipient, list(messages))


@dataclass
class CollectingOutbound:
    """Keeps what it was asked to send (Rasa's ``CollectingOutputChannel``): the shell, tests."""

    sent: list[tuple[Recipient, list[BotMessage]]] = field(default_factory=list)

    def deliver(self, recipient: Recipient, messages: Sequence[BotMessage]) -> None:
        self.sent.append((recipient, list(messages)))

    def texts_for(self, recipient: Recipient) -> list[str]:
        return [m.as_plain_text() for r, batch in self.sent if r == recipient for m in batch]


def recipients_for(session: Session, person: Person) -> list[Recipient]:
    """Every account bound to ``person`` (themself or a relative), most recently active first."""
    accounts = session.scalars(
        select(ChannelAccount)
        .join(Binding, Binding.account_id == ChannelAccount.id)
        .where(Binding.person_id == person.id)
        .order_by(ChannelAccount.last_inbound_at.desc().nulls_last(), ChannelAccount.id)
    ).all()
    return [Recipient.of(account) for account in accounts]


def recipients_by_person(session: Session, person_ids: Sequence[int]) -> dict[int, list[Recipient]]:
    """:func:`recipients_for` for many people in one query (the daily run's reminders)."""
    found: dict[int, list[Recipient]] = {}
    if not person_ids:
        return found
    rows = session.execute(
        select(Binding.person_id, ChannelAccount.channel, ChannelAccount.external_id)
        .join(ChannelAccount, Binding.account_id == ChannelAccount.id)
        .where(Binding.person_id.in_(list(person_ids)))
        .order_by(ChannelAccount.last_inbound_at.desc().nulls_last(), ChannelAccount.id)
    )
    for person_id, channel, external_id in rows:
        found.setdefault(person_id, []).append(Recipient(channel, external_id))
    return found
