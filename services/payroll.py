"""发放变动报表：一段时间内的暂停发放、恢复发放（含补发月数）和停发——发放系统要的数据。

One line per payment-status change taking effect in the period, in date order, as CSV (UTF-8
with BOM, so Excel opens it) or XLSX. ID numbers are masked: the payment system keys on
个人编号; the months of back pay come from the recorded suspension (services.certification).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from services.idcard import mask_id_number
from services.lifecycle import suspensions
from services.tables import write_table

__all__ = ["HEADER", "payroll_lines", "write_payroll_report"]

HEADER = (
    "个人编号",
    "姓名",
    "身份证号码",
    "参保地行政区划",
    "待遇类型",
    "变动",
    "生效日期",
    "原因",
    "补发起始月",
    "补发月数",
)
CHANGE_LABELS = {"suspended": "暂停发放", "resumed": "恢复发放", "stopped": "停止发放"}


def payroll_lines(
    session: Session, start: dt.date, end: dt.date, region_prefix: str = ""
) -> list[tuple]:
    lines = []
    for change, person in suspensions(session, start, end, region_prefix):
        lines.append(
            (
                person.person_no,
                person.name,
                mask_id_number(person.id_number),
                person.region_code,
                str(person.benefit_type),
                CHANGE_LABELS.get(change.status, change.status),
                change.effective_on.isoformat(),
                change.reason or "",
                change.back_pay_from.strftime("%Y-%m") if change.back_pay_from else "",
                change.back_pay_months if change.back_pay_months is not None else "",
            )
        )
    return lines


def write_payroll_report(
    session: Session, start: dt.date, end: dt.date, path: str | Path, region_prefix: str = ""
) -> int:
    """Write the report (``.xlsx`` or ``.csv`` by the file name); returns the line count."""
    lines = payroll_lines(session, start, end, region_prefix)
    write_table(path, HEADER, lines, sheet_title=f"{start.isoformat()}至{end.isoformat()}")
    return len(lines)
