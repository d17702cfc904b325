"""渠道账号与参保人绑定：一个微信/支付宝账号可以替自己和家人认证，最多 4 位参保人。

The limit comes from the Guangxi notice (每个手机号最多可绑定4位参保人) and lives in
``bind_limit`` of the region data file (:func:`bind_limit`). Binding changes are written to the audit log:
they decide whose case an account may see.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.models import (
    AuditLog,
    Binding,
    ChannelAccount,
    HomeVisitRequest,
    Person,
    PhotoReview,
    naive_utc,
)
from services.regions import policy_for

__all__ = [
    "BindingLimitReached",
    "account_for",
    "actor_for",
    "bind_limit",
    "bind_person",
    "bindings_of",
    "bound_people",
    "note_inbound",
    "remove_idle_accounts",
    "unbind",
]

# Senders a client chooses (REST) or the server hands out per browser (web chat): one row each,
# worth keeping only while it binds someone or a request refers to it.
CLIENT_CHOSEN_CHANNELS = ("rest", "web")

RELATION_MAX_LENGTH = 16  # Binding.relation


class BindingLimitReached(Exception):
    """已绑定满 4 位参保人，不能再绑定新的人；``bound`` 是已绑定的 (参保人, 关系) 列表。"""

    def __init__(self, bound: list[tuple[Person, str]], limit: int):
        self.bound = bound
        self.limit = limit
        super().__init__(
            f"每个账号最多可为{limit}位参保人认证，已经绑定了{len(bound)}位，请先解除其中一位再绑定"
        )


def bind_limit() -> int:
    """How many people one account may certify for (the region data's ``bind_limit``)."""
    return policy_for(None).bind_limit


def actor_for(account: ChannelAccount | None) -> str:
    """Audit-log actor for something a channel user did: ``wechat#12``, or ``bot`` if unknown.

    The account id, not the platform's openid: short, stable and not an identifier that
    means anything outside this database.
    """
    if account is None:
        return "bot"
    return f"{account.channel}#{account.id}"


def account_for(
    session: Session,
    channel: str,
    external_id: str,
    *,
    inbound: bool = False,
    now: dt.datetime | None = None,
) -> ChannelAccount:
    """取得或创建某渠道用户的账号；``inbound=True`` 时记下最近一次来消息的时间。

    Safe under concurrency: the insert runs in a savepoint and a lost race (unique
    constraint on channel + external_id) re-reads the winner's row.
    """
    channel = (channel or "").strip()
    external_id = (external_id or "").strip()
    if not channel or len(channel) > 16:
        raise ValueError(f"invalid channel name {channel!r}")
    if not external_id or len(external_id) > 128:
        raise ValueError("external_id must be 1–128 characters")

    query = select(ChannelAccount).where(
        ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
    )
    account = session.scalars(query).one_or_none()
    if account is None:
        try:
            with session.begin_nested():
                account = ChannelAccount(channel=channel, external_id=external_id)
                session.add(account)
        except IntegrityError:
            account = session.scalars(query).one()
    if inbound:
        account.last_inbound_at = naive_utc(now)
        session.flush()
    return account


def note_inbound(database, channel: str, external_id: str, now: dt.datetime) -> None:
    """记下该渠道用户最近一次来消息的时间（第一次来消息时建账号）。

    One statement on :meth:`services.db.Database.quick` for an account that exists — this
    runs on the message path; a database crash losing the newest time only ends the 48-hour
    window for customer-service messages early (a template instead)."""
    statement = (
        update(ChannelAccount)
        .where(ChannelAccount.channel == channel, ChannelAccount.external_id == external_id)
        .values(last_inbound_at=naive_utc(now))
    )
    with database.quick() as connection:
        if connection.execute(statement).rowcount:
            return
    with database.session() as session:
        account_for(session, channel, external_id, inbound=True, now=now)


def bindings_of(database, channel: str, external_id: str) -> list[tuple[str, str, str | None]]:
    """该渠道用户绑定的参保人：(参保号, 关系, 地区代码)，按绑定先后排列 — one lookup, no
    account created (:func:`bound_people` for the people themselves)."""
    query = (
        select(Person.person_no, Binding.relation, Person.region_code)
        .join(Binding, Binding.person_id == Person.id)
        .join(ChannelAccount, ChannelAccount.id == Binding.account_id)
        .where(ChannelAccount.channel == channel, ChannelAccount.external_id == external_id)
        .order_by(Binding.created_at, Binding.id)
    )
    with database.quick() as connection:
        return [tuple(row) for row in connection.execute(query)]


def bound_people(session: Session, account: ChannelAccount) -> list[tuple[Person, str]]:
    """该账号绑定的参保人及关系，按绑定先后排列。"""
    rows = session.execute(
        select(Person, Binding.relation)
        .join(Binding, Binding.person_id == Person.id)
        .where(Binding.account_id == account.id)
        .order_by(Binding.created_at, Binding.id)
    ).all()
    return [(person, relation) for person, relation in rows]


def bind_person(
    session: Session, account: ChannelAccount, person: Person, relation: str
) -> Binding:
    """把参保人绑定到账号（关系如 'self'、妈妈、岳母）。

    Binding someone already bound only updates the relation. A new person beyond
    :func:`bind_limit` raises :class:`BindingLimitReached`. The account row is
    locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers) so two
    concurrent binds cannot both take the last place.
    """
    relation = (relation or "").strip()
    if not relation:
        raise ValueError("relation is required ('self', 妈妈, …)")
    if len(relation) > RELATION_MAX_LENGTH:
        raise ValueError(f"relation is longer than {RELATION_MAX_LENGTH} characters")

    session.flush()  # account and person need their ids
    session.execute(
        select(ChannelAccount.id).where(ChannelAccount.id == account.id).with_for_update()
    )
    binding = session.scalars(
        select(Binding).where(Binding.account_id == account.id, Binding.person_id == person.id)
    ).one_or_none()
    if binding is not None:
        if binding.relation != relation:
            binding.relation = relation
            session.flush()
        return binding

    bound = bound_people(session, account)
    limit = bind_limit()
    if len(bound) >= limit:
        raise BindingLimitReached(bound, limit)

    binding = Binding(account_id=account.id, person_id=person.id, relation=relation)
    session.add(binding)
    session.flush()
    _audit(session, account, "binding.created", person, relation)
    return binding


def unbind(session: Session, account: ChannelAccount, person: Person) -> bool:
    """解除绑定；原来没有绑定时返回 False。"""
    result = session.execute(
        delete(Binding).where(Binding.account_id == account.id, Binding.person_id == person.id)
    )
    if not result.rowcount:
        return False
    session.expire(account, ["bindings"])
    session.expire(person, ["bindings"])
    _audit(session, account, "binding.removed", person, None)
    return True


def remove_idle_accounts(session: Session, now: dt.datetime, older_than: dt.timedelta) -> int:
    """删除长期不用、没有绑定任何人的 REST / 网页聊天账号；返回删除的个数。

    Every new REST sender (and every web-chat conversation) gets a row; without this they
    would pile up for ever. Rows that bind a person, or that a home visit or a photo review
    refers to, stay.
    """
    cutoff = naive_utc(now) - older_than
    last_seen = func.coalesce(ChannelAccount.last_inbound_at, ChannelAccount.created_at)
    referred = [
        select(Binding.account_id).where(Binding.account_id.is_not(None)),
        select(HomeVisitRequest.account_id).where(HomeVisitRequest.account_id.is_not(None)),
        select(PhotoReview.account_id).where(PhotoReview.account_id.is_not(None)),
    ]
    query = delete(ChannelAccount).where(
        ChannelAccount.channel.in_(CLIENT_CHOSEN_CHANNELS),
        last_seen < cutoff,
        *(ChannelAccount.id.not_in(ids) for ids in referred),
    )
    return session.execute(query.execution_options(synchronize_session=False)).rowcount


def _audit(
    session: Session, account: ChannelAccount, action: str, person: Person, relation: str | None
) -> None:
    detail = {"account_id": account.id, "person_id": person.id}
    if relation is not None:
        detail["relation"] = relation
    session.add(
        AuditLog(
            actor=actor_for(account),
            action=action,
            target_type="person",
            target_id=str(person.id),
            detail=detail,
        )
    )
    session.flush()
