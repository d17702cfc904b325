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


# One statement both PostgreSQL and SQLite (≥ 3.35) read; text, because building the dialect's
# insert construct each time costs more than the round trip.
_CLAIM = text(
    f"INSERT INTO {ProcessedMessage.__tablename__} (channel, msg_key, processed_at)"
    " VALUES (:channel, :msg_key, :processed_at)"
    " ON CONFLICT (channel, msg_key) DO NOTHING RETURNING msg_key"
)


def first_processing(database, channel: str, msg_key: str, now: dt.datetime) -> bool:
    """Claim ``msg_key`` of ``channel``: True the first time ever, False for a repeat.

    One statement on :meth:`services.db.Database.quick` (it runs for every message a webhook
    accepts): on PostgreSQL the commit does not wait for the disk — a database crash may lose
    the last fraction of a second of rows; a Redis restart, the case this is for, loses none.
    """
    values = {"channel": channel, "msg_key": msg_key, "processed_at": naive_utc(now)}
    with database.quick() as connection:
        return connection.execute(_CLAIM, values).first() is not None


def forget_processed(session: Session, now: dt.datetime, keep_days: int = KEEP_DAYS) -> int:
    """Remove the records older than ``keep_days``; how many went."""
    cutoff = naive_utc(now) - dt.timedelta(days=keep_days)
    result = session.execute(delete(ProcessedMessage).where(ProcessedMessage.processed_at < cutoff))
    return result.rowcount or 0
