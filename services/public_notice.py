"""江西7月公示：本年度认证周期（1–6月）内未认证的人员，按村（居）所在行政区划公示不少于10天。

jiangxi-xunwu-2020-rural-pension-certification.txt 二(四): every July the people not certified
this year are suspended and their names are posted by the village committee for at least ten
days. The rule (month, days, benefit types) is ``public_notice`` in ``regions.yaml``.

A notice is a snapshot: who was on it when it was posted stays on it (a later certification
resumes payment, it does not rewrite what was posted). It shows name and masked ID only.
``post_due_notices`` is called by the daily run; ``pension public-notice`` exports one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, literal, or_, select
from sqlalchemy.orm import Session

from services.idcard import mask_id_number
from services.models import PaymentStatus, Person, PublicNotice, PublicNoticeEntry
from services.policy import current_window, policy_for
from services.tables import write_table

__all__ = [
    "NoticeLine",
    "export_notice",
    "notice_lines",
    "notices_on_display",
    "post_due_notices",
    "post_notice",
]

HEADER = ("序号", "姓名", "身份证号码", "行政区划")


@dataclass(frozen=True)
class NoticeLine:
    name: str
    masked_id: str
    region_code: str


def _rule(region_code: str) -> dict | None:
    return policy_for(region_code).extra.get("public_notice")


def post_due_notices(session: Session, day: dt.date) -> int:
    """In the notice month, post this year's notice for every region that has none yet."""
    codes = session.scalars(select(Person.region_code).distinct()).all()
    posted = 0
    for code in codes:
        rule = _rule(code)
        if rule and day.month == rule["month"]:
            posted += post_notice(session, code, day.year, day) is not None
    return posted


def post_notice(session: Session, region_code: str, year: int, day: dt.date) -> PublicNotice | None:
    """Post the notice for one region code and year (once: None if it was already posted)."""
    rule = _rule(region_code)
    if rule is None:
        raise ValueError(f"region {region_code} posts no public notice")
    if session.scalar(
        select(PublicNotice.id).where(
            PublicNotice.region_code == region_code, PublicNotice.year == year
        )
    ):
        return None
    notice = PublicNotice(
        region_code=region_code,
        year=year,
        posted_on=day,
        keep_until=day + dt.timedelta(days=int(rule["min_days"])),
    )
    session.add(notice)
    session.flush()
    policy = policy_for(region_code)
    window = current_window(policy.cycle, dt.date(year, policy.cycle.start_month or 1, 1))
    opens = window.opens_on if window else dt.date(year, 1, 1)
    benefit_types = rule.get("benefit_types") or None
    people = select(literal(notice.id), Person.id).where(
        Person.region_code == region_code,
        Person.status != PaymentStatus.stopped,
        or_(Person.last_certified_on.is_(None), Person.last_certified_on < opens),
    )
    if benefit_types:
        people = people.where(Person.benefit_type.in_(benefit_types))
    session.execute(insert(PublicNoticeEntry).from_select(["notice_id", "person_id"], people))
    return notice


def notices_on_display(session: Session, day: dt.date) -> list[PublicNotice]:
    """Notices that must still hang on ``day`` (posted, their minimum days not yet over)."""
    return session.scalars(
        select(PublicNotice)
        .where(PublicNotice.posted_on <= day, PublicNotice.keep_until > day)
        .order_by(PublicNotice.region_code)
    ).all()


def notice_lines(session: Session, region_code: str, year: int) -> list[NoticeLine]:
    """The posted list: name, masked ID number — never the full number."""
    rows = session.execute(
        select(Person.name, Person.id_number, Person.region_code)
        .join(PublicNoticeEntry, PublicNoticeEntry.person_id == Person.id)
        .join(PublicNotice, PublicNotice.id == PublicNoticeEntry.notice_id)
        .where(PublicNotice.region_code == region_code, PublicNotice.year == year)
        .order_by(Person.person_no)
    ).all()
    return [NoticeLine(name, mask_id_number(number), code) for name, number, code in rows]


def export_notice(session: Session, region_code: str, year: int, path: str | Path) -> int:
    """Write the notice as ``.xlsx`` or ``.csv`` (by the file name); returns the line count."""
    path = Path(path)
    notice = session.scalars(
        select(PublicNotice).where(
            PublicNotice.region_code == region_code, PublicNotice.year == year
        )
    ).one_or_none()
    if notice is None:
        raise LookupError(f"no public notice for {region_code} in {year}")
    lines = notice_lines(session, region_code, year)
    title = (
        f"{year}年度城乡居民养老保险待遇领取资格未认证人员公示（{region_code}）"
        f" 公示期：{notice.posted_on.isoformat()} 至 {notice.keep_until.isoformat()}"
    )
    rows = [(n, line.name, line.masked_id, line.region_code) for n, line in enumerate(lines, 1)]
    write_table(path, HEADER, rows, sheet_title="公示名单", title=title)
    return len(lines)
