"""时钟：整个服务唯一的"今天"和"现在"。

What a person sees is dated in Asia/Shanghai (a certification made at 00:30 Beijing time on
1 January belongs to the new year, although it is still 31 December in UTC); the database
keeps naive UTC (:func:`services.models.naive_utc`). Every layer asks a :class:`Clock` —
never ``date.today()`` — so tests and the demo roster can freeze or move it::

    clock = FrozenClock("2026-12-01 09:00")
    clock.today()        # date(2026, 12, 1), Beijing time
    clock.advance(days=1)
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["SHANGHAI", "Clock", "FrozenClock", "SystemClock", "in_shanghai", "system_clock"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """The time as users see it; subclasses say where "now" comes from."""

    def now(self) -> dt.datetime:
        """Aware, in Asia/Shanghai."""
        raise NotImplementedError

    def today(self) -> dt.date:
        return self.now().date()

    def utcnow(self) -> dt.datetime:
        """Naive UTC, the way the database stores moments."""
        return self.now().astimezone(dt.UTC).replace(tzinfo=None)


class SystemClock(Clock):
    def now(self) -> dt.datetime:
        return dt.datetime.now(SHANGHAI)


class FrozenClock(Clock):
    """A clock that stands still until it is moved (tests, simulations, the demo roster)."""

    def __init__(self, moment: dt.datetime | dt.date | str):
        self.set(moment)

    def set(self, moment: dt.datetime | dt.date | str) -> None:
        self._now = in_shanghai(moment)

    def advance(self, **delta: float) -> dt.datetime:
        """Move forward by ``timedelta(**delta)`` and return the new moment."""
        self._now += dt.timedelta(**delta)
        return self._now

    def now(self) -> dt.datetime:
        return self._now


def in_shanghai(moment: dt.datetime | dt.date | str) -> dt.datetime:
    """A date is its 09:00 in Beijing (office hours); a naive datetime is Beijing time."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time(9, 0))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI)


system_clock = SystemClock()
