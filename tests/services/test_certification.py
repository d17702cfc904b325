"""Recording a certification: the record, the new date, and resumption with back pay."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from services.certification import CannotCertify, record_certification
from services.demo_roster import fictional_id_number
from services.models import CertificationRecord, PaymentStatusChange, Person


def _person(session, **overrides) -> Person:
    values = dict(
        person_no="C1",
        name="钟伟明",
        id_number=fictional_id_number("360734", dt.date(1958, 8, 22), 1, False),
        gender="M",
        birth_date=dt.date(1958, 8, 22),
        region_code="360734",
        benefit_type="resident",
        status="normal",
        last_certified_on=dt.date(2025, 3, 1),
        overseas=False,
    )
    person = Person(**(values | overrides))
    session.add(person)
    session.flush()
    return person


def test_jiangxi_late_certification_resumes_and_pays_back_from_july(db):
    """jiangxi-xunwu 二(四): suspended each July; 补办 resumes and pays back the months."""
    with db.session() as session:
        person = _person(session)  # certified March 2025, nothing in Jan–Jun 2026
        outcome = record_certification(
            session, person, "photo_review", operator="staff1", at=dt.datetime(2026, 9, 10, 9)
        )
        assert outcome.resumed.back_pay_from == dt.date(2026, 7, 1)
        assert outcome.resumed.back_pay_months == 3  # July, August, September
        assert person.status == "normal" and person.last_certified_on == dt.date(2026, 9, 10)
    with db.session() as session:
        change = session.scalars(select(PaymentStatusChange)).one()
        assert (change.status, change.back_pay_months) == ("resumed", 3)
        record = session.scalars(select(CertificationRecord)).one()
        assert (record.method, record.operator, record.result) == (
            "photo_review",
            "staff1",
            "passed",
        )


def test_certification_in_time_changes_no_payment(db):
    with db.session() as session:
        person = _person(session, last_certified_on=dt.date(2025, 12, 1))
        outcome = record_certification(session, person, "face", at=dt.datetime(2026, 2, 3, 10))
        assert outcome.resumed is None
    with db.session() as session:
        assert session.scalars(select(PaymentStatusChange)).all() == []


def test_stopped_payment_cannot_be_certified_back(db):
    with db.session() as session:
        person = _person(session, status="stopped")
        with pytest.raises(CannotCertify):
            record_certification(session, person, "home_visit", operator="staff1")
