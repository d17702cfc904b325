"""花名册查询：按姓名、个人编号或身份证号后几位找人；一个人的全部情况。

Only people in the staff user's regions are found. The search never takes a whole ID number
(the console must not carry one in a URL or a log line): four to six trailing characters, a
person number, or a name.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.idcard import normalise_id_number
from services.models import (
    Binding,
    CertificationRecord,
    ChannelAccount,
    HomeVisitRequest,
    PaymentStatusChange,
    Person,
    PhotoReview,
    StaffUser,
)
from services.policy import Assessment, assess
from services.staff import covers, region_clause

__all__ = ["PersonFile", "PersonNotFound", "person_file", "search"]

RESULTS_MAX = 50
_ID_TAIL = re.compile(r"\d{3,5}[\dX]")
_PERSON_NO = re.compile(r"[A-Za-z0-9-]{2,32}")


class PersonNotFound(LookupError):
    pass


class SearchRefused(ValueError):
    """A whole ID number was typed: the message asks for the last digits instead."""


@dataclass(frozen=True)
class PersonFile:
    person: Person
    standing: Assessment
    certifications: list[CertificationRecord]
    payment_changes: list[PaymentStatusChange]
    accounts: list[tuple[ChannelAccount, str]]
    reviews: list[PhotoReview]
    visits: list[HomeVisitRequest]


def search(session: Session, staff: StaffUser, query: str) -> list[Person]:
    """姓名（可只输前几个字）、个人编号，或身份证号后4–6位。"""
    text = (query or "").strip()
    if not text:
        return []
    visible = region_clause(staff, Person.region_code)
    number = normalise_id_number(text)
    if len(number) >= 15 and number[:-1].isdigit():
        raise SearchRefused("请只输入身份证号的后4到6位")
    if _ID_TAIL.fullmatch(number):
        condition = Person.id_number.endswith(number, autoescape=True)
        # a numeric person number is also possible: search both
        condition = condition | (Person.person_no == text)
    elif _PERSON_NO.fullmatch(text) and any(c.isdigit() for c in text):
        condition = Person.person_no == text
    else:
        condition = Person.name.startswith(text[:32], autoescape=True)
    return list(
        session.scalars(
            select(Person)
            .where(condition, visible)
            .order_by(Person.name, Person.person_no)
            .limit(RESULTS_MAX)
        )
    )


def person_file(
    session: Session, staff: StaffUser, public_id: str, *, today: dt.date, now=None
) -> PersonFile:
    """一个人的页面：状态、周期、认证历史、待遇状态变化、绑定账号、照片审核、上门申请。"""
    person = session.scalars(
        select(Person).where(Person.public_id == (public_id or "")[:32])
    ).one_or_none()
    if person is None or not covers(staff, person.region_code):
        raise PersonNotFound(public_id)
    audit.record(session, staff.username, "person.viewed", "person", person.public_id, at=now)
    return PersonFile(
        person=person,
        standing=assess(person, today),
        certifications=_of_person(
            session, person, CertificationRecord, CertificationRecord.certified_at.desc()
        ),
        payment_changes=_of_person(
            session,
            person,
            PaymentStatusChange,
            PaymentStatusChange.effective_on.desc(),
            PaymentStatusChange.id.desc(),
        ),
        accounts=[
            (account, relation)
            for account, relation in session.execute(
                select(ChannelAccount, Binding.relation)
                .join(Binding, Binding.account_id == ChannelAccount.id)
                .where(Binding.person_id == person.id)
                .order_by(Binding.created_at)
            ).all()
        ],
        reviews=_of_person(session, person, PhotoReview, PhotoReview.submitted_at.desc()),
        visits=_of_person(session, person, HomeVisitRequest, HomeVisitRequest.created_at.desc()),
    )


def _of_person(session: Session, person: Person, model, *order) -> list:
    """The person's rows of one kind (certifications, reviews, …), newest first."""
    return list(session.scalars(select(model).where(model.person_id == person.id).order_by(*order)))


def mask_external_id(external_id: str) -> str:
    """A platform user id shown to staff: enough to tell two apart, not to contact anyone."""
    value = external_id or ""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:3] + "…" + value[-3:]
