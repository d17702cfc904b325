"""转人工：用户要求人工服务时，机器人在该会话里暂停回复，由工作人员接手。

A handoff is open until staff release it. After 24 hours an unreleased handoff no longer
silences the bot (nobody answered — better the bot than silence); the next request for that
conversation closes the stale row (``released_by='expired'``) and opens a fresh one.
One open handoff per conversation is guaranteed by a partial unique index.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.idcard import mask_id_numbers_in_text
from services.models import AuditLog, Handoff, naive_utc

__all__ = [
    "HANDOFF_TTL",
    "current_handoff",
    "is_handed_off",
    "open_handoffs",
    "release",
    "request_handoff",
]

HANDOFF_TTL = dt.timedelta(hours=24)
EXPIRED_BY = "expired"
REASON_MAX_LENGTH = 256  # Handoff.reason


def current_handoff(
    session: Session, conversation_id: str, now: dt.datetime | None = None
) -> Handoff | None:
    """The open handoff of this conversation that still silences the bot, if any."""
    handoff = _open_row(session, conversation_id)
    if handoff is None or _expired(handoff, naive_utc(now)):
        return None
    return handoff


def is_handed_off(session: Session, conversation_id: str, now: dt.datetime | None = None) -> bool:
    """该会话是否正由人工处理（未释放且不满 24 小时）。"""
    return current_handoff(session, conversation_id, now) is not None


def request_handoff(
    session: Session,
    conversation_id: str,
    channel: str,
    reason: str | None,
    *,
    now: dt.datetime | None = None,
) -> Handoff:
    """请求转人工；已有未过期的转人工时原样返回它（幂等）。

    ``reason`` is usually the user's last message; ID numbers in it are masked before storing.
    """
    conversation_id = _conversation_id(conversation_id)
    channel = (channel or "").strip()
    if not channel or len(channel) > 16:
        raise ValueError(f"invalid channel name {channel!r}")
    now = naive_utc(now)
    existing = _open_row(session, conversation_id)
    if existing is not None:
        if not _expired(existing, now):
            return existing
        _close(session, existing, EXPIRED_BY, now)

    handoff = Handoff(
        conversation_id=conversation_id,
        channel=channel,
        requested_at=now,
        reason=_reason(reason),
    )
    try:
        with session.begin_nested():
            session.add(handoff)
    except IntegrityError:
        # Another worker opened one for this conversation at the same moment.
        winner = _open_row(session, conversation_id)
        if winner is None:
            raise
        return winner

    session.add(
        AuditLog(
            at=now,
            actor="bot",
            action="handoff.requested",
            target_type="handoff",
            target_id=str(handoff.id),
            detail={"conversation_id": conversation_id, "channel": channel},
        )
    )
    session.flush()
    return handoff


def release(
    session: Session, conversation_id: str, by: str, *, now: dt.datetime | None = None
) -> bool:
    """工作人员处理完毕，机器人恢复回复。没有未释放的转人工时返回 False。"""
    if not by or not by.strip():
        raise ValueError("release needs the staff username")
    handoff = _open_row(session, _conversation_id(conversation_id))
    if handoff is None:
        return False
    _close(session, handoff, by.strip()[:64], naive_utc(now))
    return True


def open_handoffs(session: Session, now: dt.datetime | None = None) -> list[Handoff]:
    """当前由人工处理的会话（未释放、不满 24 小时），先请求的在前。"""
    cutoff = naive_utc(now) - HANDOFF_TTL
    return list(
        session.scalars(
            select(Handoff)
            .where(Handoff.released_at.is_(None), Handoff.requested_at > cutoff)
            .order_by(Handoff.requested_at, Handoff.id)
        )
    )


def _open_row(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id, Handoff.released_at.is_(None)
        )
    ).one_or_none()


def _close(session: Session, handoff: Handoff, by: str, now: dt.datetime) -> None:
    # Conditional update: two staff pressing "release" at once close it once.
    released_at = min(now, handoff.requested_at + HANDOFF_TTL) if by == EXPIRED_BY else now
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.released_at.is_(None))
        .values(released_at=released_at, released_by=by)
        .execution_options(synchronize_session=False)
    )
    session.refresh(handoff)
    if not result.rowcount:
        return
    session.add(
        AuditLog(
            at=now,
            actor=by if by != EXPIRED_BY else "bot",
            action="handoff.expired" if by == EXPIRED_BY else "handoff.released",
            target_type="handoff",
            target_id=str(handoff.id),
            detail={"conversation_id": handoff.conversation_id, "channel": handoff.channel},
        )
    )
    session.flush()


def _expired(handoff: Handoff, now: dt.datetime) -> bool:
    return handoff.requested_at <= now - HANDOFF_TTL


def _conversation_id(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 128:
        raise ValueError("conversation_id must be 1–128 characters")
    return value


def _reason(text: str | None) -> str | None:
    if text is None:
        return None
    text = mask_id_numbers_in_text(str(text).replace("\x00", "")).strip()
    if len(text) > REASON_MAX_LENGTH:
        text = text[: REASON_MAX_LENGTH - 1] + "…"
    return text or None
