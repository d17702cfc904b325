"""认证结果入账：一次成功的认证写入认证记录、更新最近认证日期，暂停发放的恢复发放并计算补发。

The one place a certification — face check, approved photo, home visit, information
comparison — changes a person's standing, so every method resumes payment the same way
(从停发之月起补发: shaanxi-xincheng-2021-app-certification-notice.txt 三.2,
jiangxi-xunwu-2020-rural-pension-certification.txt 二(四), guangxi-2020-certification-notice.txt 三(二)).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
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


def _resume_if_suspended(session: Session, person: Person, day: dt.date) -> Resumption | None:
    standing = assess(person, day)
    if not standing.suspended:
        return None
    suspended_from = standing.suspended_from or _recorded_suspension(session, person)
    resumed = resumption(person, day, suspended_from=suspended_from)
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


def _recorded_suspension(session: Session, person: Person) -> dt.date | None:
    """The day the payment history says payment was last suspended."""
    return session.scalar(
        select(PaymentStatusChange.effective_on)
        .where(
            PaymentStatusChange.person_id == person.id,
            PaymentStatusChange.status == "suspended",
        )
        .order_by(PaymentStatusChange.effective_on.desc())
        .limit(1)
    )
