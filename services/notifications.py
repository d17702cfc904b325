"""告诉参保人（或替他认证的家属）：审核结果、刷脸结果、提醒——经由对外发消息端口。

These are job functions (``runtime.jobs.enqueue(tell_account, …)``): sending reaches a
platform's API and must never run inside a webhook or a console request. A person with no
reachable account is logged, not an error: staff see it in the console, the unit informs them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.models import ChannelAccount, Person
from services.outbound import BotMessage, Recipient, recipients_for
from services.runtime import Runtime

__all__ = ["Notice", "enqueue_notice", "tell_account", "tell_conversation", "tell_person", "texts"]

log = logging.getLogger(__name__)


def texts(*lines: str) -> list[BotMessage]:
    """Plain text messages, one per argument."""
    return [BotMessage(text=line) for line in lines if line]


def tell_account(runtime: Runtime, account_id: int, messages: Sequence[BotMessage]) -> bool:
    """Job: deliver to one channel account (the one that sent the photo, asked for the visit)."""
    with runtime.database.session() as session:
        account = session.get(ChannelAccount, account_id)
        recipient = Recipient.of(account) if account else None
    if recipient is None or not runtime.outbound.can_reach(recipient):
        log.warning("account #%s cannot be reached; nothing sent", account_id)
        return False
    runtime.outbound.deliver(recipient, messages)
    return True


def tell_person(runtime: Runtime, person_id: int, messages: Sequence[BotMessage]) -> int:
    """Job: deliver to every reachable account bound to the person; returns how many."""
    with runtime.database.session() as session:
        person = session.get(Person, person_id)
        recipients = recipients_for(session, person) if person else []
    reachable = [r for r in recipients if runtime.outbound.can_reach(r)]
    if not reachable:
        log.warning("person #%s has no reachable account; nothing sent", person_id)
    for recipient in reachable:
        runtime.outbound.deliver(recipient, messages)
    return len(reachable)


def tell_conversation(
    runtime: Runtime, conversation_id: str, messages: Sequence[BotMessage]
) -> bool:
    """Job: deliver into a conversation ``"<channel>:<external id>"`` (a staff reply to a handoff)."""
    channel, _, external_id = (conversation_id or "").partition(":")
    if not channel or not external_id:
        log.warning("conversation id without a channel; nothing sent")
        return False
    recipient = Recipient(channel, external_id)
    if not runtime.outbound.can_reach(recipient):
        log.warning("no outbound channel for %s; nothing sent", channel)
        return False
    runtime.outbound.deliver(recipient, messages)
    return True


@dataclass(frozen=True)
class Notice:
    """Whom to tell what, decided inside a transaction and sent after it commits.

    Exactly one of ``account_id`` (the account that sent the photo or asked for the visit),
    ``person_id`` (every account bound to the person) or ``conversation_id`` is set.
    """

    messages: tuple[BotMessage, ...]
    account_id: int | None = None
    person_id: int | None = None
    conversation_id: str | None = None


def enqueue_notice(runtime: Runtime, notice: Notice | None):
    """Queue the job that delivers ``notice`` (call it after the commit)."""
    if notice is None or not notice.messages:
        return None
    messages = list(notice.messages)
    if runtime.jobs is None:
        raise RuntimeError("the runtime has no job queue")
    if notice.account_id is not None:
        return runtime.jobs.enqueue(tell_account, notice.account_id, messages)
    if notice.person_id is not None:
        return runtime.jobs.enqueue(tell_person, notice.person_id, messages)
    if notice.conversation_id is not None:
        return runtime.jobs.enqueue(tell_conversation, notice.conversation_id, messages)
    return None
