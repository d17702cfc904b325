"""The 48-hour window's bookkeeping: written at most once a minute per sender and process,
and never so that the window would seem to end later than it does."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from channels.inbound import INBOUND_MARK_EVERY, record_inbound
from services.models import ChannelAccount


def last_inbound(runtime, sender: str) -> dt.datetime | None:
    with runtime.database.session() as session:
        query = select(ChannelAccount.last_inbound_at).where(
            ChannelAccount.channel == "wechat", ChannelAccount.external_id == sender
        )
        return session.scalar(query)


def test_inbound_time_is_written_at_most_once_a_minute(chat_app):
    runtime = chat_app.extensions["runtime"]
    sender = "o" + uuid.uuid4().hex[:27]
    first = runtime.clock.now().replace(tzinfo=None)
    record_inbound(runtime, "wechat", sender, first)
    assert last_inbound(runtime, sender) == first

    record_inbound(runtime, "wechat", sender, first + dt.timedelta(seconds=30))
    assert last_inbound(runtime, sender) == first  # older: the window ends earlier, not later

    later = first + INBOUND_MARK_EVERY + dt.timedelta(seconds=1)
    record_inbound(runtime, "wechat", sender, later)
    assert last_inbound(runtime, sender) == later
