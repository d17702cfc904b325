"""Home-visit requests: references, validation, audit, concurrency."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from sqlalchemy import select

from services.accounts import account_for
from services.home_visits import (
    InvalidHomeVisitRequest,
    normalise_phone,
    pending_home_visits,
    request_home_visit,
)
from services.models import AuditLog, HomeVisitRequest, Person
from tests.support import make_person

NOON = dt.datetime(2026, 11, 23, 4, 0)  # 12:00 in Beijing


def submit(session, **overrides):
    values = {
        "person": None,
        "account": None,
        "address": "西安市新城区长乐中路12号3单元501",
        "contact_phone": "13912345678",
        "reason": "卧床不能出门",
        "now": NOON,
    }
    values.update(overrides)
    return request_home_visit(session, **values)


def test_reference_is_date_and_daily_sequence(db):
    with db.session() as session:
        person = make_person(session)
        account = account_for(session, "wechat", "o-son")
        first = submit(session, person=person, account=account)
        second = submit(session, person=person)
        assert re.fullmatch(r"SM\d{8}-\d{4}", first.reference)
        assert first.reference == "SM20261123-0001"
        assert second.reference == "SM20261123-0002"
        assert first.status == "requested"
        assert first.person_id == person.id and first.account_id == account.id
        assert first.created_at == NOON


def test_reference_uses_the_beijing_date_and_restarts_each_day(db):
    with db.session() as session:
        submit(session)
        late = submit(session, now=dt.datetime(2026, 11, 23, 16, 30))  # 00:30 on the 24th
        assert late.reference == "SM20261124-0001"
        aware = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        assert submit(session, now=aware).reference == "SM20261124-0002"


def test_sequence_beyond_four_digits(db):
    with db.session() as session:
        submit(session)
        session.execute(
            HomeVisitRequest.__table__.update()
            .where(HomeVisitRequest.reference == "SM20261123-0001")
            .values(reference="SM20261123-9999")
        )
        assert submit(session).reference == "SM20261123-10000"
        assert submit(session).reference == "SM20261123-10001"


def test_concurrent_requests_get_unique_references(db):
    with db.session() as session:
        person_id = make_person(session).id
    count = 10
    barrier = threading.Barrier(count)
    references, errors = [], []

    def worker():
        try:
            barrier.wait()
            with db.session() as session:
                visit = submit(session, person=session.get(Person, person_id))
                references.append(visit.reference)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(references) == [f"SM20261123-{n:04d}" for n in range(1, count + 1)]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("13912345678", "13912345678"),
        ("139 1234 5678", "13912345678"),
        ("+86 139-1234-5678", "13912345678"),
        ("１３９１２３４５６７８", "13912345678"),
        ("029-88886666", "029-88886666"),
        ("（029）8888 6666", "029-88886666"),
        ("010 62345678", "010-62345678"),
        ("0917-3212345", "0917-3212345"),
        ("0755-88886666 转 123", "0755-88886666转123"),
    ],
)
def test_phone_numbers_are_normalised(db, typed, stored):
    assert normalise_phone(typed) == stored
    with db.session() as session:
        assert submit(session, contact_phone=typed).contact_phone == stored


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("", "请留一个联系电话"),
        ("88886666", "请加上区号"),
        ("1391234567", "11位手机号"),
        ("12345678901", "11位手机号"),
        ("029-123", "带区号的固定电话"),
        ("打我电话", "11位手机号"),
    ],
)
def test_bad_phone_numbers_are_refused(db, typed, hint):
    with db.session() as session, pytest.raises(InvalidHomeVisitRequest) as refused:
        submit(session, contact_phone=typed)
    assert isinstance(refused.value, ValueError)
    assert refused.value.field == "contact_phone"
    assert hint in refused.value.message


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("address", "   ", "请填写上门地址"),
        ("address", "长" * 257, "上门地址太长了"),
        ("reason", "", "请填写申请原因"),
        ("reason", "病" * 257, "申请原因太长了"),
        ("address", "a\x00b", "无法识别的字符"),
    ],
)
def test_text_fields_are_checked(db, field, value, hint):
    with db.session() as session, pytest.raises(InvalidHomeVisitRequest) as refused:
        submit(session, **{field: value})
    assert refused.value.field == field
    assert hint in str(refused.value)
    with db.session() as session:
        assert session.scalars(select(HomeVisitRequest)).all() == []


def test_text_is_stored_verbatim(db):
    address = '<script>alert("x")</script> 幸福路 8 号 & 9 号'
    with db.session() as session:
        visit = submit(session, address=f"  {address}\n", reason="长" * 256)
    with db.session() as session:
        stored = session.get(HomeVisitRequest, visit.id)
        assert stored.address == address
        assert stored.reason == "长" * 256


def test_id_and_mobile_numbers_typed_into_the_text_are_masked(db):
    number = "610102195203150020"
    with db.session() as session:
        visit = submit(
            session,
            address=f"幸福路8号，我儿子电话13812345678，身份证{number}",
            reason=f"卧床，本人{number}",
            contact_phone="13912345678",
        )
    with db.session() as session:
        stored = session.get(HomeVisitRequest, visit.id)
        assert stored.address == "幸福路8号，我儿子电话138****5678，身份证6101**********0020"
        assert stored.reason == "卧床，本人6101**********0020"
        assert stored.contact_phone == "13912345678"  # the contact field keeps its number


def test_requests_are_audited_with_a_masked_phone(db):
    with db.session() as session:
        account = account_for(session, "alipay", "2088-7")
        by_account = submit(session, account=account)
        by_bot = submit(session)
        entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [(e.actor, e.action, e.target_id) for e in entries] == [
            (f"alipay#{account.id}", "home_visit.requested", by_account.reference),
            ("bot", "home_visit.requested", by_bot.reference),
        ]
        assert entries[0].detail["contact_phone"] == "139****5678"
        assert "13912345678" not in str(entries[0].detail)
        assert "长乐中路" not in str(entries[0].detail)


def test_pending_home_visits(db):
    with db.session() as session:
        first = submit(session)
        done = submit(session)
        later = submit(session, now=NOON + dt.timedelta(hours=1))
        done.status = "done"
        scheduled = submit(session, now=NOON + dt.timedelta(hours=2))
        scheduled.status = "scheduled"
    with db.session() as session:
        assert [v.reference for v in pending_home_visits(session)] == [
            first.reference,
            later.reference,
            scheduled.reference,
        ]


@pytest.mark.parametrize("database", ["db", "sqlite_db"])
def test_a_taken_reference_is_retried(request, monkeypatch, database):
    """Force the race deterministically: the first guess is always an existing number."""
    db = request.getfixturevalue(database)
    import services.home_visits as home_visits

    real = home_visits._next_sequence
    guesses = iter([1])
    monkeypatch.setattr(
        home_visits, "_next_sequence", lambda s, p: next(guesses, None) or real(s, p)
    )
    with db.session() as session:
        session.add(
            HomeVisitRequest(
                reference="SM20261123-0001",
                address="x",
                contact_phone="13912345678",
                reason="x",
            )
        )
        session.flush()
        assert submit(session).reference == "SM20261123-0002"
