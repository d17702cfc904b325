"""Home visits from the console: assign, schedule, record the outcome, tell the requester."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from services import visits
from services.accounts import account_for
from services.home_visits import request_home_visit
from services.models import CertificationRecord, PaymentStatus, PaymentStatusChange, Person
from services.notifications import enqueue_notice
from services.outbound import Recipient
from tests.support import make_person, make_runtime, make_staff

NOW = dt.datetime(2026, 12, 1, 2, 0)
LOCAL = dt.datetime(2026, 12, 1, 10, 0)
TODAY = LOCAL.date()
SON = Recipient("wechat", "o-son")


def visit_for(session, person):
    account = account_for(session, "wechat", "o-son")
    return request_home_visit(
        session,
        person=person,
        account=account,
        address="新城区长乐路1号",
        contact_phone="13912345678",
        reason="卧床",
        now=NOW - dt.timedelta(days=2),
    )


def test_list_by_region_and_state(db):
    with db.session() as session:
        xian = make_staff(session, regions=["61"])
        visit_for(session, make_person(session, seq=3, region_code="610102"))
        visit_for(session, make_person(session, seq=4, region_code="450103"))
        assert [row.person.region_code for row in visits.list_visits(session, xian)] == ["610102"]
        assert visits.list_visits(session, xian, state="scheduled") == []


def test_schedule_then_alive_is_a_home_visit_certification(db):
    runtime = make_runtime(db)
    with db.session() as session:
        officer = make_staff(session)
        make_staff(session, "zhao")
        person = make_person(session, seq=3, last_certified_on=dt.date(2025, 3, 1))
        visit = visit_for(session, person)
        visits.assign(session, officer, visit.public_id, "zhao")
        notice = visits.schedule(
            session, officer, visit.public_id, dt.date(2026, 12, 3), today=TODAY, note="先打电话"
        )
        assert visit.status == "scheduled" and visit.assigned_to == "zhao"
    enqueue_notice(runtime, notice)
    with db.session() as session:
        notice = visits.record_outcome(
            session, officer, visit.public_id, "alive", local_now=LOCAL, note="本人健在", now=NOW
        )
    enqueue_notice(runtime, notice)
    with db.session() as session:
        record = session.scalars(select(CertificationRecord)).one()
        assert record.method == "home_visit" and record.operator == "li"
        assert session.get(Person, person.id).last_certified_on == TODAY
    told = runtime.extensions["collected"].texts_for(SON)
    assert "2026年12月3日" in told[0] and "认证通过" in told[1]


def test_deceased_stops_payment_from_the_next_month(db):
    runtime = make_runtime(db)
    with db.session() as session:
        officer = make_staff(session)
        person = make_person(session, seq=3)
        visit = visit_for(session, person)
        with pytest.raises(visits.VisitError, match="死亡日期"):
            visits.record_outcome(session, officer, visit.public_id, "deceased", local_now=LOCAL)
        with pytest.raises(visits.VisitError, match="晚于今天"):
            visits.record_outcome(
                session,
                officer,
                visit.public_id,
                "deceased",
                local_now=LOCAL,
                deceased_on=TODAY + dt.timedelta(days=1),
            )
        notice = visits.record_outcome(
            session,
            officer,
            visit.public_id,
            "deceased",
            local_now=LOCAL,
            deceased_on=dt.date(2026, 10, 17),
            now=NOW,
        )
    enqueue_notice(runtime, notice)
    with db.session() as session:
        assert session.get(Person, person.id).status == PaymentStatus.stopped
        change = session.scalars(select(PaymentStatusChange)).one()
        assert change.status == "stopped" and change.effective_on == dt.date(2026, 11, 1)
        with pytest.raises(visits.VisitError, match="办结"):
            visits.record_outcome(session, officer, visit.public_id, "alive", local_now=LOCAL)
    assert "2026年11月起停发" in runtime.extensions["collected"].texts_for(SON)[0]


def test_not_found_stays_pending_with_a_note(db):
    with db.session() as session:
        officer = make_staff(session)
        visit = visit_for(session, make_person(session, seq=3))
        visits.schedule(session, officer, visit.public_id, TODAY, today=TODAY)
        visits.record_outcome(
            session, officer, visit.public_id, "not_found", local_now=LOCAL, note="家中无人"
        )
        assert visit.status == "requested" and visit.outcome == "not_found"
        assert "家中无人" in visit.staff_note
        assert [row.visit.id for row in visits.list_visits(session, officer)] == [visit.id]


def test_another_region_and_bad_input(db):
    with db.session() as session:
        guangxi = make_staff(session, "gx", regions=["45"])
        officer = make_staff(session)
        visit = visit_for(session, make_person(session, seq=3))
        with pytest.raises(visits.VisitNotFound):
            visits.schedule(session, guangxi, visit.public_id, TODAY, today=TODAY)
        with pytest.raises(visits.VisitError, match="不负责"):
            visits.assign(session, officer, visit.public_id, "gx")
        with pytest.raises(visits.VisitError, match="早于今天"):
            visits.schedule(
                session, officer, visit.public_id, TODAY - dt.timedelta(days=1), today=TODAY
            )
        with pytest.raises(visits.VisitError):
            visits.record_outcome(session, officer, visit.public_id, "maybe", local_now=LOCAL)
