"""The clock: Beijing's date for what users see, naive UTC for the database."""

from __future__ import annotations

import datetime as dt

from services.clock import SHANGHAI, FrozenClock, SystemClock, in_shanghai


def test_just_after_midnight_in_beijing_is_already_the_new_year():
    clock = FrozenClock(dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))  # 00:30 in Beijing
    assert clock.today() == dt.date(2027, 1, 1)
    assert clock.utcnow() == dt.datetime(2026, 12, 31, 16, 30)  # what the database keeps


def test_a_date_or_a_naive_moment_is_read_as_beijing_time():
    assert FrozenClock(dt.date(2026, 3, 1)).now() == dt.datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)
    assert in_shanghai(dt.datetime(2026, 3, 1, 23, 0)).date() == dt.date(2026, 3, 1)


def test_a_frozen_clock_moves_only_when_told():
    clock = FrozenClock("2028-02-28 23:00")
    assert clock.today() == dt.date(2028, 2, 28)
    clock.advance(hours=2)
    assert clock.today() == dt.date(2028, 2, 29)
    assert clock.today() == dt.date(2028, 2, 29)


def test_the_system_clock_is_aware_and_in_beijing():
    now = SystemClock().now()
    assert now.utcoffset() == dt.timedelta(hours=8)
