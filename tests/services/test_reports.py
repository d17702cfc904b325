"""Dashboard counts by the policy engine; the Guangxi 核查确认花名册 as XLSX; roster search."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services import people, reports
from services.certification import record_certification
from services.models import AuditLog, PaymentStatus
from tests.support import id_number, make_person, make_staff

TODAY = dt.date(2026, 12, 1)


def test_dashboard_counts_each_category(db):
    with db.session() as session:
        reviewer = make_staff(session, regions=["61"])
        make_person(session, seq=3, last_certified_on=dt.date(2026, 5, 1))  # certified this year
        make_person(session, seq=4, last_certified_on=dt.date(2025, 12, 20))  # due 2026-12-20
        make_person(session, seq=5, last_certified_on=dt.date(2025, 12, 5))  # due 12-05: overdue
        make_person(session, seq=6, last_certified_on=dt.date(2025, 3, 1))  # suspended since April
        make_person(session, seq=7, status=PaymentStatus.stopped)
        make_person(session, seq=8, region_code="450103")  # not this region
        board = reports.dashboard(session, reviewer, "61", dt.date(2026, 12, 15))
    assert board.counts == {"certified": 1, "due": 1, "overdue": 1, "suspended": 1, "stopped": 1}
    chart = reports.bar_chart(board)
    assert [bar["value"] for bar in chart["bars"]] == [1, 1, 1, 1, 1]


def test_dashboard_refuses_a_region_outside_the_staff_users(db):
    with db.session() as session:
        reviewer = make_staff(session, regions=["61"])
        with pytest.raises(PermissionError):
            reports.dashboard(session, reviewer, "45", TODAY)
        with pytest.raises(PermissionError):
            reports.dashboard(session, reviewer, "", TODAY)
        assert reports.dashboard(session, reviewer, "610102", TODAY).total == 0


def test_verification_roster_has_attachment_1_columns(db):
    with db.session() as session:
        officer = make_staff(session, regions=["45"])
        alive = make_person(
            session, name="韦秀英", seq=3, region_code="450103", phone="13912345678"
        )
        record_certification(
            session,
            alive,
            "home_visit",
            operator="li",
            at=dt.datetime(2026, 11, 20, 10, 0),
            evidence={"home_visit": "SM20261120-0001"},
        )
        outside = make_person(session, seq=4, region_code="610102")
        record_certification(session, outside, "face", at=dt.datetime(2026, 11, 20, 10, 0))
        data, rows = reports.verification_roster_xlsx(
            session, officer, "45", dt.date(2026, 11, 1), dt.date(2026, 11, 30), today=TODAY
        )
        assert session.scalars(select(AuditLog.action)).all()[-1] == "report.exported"
    assert rows == 1
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A1"].value == "领取社会保险待遇资格核查确认花名册"
    header = [sheet.cell(row=4, column=c).value for c in range(1, 12)]
    assert header == [
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
    ]
    assert [sheet.cell(row=5, column=c).value for c in (11, 12)] == [
        "基本状况",
        "死亡时间 (年月日)",
    ]
    line = [sheet.cell(row=6, column=c).value for c in range(1, 13)]
    assert line[:7] == [1, "P0003", "韦秀英", "男", id_number(3), "1952年03月", "2026年11月20日"]
    assert line[10] == "健在"


def test_roster_search_by_name_number_and_id_tail(db):
    with db.session() as session:
        reviewer = make_staff(session, regions=["61"])
        wang = make_person(session, name="王秀兰", seq=3)
        make_person(session, name="王建国", seq=4, region_code="450103")
        assert people.search(session, reviewer, "王") == [wang]
        assert people.search(session, reviewer, "P0003") == [wang]
        assert people.search(session, reviewer, id_number(3)[-4:]) == [wang]
        with pytest.raises(people.SearchRefused):
            people.search(session, reviewer, id_number(3))
        file = people.person_file(session, reviewer, wang.public_id, today=TODAY)
        assert file.person is wang and file.standing.window is not None
        with pytest.raises(people.PersonNotFound):
            other = make_person(session, seq=5, region_code="450103")
            people.person_file(session, reviewer, other.public_id, today=TODAY)
        viewed = session.scalars(select(AuditLog).where(AuditLog.action == "person.viewed")).all()
        assert [entry.target_id for entry in viewed] == [wang.public_id]
