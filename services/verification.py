"""山西待核实人员：名单下发参保单位，3个月内核实确认，填《领取养老保险待遇资格待核实人员确认表》报回。

shanxi-2018-certification-rules.txt 二(三): people with no comparison record and no certification
in the period are 待核实人员, sent to their unit; 三(一)1: the unit verifies within three
months and returns 附件1; 三(一)3: lost eligibility → stop payment; 三(一)4: not reachable for
a long time → suspend; 二(一): eligible as confirmed by the unit → paid as normal.

The daily run lists people (``services.lifecycle``); this module exports a unit's list as the
attachment's sheet and records what the unit sends back (``pension pending-list``).

The attachment's columns (reconstructed from the seed's form, whose text extraction is
scrambled): 序号, 个人编号, 姓名, 身份证号, 性别, 现居住地, 健康状况, 目前养老金发放状态,
停发时间, 停发原因, 确认方式, 经确认具备领取资格, 经确认丧失领取资格. ID numbers are masked in
the sheet; the unit's answer is matched back by 个人编号.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.certification import record_certification
from services.idcard import mask_id_number
from services.models import (
    AuditLog,
    CertificationMethod,
    PaymentStatus,
    PaymentStatusChange,
    PendingVerification,
    Person,
)
from services.roster import RowProblem, _compact, _parse_date, _text

__all__ = [
    "COLUMNS",
    "ReturnSummary",
    "export_pending_sheet",
    "pending_by_unit",
    "record_returned_sheet",
]

TITLE = "领取养老保险待遇资格待核实人员确认表"
COLUMNS = (
    "序号",
    "个人编号",
    "姓名",
    "身份证号",
    "性别",
    "现居住地",
    "健康状况",
    "目前养老金发放状态",
    "停发时间",
    "停发原因",
    "确认方式",
    "经确认具备领取资格",
    "经确认丧失领取资格",
)
HEADER_ROW = 3  # title, unit line, then the column names
STATUS_LABELS = {"normal": "正常发放", "suspended": "暂停发放", "stopped": "停止发放"}
GENDER_LABELS = {"M": "男", "F": "女"}
_MARKED = {"√", "✓", "✔", "是", "1", "y", "yes", "true", "v", "对"}
_UNREACHABLE = ("联系不到", "无法联系", "联系不上", "无法确认")


def _pending_rows(session: Session, unit_name: str | None = None):
    query = (
        select(PendingVerification, Person)
        .join(Person, Person.id == PendingVerification.person_id)
        .where(PendingVerification.outcome.is_(None))
        .order_by(PendingVerification.unit_name, PendingVerification.deadline, Person.person_no)
    )
    if unit_name is not None:
        query = query.where(PendingVerification.unit_name == unit_name)
    return session.execute(query).all()


def pending_by_unit(session: Session) -> dict[str, list[tuple[PendingVerification, Person]]]:
    """Open pending verifications per unit, earliest deadline first (the console's list)."""
    units: dict[str, list] = defaultdict(list)
    for pending, person in _pending_rows(session):
        units[pending.unit_name or "（未登记单位）"].append((pending, person))
    return dict(units)


def export_pending_sheet(
    session: Session,
    unit_name: str,
    path: str | Path,
    *,
    unit_code: str = "",
    today: dt.date | None = None,
) -> int:
    """Write a unit's open list as the attachment's XLSX; returns how many people are on it."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    rows = _pending_rows(session, unit_name)
    suspended_on = _suspension_dates(session, [person.id for _, person in rows])
    book = Workbook()
    sheet = book.active
    sheet.title = "附件1"
    years = sorted({pending.listed_on.year for pending, _ in rows}) or (
        [today.year] if today else []
    )
    sheet.append([TITLE])
    sheet["A1"].font = Font(bold=True, size=14)
    deadline = min((p.deadline for p, _ in rows), default=None)
    sheet.append(
        [
            f"单位名称（章）：{unit_name}",
            None,
            None,
            f"单位编号：{unit_code}",
            None,
            f"{'、'.join(map(str, years))}年度",
            None,
            f"请于{deadline.isoformat() if deadline else '三个月内'}前核实确认并报回",
        ]
    )
    sheet.append(list(COLUMNS))
    for number, (_pending, person) in enumerate(rows, 1):
        stopped = suspended_on.get(person.id)
        sheet.append(
            [
                number,
                person.person_no,
                person.name,
                mask_id_number(person.id_number),
                GENDER_LABELS.get(person.gender, person.gender),
                person.address or "",
                "",
                STATUS_LABELS.get(str(person.status), str(person.status)),
                stopped.isoformat() if stopped else "",
                "逾期未认证" if stopped else "",
                "",
                "",
                "",
            ]
        )
    for cell in sheet[HEADER_ROW]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    sheet.append([])
    sheet.append(["核实人：", None, None, "联系电话：", None, None, "填表时间：    年   月   日"])
    book.save(path)
    return len(rows)


def _suspension_dates(session: Session, person_ids: list[int]) -> dict[int, dt.date]:
    if not person_ids:
        return {}
    rows = session.execute(
        select(PaymentStatusChange.person_id, PaymentStatusChange.effective_on)
        .where(
            PaymentStatusChange.person_id.in_(person_ids),
            PaymentStatusChange.status == "suspended",
        )
        .order_by(PaymentStatusChange.effective_on)
    )
    return {person_id: day for person_id, day in rows}


@dataclass
class ReturnSummary:
    eligible: int = 0
    lost: int = 0
    unreachable: int = 0
    unanswered: int = 0
    rejected: list[RowProblem] = field(default_factory=list)

    def format(self) -> str:
        lines = [
            f"待核实人员确认表：具备资格 eligible {self.eligible} · 丧失资格 lost {self.lost}"
            f" · 联系不到 unreachable {self.unreachable} · 未填写 unanswered {self.unanswered}"
            f" · 拒绝 rejected {len(self.rejected)}"
        ]
        lines += [f"  第 {p.row} 行 row {p.row}：{p.message}" for p in self.rejected]
        return "\n".join(lines)


def _marked(value) -> bool:
    return _compact(value).lower() in _MARKED


def record_returned_sheet(
    session: Session, path: str | Path, *, operator: str, today: dt.date
) -> ReturnSummary:
    """Record a unit's returned sheet: eligible → certified (单位核实确认), resuming payment with
    back pay; lost → stopped (三(一)3); unreachable → suspended (三(一)4)."""
    from openpyxl import load_workbook

    summary = ReturnSummary()
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = None
        for number, values in enumerate(rows, 1):
            cells = [_text(v) for v in values]
            if header is None:
                if "个人编号" in cells and "经确认具备领取资格" in cells:
                    header = {name: cells.index(name) for name in COLUMNS if name in cells}
                continue
            record = {name: values[i] if i < len(values) else None for name, i in header.items()}
            person_no = _compact(record.get("个人编号"))
            if not person_no or not person_no[0].isalnum() or person_no.startswith("核实人"):
                continue
            problem = _record_row(session, record, person_no, operator, today, summary)
            if problem:
                summary.rejected.append(RowProblem(number, problem, person_no))
        if header is None:
            summary.rejected.append(
                RowProblem(1, f"不是《{TITLE}》：找不到“个人编号”“经确认具备领取资格”列")
            )
    finally:
        book.close()
    return summary


def _record_row(session, record, person_no, operator, today, summary) -> str | None:
    found = session.execute(
        select(PendingVerification, Person)
        .join(Person, Person.id == PendingVerification.person_id)
        .where(Person.person_no == person_no)
        .order_by(PendingVerification.due_date.desc())
        .limit(1)
    ).first()
    if found is None:
        return f"个人编号 {person_no} 不在待核实名单中"
    pending, person = found
    if pending.outcome is not None:
        return None  # already recorded from an earlier return: nothing changes
    eligible, lost = (
        _marked(record.get("经确认具备领取资格")),
        _marked(record.get("经确认丧失领取资格")),
    )
    how = _text(record.get("确认方式"))
    if eligible and lost:
        return "“具备领取资格”和“丧失领取资格”只能选一个"
    if eligible:
        if person.status == PaymentStatus.stopped:
            return "该人员已停发，单位确认不能恢复发放，请联系经办机构"
        record_certification(
            session,
            person,
            CertificationMethod.unit_confirmation,
            operator=operator,
            evidence={"确认方式": how, "unit": pending.unit_name},
            at=dt.datetime.combine(today, dt.time(12)),
        )
        _close(pending, "eligible", how, today)
        summary.eligible += 1
    elif lost:
        try:
            stopped_on = _parse_date(record.get("停发时间")) or today
        except ValueError:
            return f"停发时间「{_text(record.get('停发时间'))}」无法识别"
        reason = _text(record.get("停发原因")) or "经单位核实丧失领取资格"
        _change(session, person, PaymentStatus.stopped, stopped_on, reason, operator)
        _close(pending, "lost", reason, today)
        summary.lost += 1
    elif any(word in how for word in _UNREACHABLE):
        if person.status == PaymentStatus.normal:
            _change(
                session, person, PaymentStatus.suspended, today, "待核实人员长期联系不到", operator
            )
        _close(pending, "unreachable", how, today)
        summary.unreachable += 1
    else:
        summary.unanswered += 1
    return None


def _close(pending: PendingVerification, outcome: str, note: str, today: dt.date) -> None:
    pending.outcome, pending.outcome_note, pending.returned_on = outcome, note[:256], today


def _change(session, person, status, day, reason, operator) -> None:
    session.add(
        PaymentStatusChange(
            person_id=person.id, status=str(status), effective_on=day, reason=reason
        )
    )
    person.status = status
    session.add(
        AuditLog(
            actor=operator,
            action=f"payment.{status}",
            target_type="person",
            target_id=person.person_no,
            detail={"reason": reason, "effective_on": day.isoformat()},
        )
    )
