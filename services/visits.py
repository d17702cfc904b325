"""上门认证的办理：按地区和状态列出、分派给工作人员、约定日期、记录结果，并告诉申请人。

Outcomes (guangxi-2020-certification-notice.txt 二(三), 三(四): 上门核实确认是否具备领取待遇资格):

* ``alive`` — 健在且具备资格: a certification, method home_visit, the staff user as operator;
  a suspended payment resumes with back pay (services.certification).
* ``deceased`` — 已死亡, with the date: payment stops from the month after (a payment-status
  change with the reason); nothing later reverses it.
* ``not_found`` / ``moved`` — 未见到本人 / 已搬走: the request stays pending with the note.

The requester (the account that asked) is told each step through the outbound port.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from services import audit
from services.certification import CannotCertify, record_certification
from services.clock import in_shanghai
from services.home_visits import PENDING_STATUSES
from services.idcard import mask_personal_numbers
from services.models import (
    CertificationMethod,
    ChannelAccount,
    HomeVisitRequest,
    PaymentStatus,
    PaymentStatusChange,
    Person,
    StaffUser,
    naive_utc,
)
from services.notifications import Notice
from services.outbound import BotMessage
from services.policy import add_months, format_date
from services.staff import covers, find, region_clause

__all__ = [
    "OUTCOMES",
    "STATES",
    "VisitError",
    "VisitNotFound",
    "assign",
    "list_visits",
    "record_outcome",
    "schedule",
]

STATES = {"requested": "待安排", "scheduled": "已约定", "completed": "已办结"}
OUTCOMES = {
    "alive": "健在，具备领取资格",
    "deceased": "已死亡",
    "not_found": "未见到本人",
    "moved": "已搬离",
}
NOTE_MAX = 500


class VisitNotFound(LookupError):
    pass


class VisitError(ValueError):
    """The form was wrong: the message says what to fix."""


@dataclass(frozen=True)
class VisitRow:
    visit: HomeVisitRequest
    person: Person | None


def _region_of(visit_person: Person | None, account: ChannelAccount | None) -> str | None:
    if visit_person is not None:
        return visit_person.region_code
    return account.region_code if account is not None else None


def list_visits(
    session: Session, staff: StaffUser, *, state: str | None = None, limit: int = 200
) -> list[VisitRow]:
    """上门申请（本人负责的地区），先申请的在前；``state`` 为 None 时列出未办结的。"""
    if state and state not in STATES:
        raise VisitError(f"未知状态 {state}")
    states = [state] if state else list(PENDING_STATUSES)
    region = or_(
        region_clause(staff, Person.region_code),
        and_(Person.id.is_(None), region_clause(staff, ChannelAccount.region_code)),
    )
    rows = session.execute(
        select(HomeVisitRequest, Person)
        .outerjoin(Person, Person.id == HomeVisitRequest.person_id)
        .outerjoin(ChannelAccount, ChannelAccount.id == HomeVisitRequest.account_id)
        .where(HomeVisitRequest.status.in_(states), region)
        .order_by(HomeVisitRequest.created_at, HomeVisitRequest.id)
        .limit(limit)
    ).all()
    return [VisitRow(visit, person) for visit, person in rows]


def find_visit(session: Session, staff: StaffUser, public_id: str) -> VisitRow:
    visit = session.scalars(
        select(HomeVisitRequest)
        .where(HomeVisitRequest.public_id == (public_id or "")[:32])
        .with_for_update()
    ).one_or_none()
    if visit is None:
        raise VisitNotFound(public_id)
    person = session.get(Person, visit.person_id) if visit.person_id else None
    account = session.get(ChannelAccount, visit.account_id) if visit.account_id else None
    if not covers(staff, _region_of(person, account)):
        raise VisitNotFound(public_id)
    return VisitRow(visit, person)


def assign(
    session: Session, staff: StaffUser, public_id: str, assignee: str, *, now=None
) -> HomeVisitRequest:
    """分派给一位工作人员（须管辖这个地区）。"""
    row = find_visit(session, staff, public_id)
    _open(row.visit)
    colleague = find(session, assignee)
    if colleague is None or not colleague.active:
        raise VisitError(f"没有工作人员 {assignee}")
    if not covers(colleague, row.person.region_code if row.person else None):
        raise VisitError(f"{colleague.username} 不负责这个地区")
    row.visit.assigned_to = colleague.username
    audit.record(
        session,
        staff.username,
        "home_visit.assigned",
        "home_visit_request",
        row.visit.reference,
        {"assigned_to": colleague.username},
        at=now,
    )
    return row.visit


def schedule(
    session: Session,
    staff: StaffUser,
    public_id: str,
    day: dt.date,
    *,
    today: dt.date,
    note: str | None = None,
    now=None,
) -> Notice | None:
    """约定上门日期，告诉申请人。"""
    row = find_visit(session, staff, public_id)
    visit = row.visit
    _open(visit)
    if day < today:
        raise VisitError("上门日期不能早于今天")
    visit.scheduled_for = day
    visit.status = "scheduled"
    visit.assigned_to = visit.assigned_to or staff.username
    _append_note(visit, staff, note)
    audit.record(
        session,
        staff.username,
        "home_visit.scheduled",
        "home_visit_request",
        visit.reference,
        {"scheduled_for": day.isoformat()},
        at=now,
    )
    whom = f"给{row.person.name}" if row.person else ""
    return _notice(
        visit,
        f"您申请的上门认证（受理号 {visit.reference}）已安排：工作人员将于{format_date(day)}"
        f"上门{whom}办理认证，请届时在家，并准备好身份证。",
    )


def record_outcome(
    session: Session,
    staff: StaffUser,
    public_id: str,
    outcome: str,
    *,
    local_now: dt.datetime,
    note: str | None = None,
    deceased_on: dt.date | None = None,
    now=None,
) -> Notice | None:
    """记录上门结果并产生效果（认证 / 停发 / 仍待办），告诉申请人。"""
    if outcome not in OUTCOMES:
        raise VisitError("请选择上门结果")
    row = find_visit(session, staff, public_id)
    visit, person = row.visit, row.person
    _open(visit)
    today = in_shanghai(local_now).date()
    text: str
    if outcome in ("alive", "deceased") and person is None:
        raise VisitError("这条申请没有对应的参保人：请先在花名册中核对")
    if outcome == "alive":
        try:
            record_certification(
                session,
                person,
                CertificationMethod.home_visit,
                operator=staff.username,
                evidence={
                    "home_visit": visit.reference,
                    "note": mask_personal_numbers(note or "")[:NOTE_MAX],
                },
                at=local_now,
            )
        except CannotCertify as stopped:
            raise VisitError(str(stopped)) from None
        visit.status = "completed"
        text = f"上门认证（受理号 {visit.reference}）已完成：{person.name}本次养老金资格认证通过。"
    elif outcome == "deceased":
        if deceased_on is None:
            raise VisitError("请填写死亡日期")
        if deceased_on > today:
            raise VisitError("死亡日期不能晚于今天")
        stops_from = add_months(deceased_on.replace(day=1), 1)
        person.status = PaymentStatus.stopped
        session.add(
            PaymentStatusChange(
                person_id=person.id,
                status="stopped",
                effective_on=stops_from,
                reason=f"上门核实：已于{format_date(deceased_on)}死亡（{visit.reference}）",
            )
        )
        visit.status = "completed"
        visit.deceased_on = deceased_on
        text = (
            f"上门核实（受理号 {visit.reference}）已办结。{person.name}的养老金自"
            f"{stops_from.year}年{stops_from.month}月起停发。请节哀。丧葬补助金等事宜请联系当地社保经办机构。"
        )
    else:
        visit.status = "requested"  # stays pending: someone must try again
        visit.scheduled_for = None
        text = (
            f"工作人员上门（受理号 {visit.reference}）没有见到{person.name if person else '参保人'}。"
            "请回复或拨打经办机构电话，重新约定上门时间。"
        )
    visit.outcome = outcome
    if visit.status == "completed":
        visit.completed_at = naive_utc(now)
    _append_note(visit, staff, note)
    audit.record(
        session,
        staff.username,
        f"home_visit.{outcome}",
        "home_visit_request",
        visit.reference,
        {"person_id": visit.person_id, "deceased_on": deceased_on and deceased_on.isoformat()},
        at=now,
    )
    session.flush()
    return _notice(visit, text)


def _open(visit: HomeVisitRequest) -> None:
    if visit.status == "completed":
        raise VisitError(f"受理号 {visit.reference} 已经办结")


def _append_note(visit: HomeVisitRequest, staff: StaffUser, note: str | None) -> None:
    note = mask_personal_numbers(" ".join((note or "").split()))[:NOTE_MAX]
    if note:
        line = f"[{staff.username}] {note}"
        visit.staff_note = f"{visit.staff_note}\n{line}" if visit.staff_note else line


def _notice(visit: HomeVisitRequest, text: str) -> Notice | None:
    messages = (BotMessage(text=text),)
    if visit.account_id is not None:
        return Notice(messages=messages, account_id=visit.account_id)
    if visit.person_id is not None:
        return Notice(messages=messages, person_id=visit.person_id)
    return None
