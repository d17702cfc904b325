"""报表：各地区本周期已认证 / 待认证 / 逾期 / 暂停 / 停发人数，及《领取社会保险待遇资格核查确认花名册》。

The dashboard asks the policy engine, not a second copy of the rules: people are grouped by the
facts the engine reads (region, benefit type, status, last certification, birth month), each
group assessed once, so 100,000 people cost a few thousand assessments.

The roster sheet is attachment 1 of guangxi-2020-certification-notice.txt (附件1: 序号、个人编号、
姓名、性别、身份证号码、出生年月、认证时间、认证地点、联系方式、现居住地详细地址、领取待遇资格确认
(基本状况、死亡时间)), filled for one region and one period from the certifications and home
visits recorded in it. It is an official form sent to the social-insurance centre, so it carries
full ID numbers; every export is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from services import audit
from services.clock import SHANGHAI, in_shanghai
from services.models import (
    CertificationMethod,
    CertificationRecord,
    CertificationResult,
    HomeVisitRequest,
    Person,
    StaffUser,
    naive_utc,
)
from services.policy import PersonFacts, Reason, assess
from services.regions import policy_for
from services.staff import StaffError

__all__ = ["CATEGORIES", "Dashboard", "dashboard", "verification_roster_xlsx"]

CATEGORIES = {
    "certified": "本周期已认证",
    "due": "待认证",
    "overdue": "已逾期",
    "suspended": "暂停发放",
    "stopped": "停止发放",
}
METHOD_PLACES = {
    CertificationMethod.face: "线上刷脸认证",
    CertificationMethod.photo_review: "线上拍照认证（人工审核）",
    CertificationMethod.home_visit: "上门认证",
    CertificationMethod.info_comparison: "信息比对",
    CertificationMethod.app: "手机APP认证",
}
SHEET_TITLE = "领取社会保险待遇资格核查确认花名册"
COLUMNS = (
    "序号",
    "个人编号",
    "姓名",
    "性别",
    "身份证号码",
    "出生年月",
    "认证时间 (年月日)",
    "认证地点",
    "联系方式",
    "现居住地详细地址",
    "领取待遇资格确认",
    "",
)
COLUMN_WIDTHS = (6, 14, 10, 6, 21, 11, 16, 26, 14, 30, 18, 16)
NOTES = (
    "填写说明:",
    "1. 认证时间 (详细填写年月日);",
    "2. 认证地点 (详细填写待遇领取人认证地点);",
    "3. 领取待遇资格确认, 由负责认证的机构根据被确认人的基本状况如健在、已死亡(注明年月日)、"
    "下落不明(注明原因)、在押服刑(注明年月日)等, 如实填写予以证明。",
)


@dataclass(frozen=True)
class Dashboard:
    region: str
    region_name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def region_name(prefix: str) -> str:
    if not prefix:
        return "全部地区"
    policy = policy_for(prefix.ljust(6, "0"))
    if policy.code_prefix == "default":
        return prefix
    return (
        policy.province
        + (policy.district or "")
        + ("" if policy.code_prefix == prefix else f"（{prefix}）")
    )


def _check_region(staff: StaffUser, prefix: str) -> str:
    """The prefix must lie inside one of the staff user's regions (PermissionError if not)."""
    prefix = (prefix or "").strip()
    if prefix and not (prefix.isdigit() and len(prefix) <= 6):
        raise StaffError("地区是1–6位行政区划代码前缀")
    if not any(prefix.startswith(mine) for mine in staff.regions or []):
        raise PermissionError(prefix)
    return prefix


def dashboard(session: Session, staff: StaffUser, prefix: str, today: dt.date) -> Dashboard:
    """某地区（代码前缀）今天的认证情况。"""
    prefix = _check_region(staff, prefix)
    month = extract("month", Person.birth_date)
    rows = session.execute(
        select(
            Person.region_code,
            Person.benefit_type,
            Person.status,
            Person.last_certified_on,
            month,
            func.count(),
        )
        .where(Person.region_code.startswith(prefix, autoescape=True))
        .group_by(
            Person.region_code,
            Person.benefit_type,
            Person.status,
            Person.last_certified_on,
            month,
        )
    ).all()
    counts: Counter[str] = Counter({key: 0 for key in CATEGORIES})
    for region, benefit, status, last, birth_month, count in rows:
        facts = PersonFacts(
            region_code=region,
            benefit_type=str(benefit),
            birth_date=dt.date(1950, int(birth_month or 1), 1),
            status=str(status),
            last_certified_on=last,
        )
        counts[_category(facts, today)] += count
    return Dashboard(prefix, region_name(prefix), dict(counts))


def _category(facts: PersonFacts, today: dt.date) -> str:
    if facts.status == "stopped":
        return "stopped"
    standing = assess(facts, today)
    if standing.suspended:
        return "suspended"
    if standing.overdue:
        return "overdue"
    if standing.reason == Reason.already_certified:
        return "certified"
    return "due"


def bar_chart(board: Dashboard, width: int = 560, bar_height: int = 28) -> dict:
    """Geometry for the inline SVG bar chart (the page draws it; no script, no CDN)."""
    largest = max(board.counts.values(), default=0) or 1
    label_width, gap = 110, 10
    bars = []
    for index, (key, label) in enumerate(CATEGORIES.items()):
        value = board.counts.get(key, 0)
        length = round((width - label_width - 70) * value / largest)
        bars.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "x": label_width,
                "y": index * (bar_height + gap),
                "width": length,
                "height": bar_height,
            }
        )
    return {"width": width, "height": len(bars) * (bar_height + gap), "bars": bars}


