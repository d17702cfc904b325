"""认证结果入账：一次成功的认证写入认证记录、更新最近认证日期，暂停发放的恢复发放并计算补发。

The one place a certification — face check, approved photo, home visit, information
comparison — changes a person's standing, so every method resumes payment the same way
(从停发之月起补发: shaanxi-xincheng-2021-app-certification-notice.txt 三.2,
jiangxi-xunwu-2020-rural-pension-certification.txt 二(四), guangxi-2020-certification-notice.txt 三(二)).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from services.clock import in_shanghai, system_clock
from services.models import (
    AuditLog,
    CertificationMethod,
    CertificationRecord,
    CertificationResult,
    PaymentStatus,
    PaymentStatusChange,
    Person,
    naive_utc,
)
from services.policy import Resumption, assess, resumption


class CannotCertify(ValueError):
    """Payment is stopped (death, prison…): a certification does not bring it back."""


@dataclass(frozen=True)
class CertificationOutcome:
    record: CertificationRecord
    resumed: Resumption | None  # set when payment was suspended and now resumes


def record_certification(
    session: Session,
    person: Person,
    method: CertificationMethod | str,
    *,
    operator: str | None = None,
    channel: str | None = None,
    evidence: dict | None = None,
    at: dt.datetime | None = None,
) -> CertificationOutcome:
    """A successful certification of ``person`` by ``method`` (staff ``operator`` if any).

    ``at`` defaults to now; a naive moment is Beijing time. The day it counts for is
    Beijing's date; the database keeps UTC.
    """
    at = in_shanghai(at or system_clock.now())
    day = at.date()
    if person.status == PaymentStatus.stopped:
        raise CannotCertify("养老金已停发，认证不能恢复发放，请联系经办机构")

    resumed = _resume_if_suspended(session, person, day)
    record = CertificationRecord(
        person_id=person.id,
        method=CertificationMethod(method),
        certified_at=naive_utc(at),
        result=CertificationResult.passed,
        evidence=evidence,
        operator=operator,
        channel=channel,
    )
    session.add(record)
    person.last_certified_on = max(day, person.last_certified_on or day)
    session.add(
        AuditLog(
            actor=operator or channel or "system",
            action="certification.recorded",
            target_type="person",
            target_id=person.person_no,
            detail={"method": str(method), "resumed": resumed is not None},
        )
    )
    session.flush()
    return CertificationOutcome(record, resumed)


def what_follows(person: Person, day: dt.date, resumed: Resumption | None) -> str:
    """What a person is told after certifying: payment resumes (back pay), the next due date."""
    lines = []
    if resumed is not None:
        if resumed.back_pay_months:
            lines.append(
                f"养老金将恢复发放，并补发从{resumed.back_pay_from.year}年"
                f"{resumed.back_pay_from.month}月起共{resumed.back_pay_months}个月的待遇。"
            )
        else:
            lines.append("养老金将恢复发放，停发期间的待遇由经办机构核算后补发。")
    standing = assess(person, day)
    if standing.window is not None and standing.window.due_date > day:
        lines.append(f"下次请在{standing.window.describe()}之间认证。")
    return "".join(lines)


def back_pay_on(session: Session, person: Person, day: dt.date) -> Resumption | None:
    """What a certification on ``day`` would resume and pay back (None: not suspended).

    Back pay runs from the suspension the payment history records (the daily run's date);
    only a person the run has not reached yet falls back to the date the policy infers.
    """
    standing = assess(person, day)
    if not standing.suspended:
        return None
    suspended_from = _recorded_suspension(session, person) or standing.suspended_from
    return resumption(person, day, suspended_from=suspended_from)


def _resume_if_suspended(session: Session, person: Person, day: dt.date) -> Resumption | None:
    resumed = back_pay_on(session, person, day)
    if resumed is None:
        return None
    session.add(
        PaymentStatusChange(
            person_id=person.id,
            status="resumed",
            effective_on=resumed.resume_on,
            reason="认证通过，恢复发放",
            back_pay_from=resumed.back_pay_from,
            back_pay_months=resumed.back_pay_months,
        )
    )
    person.status = PaymentStatus.normal
    return resumed


def _move_last_certified(session: Session, newest: dict[int, dt.date], at: dt.datetime) -> None:
    if session.bind.dialect.name == "postgresql":
        # one statement for the whole batch instead of one UPDATE per person
        session.execute(
            text(
                "UPDATE persons SET last_certified_on = v.day, updated_at = :at"
                " FROM unnest(CAST(:ids AS integer[]), CAST(:days AS date[])) AS v(id, day)"
                " WHERE persons.id = v.id"
            ),
            {"ids": list(newest), "days": list(newest.values()), "at": at},
        )
        return
    session.execute(
        update(Person),
        [{"id": pid, "last_certified_on": day, "updated_at": at} for pid, day in newest.items()],
    )


def _recorded_suspension(session: Session, person: Person) -> dt.date | None:
    """The day the payment history says the current suspension began (None if not suspended
    there: the last suspension was already resumed, or none was ever recorded)."""
    latest = session.execute(
        select(PaymentStatusChange.status, PaymentStatusChange.effective_on)
        .where(
            PaymentStatusChange.person_id == person.id,
            PaymentStatusChange.status.in_(("suspended", "resumed")),
        )
        .order_by(PaymentStatusChange.effective_on.desc(), PaymentStatusChange.id.desc())
        .limit(1)
    ).first()
    return latest.effective_on if latest and latest.status == "suspended" else None


def record_many_by_comparison(
    session: Session, records: Sequence[tuple[int, dt.date, dict]], *, at: dt.datetime
) -> int:
    """Information comparison (shanxi-2018-certification-rules.txt 一(二), 二(一)): each
    (person id, record date, evidence) certifies that person on that date.

    Written in bulk for people still paid; a suspended person goes through
    :func:`record_certification` so their payment resumes with back pay like any other
    method; stopped people are skipped (never reversed). Returns how many were recorded.
    """
    if not records:
        return 0
    ids = sorted({person_id for person_id, _, _ in records})
    people = {
        row.id: row
        for row in session.execute(
            select(Person.id, Person.status, Person.last_certified_on).where(Person.id.in_(ids))
        )
    }
    certifications, newest = [], {}
    recorded = 0
    for person_id, day, evidence in records:
        person = people[person_id]
        if person.status == PaymentStatus.stopped:
            continue
        moment = dt.datetime.combine(day, dt.time(12))
        if person.status == PaymentStatus.suspended:
            record_certification(
                session,
                session.get(Person, person_id),
                CertificationMethod.info_comparison,
                channel="comparison",
                evidence=evidence,
                at=moment,
            )
            recorded += 1
            continue
        certifications.append(
            {
                "person_id": person_id,
                "method": CertificationMethod.info_comparison.value,
                "certified_at": moment,
                "result": CertificationResult.passed.value,
                "evidence": evidence,
                "channel": "comparison",
            }
        )
        newest[person_id] = max(day, newest.get(person_id, day), person.last_certified_on or day)
        recorded += 1
    if certifications:
        session.execute(insert(CertificationRecord.__table__), certifications)
        _move_last_certified(session, newest, at)
        session.add(
            AuditLog(
                actor="system",
                action="certification.compared",
                target_type="person",
                detail={"recorded": len(certifications)},
            )
        )
    session.flush()
    return recorded
