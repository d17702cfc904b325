"""消息去重的持久记录：平台消息（微信 MsgId、事件）处理过一次，就永远不再处理。

Redis answers "seen this message?" fast, but forgets everything when it restarts without
persistence; WeChat then re-sends a message it never got an answer for, or a replay arrives,
and the user would be answered twice. A row here (primary key channel + message key) is the
durable answer; rows older than :data:`KEEP_DAYS` are removed by the daily run — WeChat
retries within seconds, and signed requests older than five minutes are refused anyway.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from services.models import ProcessedMessage, naive_utc

KEEP_DAYS = 7


def _insert(session: Session):
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(ProcessedMessage.__table__)


def first_processing(session: Session, channel: str, msg_key: str, now: dt.datetime) -> bool:
    """Claim ``msg_key`` of ``channel``: True the first time ever, False for a repeat.

    On PostgreSQL the transaction commits without waiting for the disk (``synchronous_commit
    off``, this transaction only): a database crash may lose the last fraction of a second of
    rows — a Redis restart, the case this is for, loses none — and a message no longer waits
    for an fsync.
    """
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))
    statement = (
        _insert(session)
        .values(channel=channel, msg_key=msg_key, processed_at=naive_utc(now))
        .on_conflict_do_nothing(index_elements=["channel", "msg_key"])
        .returning(ProcessedMessage.__table__.c.msg_key)
    )
    return session.execute(statement).first() is not None


_CLAIM_SQL = (
    f"INSERT INTO {ProcessedMessage.__tablename__} (channel, msg_key, processed_at)"
    " VALUES (%s, %s, %s) ON CONFLICT (channel, msg_key) DO NOTHING RETURNING msg_key"
)


def claim_first_processing(database, channel: str, msg_key: str, now: dt.datetime) -> bool:
    """:func:`first_processing` in a unit of work of its own — on PostgreSQL in one round trip
    (it runs for every message a webhook accepts)."""
    if database.engine.dialect.name == "postgresql":
        return database.insert_returning(_CLAIM_SQL, (channel, msg_key, naive_utc(now)))
    with database.session() as session:
        return first_processing(session, channel, msg_key, now)


def forget_processed(session: Session, now: dt.datetime, keep_days: int = KEEP_DAYS) -> int:
    """Remove the records older than ``keep_days``; how many went."""
    cutoff = naive_utc(now) - dt.timedelta(days=keep_days)
    result = session.execute(delete(ProcessedMessage).where(ProcessedMessage.processed_at < cutoff))
    return result.rowcount or 0