@dataclass(frozen=True)
class RosterLine:
    person: Person
    certified_at: dt.datetime | None
    place: str
    condition: str
    deceased_on: dt.date | None


def roster_lines(session: Session, prefix: str, start: dt.date, end: dt.date) -> list[RosterLine]:
    """期间内核查过的人：认证通过的（健在）、上门核实已死亡或未见到本人的。"""
    # Beijing days; the database keeps UTC
    until = naive_utc(in_shanghai(end + dt.timedelta(days=1)).replace(hour=0))
    since = naive_utc(in_shanghai(start).replace(hour=0))
    lines: dict[int, RosterLine] = {}
    records = session.execute(
        select(CertificationRecord, Person)
        .join(Person, Person.id == CertificationRecord.person_id)
        .where(
            Person.region_code.startswith(prefix, autoescape=True),
            CertificationRecord.result == CertificationResult.passed,
            CertificationRecord.certified_at >= since,
            CertificationRecord.certified_at < until,
        )
        .order_by(CertificationRecord.certified_at)
    ).all()
    visits = {
        visit.reference: visit
        for visit in session.scalars(
            select(HomeVisitRequest)
            .join(Person, Person.id == HomeVisitRequest.person_id)
            .where(Person.region_code.startswith(prefix, autoescape=True))
            .where(HomeVisitRequest.outcome.is_not(None))
        )
    }
    for record, person in records:  # the latest certification in the period wins
        place = METHOD_PLACES.get(record.method, str(record.method))
        reference = (record.evidence or {}).get("home_visit")
        if reference in visits:
            place = f"上门认证：{visits[reference].address}"
        lines[person.id] = RosterLine(person, record.certified_at, place, "健在", None)
    for visit in visits.values():
        done = visit.completed_at or visit.created_at
        if visit.outcome not in ("deceased", "not_found", "moved"):
            continue
        if not (since <= done < until):
            continue
        person = session.get(Person, visit.person_id)
        if visit.outcome == "deceased":
            condition = "已死亡"
        else:
            condition = (
                "下落不明（上门未见到本人）"
                if visit.outcome == "not_found"
                else "下落不明（已搬离）"
            )
        lines[person.id] = RosterLine(
            person, done, f"上门核实：{visit.address}", condition, visit.deceased_on
        )
    return sorted(lines.values(), key=lambda line: line.person.person_no)


def verification_roster_xlsx(
    session: Session,
    staff: StaffUser,
    prefix: str,
    start: dt.date,
    end: dt.date,
    *,
    today: dt.date,
    now=None,
) -> tuple[bytes, int]:
    """导出花名册（XLSX 字节，行数）；写审计日志。"""
    prefix = _check_region(staff, prefix)
    if end < start:
        raise StaffError("结束日期不能早于开始日期")
    lines = roster_lines(session, prefix, start, end)
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)

    sheet.merge_cells("A1:L1")
    sheet["A1"] = SHEET_TITLE
    sheet["A1"].font = Font(size=16, bold=True)
    sheet["A1"].alignment = center
    sheet["A2"] = f"单位名称(盖章): {region_name(prefix)}"
    sheet["F2"] = f"单位编号: {prefix}"
    sheet["I2"] = f"填报日期: {today.year}年{today.month:02d}月{today.day:02d}日"
    sheet["A3"] = f"核查期间: {start.isoformat()} 至 {end.isoformat()}"
    sheet["K3"] = "第 1 页/共 1 页"

    for column, title in enumerate(COLUMNS, start=1):
        sheet.cell(row=4, column=column, value=title or None)
    for column in range(1, 11):
        sheet.merge_cells(start_row=4, start_column=column, end_row=5, end_column=column)
    sheet.merge_cells(start_row=4, start_column=11, end_row=4, end_column=12)
    sheet.cell(row=5, column=11, value="基本状况")
    sheet.cell(row=5, column=12, value="死亡时间 (年月日)")
    for row in sheet.iter_rows(min_row=4, max_row=5, max_col=12):
        for cell in row:
            cell.font = Font(bold=True)
            cell.alignment = center
            cell.border = box

    for number, line in enumerate(lines, start=1):
        person = line.person
        values = (
            number,
            person.person_no,
            person.name,
            "男" if person.gender == "M" else "女",
            person.id_number,
            f"{person.birth_date.year}年{person.birth_date.month:02d}月",
            _beijing(line.certified_at).strftime("%Y年%m月%d日") if line.certified_at else "",
            line.place,
            person.phone or "",
            person.address or "",
            line.condition,
            line.deceased_on.strftime("%Y年%m月%d日") if line.deceased_on else "",
        )
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=5 + number, column=column, value=value)
            cell.border = box
    footer = 5 + len(lines) + 2
    sheet.cell(row=footer, column=1, value="单位负责人:")
    sheet.cell(row=footer, column=5, value="单位经办人:")
    sheet.cell(row=footer, column=9, value="联系电话:")
    for offset, note in enumerate(NOTES, start=2):
        sheet.cell(row=footer + offset, column=1, value=note)
    for letter, width in zip("ABCDEFGHIJKL", COLUMN_WIDTHS, strict=True):
        sheet.column_dimensions[letter].width = width

    buffer = io.BytesIO()
    book.save(buffer)
    audit.record(
        session,
        staff.username,
        "report.exported",
        "report",
        "verification_roster",
        {"region": prefix, "start": start.isoformat(), "end": end.isoformat(), "rows": len(lines)},
        at=now,
    )
    return buffer.getvalue(), len(lines)


def _beijing(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC).astimezone(SHANGHAI)
