"""转人工 from the console's side: the queue by region, take once, answer, release, time out."""

from __future__ import annotations

import datetime as dt

import pytest

from services import handoffs
from services.clock import FrozenClock
from services.handoffs import DutyHours, HandoffPolicy
from services.models import Handoff
from services.outbound import Recipient
from tests.support import make_runtime, make_staff

T0 = dt.datetime(2026, 12, 1, 2, 0)  # Tuesday 10:00 in Beijing
POLICY = HandoffPolicy(wait=dt.timedelta(minutes=30))
USER = "wechat:o-waiting"


def test_duty_hours():
    hours = DutyHours.parse("1-5 08:30-12:00,14:30-17:30")
    assert hours.describe() == "周一至周五 8:30–12:00、14:30–17:30"
    assert hours.on_duty(dt.datetime(2026, 12, 1, 10, 0))  # Tuesday morning, Beijing
    assert not hours.on_duty(dt.datetime(2026, 12, 1, 13, 0))  # lunch
    assert not hours.on_duty(dt.datetime(2026, 12, 5, 10, 0))  # Saturday
    with pytest.raises(ValueError):
        DutyHours.parse("weekdays")


def test_policy_from_settings():
    policy = HandoffPolicy.from_settings(
        {"HANDOFF_WAIT_MINUTES": "5", "STAFF_HOURS": "1-7 00:00-23:59"}
    )
    assert policy.wait == dt.timedelta(minutes=5) and policy.hours.days == tuple(range(1, 8))


def test_queue_shows_the_staff_users_regions_and_unknown_ones(db):
    with db.session() as session:
        xian = make_staff(session, regions=["61"])
        handoffs.request_handoff(
            session, "wechat:a", "wechat", "人工", now=T0, region_code="610102"
        )
        handoffs.request_handoff(
            session, "wechat:b", "wechat", "人工", now=T0, region_code="450103"
        )
        handoffs.request_handoff(session, "wechat:c", "wechat", "人工", now=T0)
        queue = handoffs.staff_queue(session, xian, POLICY, now=T0 + dt.timedelta(minutes=1))
        assert [h.conversation_id for h in queue] == ["wechat:a", "wechat:c"]


def test_take_answer_release(db):
    runtime = make_runtime(db)
    with db.session() as session:
        first, second = make_staff(session, "wang"), make_staff(session, "zhao")
        handoff = handoffs.request_handoff(
            session,
            USER,
            "wechat",
            "人工",
            now=T0,
            region_code="610102",
            transcript=[
                ("user", "我的身份证610102195203150020怎么查不到"),
                ("bot", "没有查到您的记录"),
            ],
        )
        handoffs.take(session, first, handoff.public_id, now=T0)
        with pytest.raises(handoffs.AlreadyTaken, match="wang"):
            handoffs.take(session, second, handoff.public_id, now=T0)
        with pytest.raises(handoffs.AlreadyTaken):
            handoffs.staff_reply(session, second, handoff.public_id, "我来", now=T0)
        reply = handoffs.staff_reply(
            session, first, handoff.public_id, "您好，我帮您查一下", now=T0
        )
        released = handoffs.staff_release(session, first, handoff.public_id, now=T0)
        texts = [m.text for m in session.get(Handoff, handoff.id).messages]
    assert "610102195203150020" not in " ".join(texts) and "6101**********0020" in texts[0]
    assert texts[2] == "您好，我帮您查一下"
    from services.notifications import enqueue_notice

    enqueue_notice(runtime, reply)
    enqueue_notice(runtime, released)
    told = runtime.extensions["collected"].texts_for(Recipient("wechat", "o-waiting"))
    assert told[0] == "【人工客服】您好，我帮您查一下" and "人工服务已结束" in told[1]
    with db.session() as session:
        assert not handoffs.is_handed_off(session, USER, T0)


def test_an_untaken_request_times_out_and_the_user_is_told(db):
    clock = FrozenClock("2026-12-01 10:00")
    runtime = make_runtime(db, clock)
    runtime.config = {"HANDOFF_WAIT_MINUTES": 30}
    with db.session() as session:
        handoffs.request_handoff(session, USER, "wechat", "人工", now=clock.utcnow())
    clock.advance(minutes=29)
    assert handoffs.expire_waiting_handoffs(runtime) == 0
    clock.advance(minutes=2)
    assert handoffs.expire_waiting_handoffs(runtime) == 1
    assert handoffs.expire_waiting_handoffs(runtime) == 0  # told once
    told = runtime.extensions["collected"].texts_for(Recipient("wechat", "o-waiting"))
    assert len(told) == 1 and "没有工作人员能接手" in told[0] and "12333" in told[0]
    with db.session() as session:
        assert not handoffs.is_handed_off(session, USER, clock.utcnow())


def test_a_taken_request_does_not_time_out(db):
    with db.session() as session:
        officer = make_staff(session)
        handoff = handoffs.request_handoff(session, USER, "wechat", "人工", now=T0)
        handoffs.take(session, officer, handoff.public_id, now=T0 + dt.timedelta(minutes=10))
        later = T0 + dt.timedelta(hours=2)
        assert handoffs.expire_waiting(session, POLICY, now=later) == []
        assert handoffs.is_handed_off(session, USER, later, wait=POLICY.wait)


def test_leaving_the_queue(db):
    with db.session() as session:
        handoff = handoffs.request_handoff(session, USER, "wechat", "人工", now=T0)
        assert handoffs.leave_queue(session, handoff, now=T0)
        assert handoff.released_by == "user"
        with pytest.raises(handoffs.HandoffClosed):
            handoffs.take(session, make_staff(session), handoff.public_id, now=T0)
