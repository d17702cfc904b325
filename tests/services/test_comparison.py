"""Information comparison (shanxi-2018-certification-rules.txt 一(二), 二(一)–(二)), the Shanxi
pending list sent back by a unit (二(三), 三(一)), and the payroll report — on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from services.comparison import import_comparison_file
from services.models import (
    CertificationRecord,
    ComparisonRecord,
    PaymentStatusChange,
    PendingVerification,
    Person,
)
from services.payroll import write_payroll_report
from services.verification import (
    COLUMNS,
    HEADER_ROW,
    export_pending_sheet,
    pending_by_unit,
    record_returned_sheet,
)
from tests.support import id_number, make_person

D = dt.date
TODAY = D(2026, 6, 15)
SHANXI, XUNWU = "140105", "360734"


def _csv(path, rows, header=("source", "kind", "id_number", "date")):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _people(db):
    with db.session() as session:
        traveller = make_person(
            session, seq=11, region_code=SHANXI, last_certified_on=D(2025, 7, 1)
        )
        deceased = make_person(session, seq=12, region_code=SHANXI, last_certified_on=D(2025, 7, 1))
        elsewhere = make_person(session, seq=13, region_code=XUNWU, last_certified_on=D(2025, 7, 1))
        return traveller.id, deceased.id, elsewhere.id


def _state(db, person_id):
    with db.session() as session:
        person = session.get(Person, person_id)
        records = session.scalar(
            select(func.count())
            .select_from(CertificationRecord)
            .where(CertificationRecord.person_id == person_id)
        )
        return str(person.status), person.last_certified_on, records


def test_shanxi_2_1_train_record_certifies_and_2_2_death_record_stops(db, tmp_path):
    """二(一): 乘座火车记录 → 具备资格, counted as a certification by information comparison;
    二(二): 死亡信息 → 停发, with its date and reason."""
    traveller, deceased, _ = _people(db)
    path = _csv(
        tmp_path / "compare.csv",
        [
            ("铁路", "train", id_number(11), "2026-05-03"),
            ("民政", "死亡", id_number(12), "2026-04-20"),
        ],
    )
    summary = import_comparison_file(db, path, today=TODAY)
    assert summary.rejected == [] and (summary.certified, summary.stopped) == (1, 1)
    assert _state(db, traveller) == ("normal", D(2026, 5, 3), 1)
    with db.session() as session:
        record = session.scalars(select(CertificationRecord)).one()
        assert record.method == "info_comparison"
        stop = session.scalars(select(PaymentStatusChange)).one()
        assert (stop.person_id, stop.status, stop.effective_on) == (
            deceased,
            "stopped",
            D(2026, 4, 20),
        )
        assert "死亡" in stop.reason
    assert _state(db, deceased)[0] == "stopped"


def test_reimporting_the_same_file_changes_nothing(db, tmp_path):
    traveller, deceased, _ = _people(db)
    path = _csv(
        tmp_path / "compare.csv",
        [
            ("民航", "flight", id_number(11), "2026-05-03"),
            ("公安", "missing", id_number(12), "2026-03-01"),
        ],
    )
    import_comparison_file(db, path, today=TODAY)
    before = (_state(db, traveller), _state(db, deceased))
    again = import_comparison_file(db, path, today=TODAY)
    assert (again.stored, again.certified, again.stopped, again.unchanged) == (0, 0, 0, 2)
    assert (_state(db, traveller), _state(db, deceased)) == before
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ComparisonRecord)) == 2
        assert session.scalar(select(func.count()).select_from(PaymentStatusChange)) == 1


def test_bad_rows_are_reported_by_row_number_and_never_applied(db, tmp_path):
    """Unknown ID, a duplicate, a death date in the future, travel after a death (also when the
    death comes later in the file), a region that does not certify by comparison."""
    traveller, deceased, elsewhere = _people(db)
    path = _csv(
        tmp_path / "bad.csv",
        [
            ("铁路", "train", id_number(11), "2026-05-03"),  # row 2: fine
            ("铁路", "train", id_number(11), "2026-05-03"),  # row 3: duplicate of row 2
            ("铁路", "train", id_number(77), "2026-05-03"),  # row 4: not on the roster
            ("民航", "flight", id_number(12), "2026-05-10"),  # row 5: after the death in row 6
            ("民政", "death", id_number(12), "2026-05-01"),  # row 6: fine
            ("民政", "death", id_number(11), "2026-07-01"),  # row 7: in the future
            ("卫健", "health_checkup", id_number(13), "2026-05-03"),  # row 8: Jiangxi
            ("卫健", "bungee", id_number(11), "2026-05-03"),  # row 9: unknown kind
            ("卫健", "train", id_number(11), "2026-02-30"),  # row 10: no such date
        ],
    )
    summary = import_comparison_file(db, path, today=TODAY)
    assert summary.rejected_rows == [3, 4, 5, 7, 8, 9, 10]
    assert "第 2 行" in summary.reason_for(3)
    assert "不在名册" in summary.reason_for(4) and id_number(77) not in summary.format()
    assert "晚于停发日期" in summary.reason_for(5)
    assert "晚于今天" in summary.reason_for(7)
    assert "江西" in summary.reason_for(8)
    assert "bungee" in summary.reason_for(9)
    assert "无法识别" in summary.reason_for(10)
    assert _state(db, traveller) == ("normal", D(2026, 5, 3), 1)  # row 2 only; row 7 not applied
    assert _state(db, deceased) == ("stopped", D(2025, 7, 1), 0)
    assert _state(db, elsewhere) == ("normal", D(2025, 7, 1), 0)


def test_a_later_travel_record_never_reverses_a_stop(db, tmp_path):
    """二(二): stopped on a death record; a later import's train record does not bring it back."""
    _, deceased, _ = _people(db)
    import_comparison_file(
        db,
        _csv(tmp_path / "a.csv", [("民政", "cremation", id_number(12), "2026-03-01")]),
        today=TODAY,
    )
    later = import_comparison_file(
        db, _csv(tmp_path / "b.csv", [("铁路", "train", id_number(12), "2026-06-01")]), today=TODAY
    )
    assert later.rejected_rows == [2]
    assert _state(db, deceased) == ("stopped", D(2025, 7, 1), 0)


def test_missing_columns_and_xlsx_with_chinese_headers(db, tmp_path):
    traveller, _, _ = _people(db)
    broken = _csv(tmp_path / "broken.csv", [("x", "train")], header=("来源", "类型"))
    summary = import_comparison_file(db, broken, today=TODAY)
    assert summary.errors and "id_number" in summary.errors[0]
    book = Workbook()
    book.active.append(["来源", "比对类型", "身份证号码", "日期"])
    book.active.append(["卫健", "健康体检", id_number(11), dt.datetime(2026, 4, 2)])
    book.save(tmp_path / "compare.xlsx")
    summary = import_comparison_file(db, tmp_path / "compare.xlsx", today=TODAY)
    assert summary.rejected == [] and summary.certified == 1
    assert _state(db, traveller)[1] == D(2026, 4, 2)


def test_a_suspended_person_certified_by_comparison_resumes_with_back_pay(db, tmp_path):
    """二(二) last paragraph: 仍然具备领取资格的及时办理待遇恢复或补发."""
    traveller, _, _ = _people(db)
    with db.session() as session:
        person = session.get(Person, traveller)
        person.status = "suspended"
        session.add(
            PaymentStatusChange(person_id=traveller, status="suspended", effective_on=D(2026, 3, 1))
        )
    import_comparison_file(
        db, _csv(tmp_path / "c.csv", [("铁路", "train", id_number(11), "2026-05-03")]), today=TODAY
    )
    with db.session() as session:
        resumed = session.scalars(
            select(PaymentStatusChange).where(PaymentStatusChange.status == "resumed")
        ).one()
        assert (resumed.back_pay_from, resumed.back_pay_months) == (D(2026, 3, 1), 3)


def _pending(db, seq, unit="太原钢铁公司"):
    with db.session() as session:
        person = make_person(
            session, seq=seq, region_code=SHANXI, last_certified_on=D(2025, 5, 20), unit_name=unit
        )
        session.add(
            PendingVerification(
                person_id=person.id,
                unit_name=unit,
                due_date=D(2026, 5, 20),
                listed_on=D(2026, 5, 21),
                deadline=D(2026, 8, 21),
            )
        )
        return person.id, person.person_no


def test_shanxi_3_1_pending_sheet_goes_to_the_unit_and_its_answers_are_recorded(db, tmp_path):
    """三(一)1 附件1 filled by the unit; eligible → certified and resumed with back pay,
    lost (三(一)3) → stopped, unreachable (三(一)4) → suspended."""
    alive, alive_no = _pending(db, 21)
    gone, gone_no = _pending(db, 22)
    away, away_no = _pending(db, 23)
    _pending(db, 24, unit="晋中供电局")
    with db.session() as session:
        session.get(Person, alive).status = "suspended"
        session.add(
            PaymentStatusChange(person_id=alive, status="suspended", effective_on=D(2026, 6, 1))
        )
        assert {unit: len(rows) for unit, rows in pending_by_unit(session).items()} == {
            "太原钢铁公司": 3,
            "晋中供电局": 1,
        }
        sheet = tmp_path / "待核实人员确认表.xlsx"
        assert export_pending_sheet(session, "太原钢铁公司", sheet) == 3
    book = load_workbook(sheet)
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[HEADER_ROW - 1] == COLUMNS
    assert all(id_number(seq) not in str(rows) for seq in (21, 22, 23))  # masked
    answers = {
        alive_no: ("上门核实", "√", None),
        gone_no: ("电话", None, "√"),
        away_no: ("长期联系不到", None, None),
    }
    column = {name: i + 1 for i, name in enumerate(COLUMNS)}
    for r in range(HEADER_ROW + 1, HEADER_ROW + 4):
        how, yes, no = answers[book.active.cell(r, column["个人编号"]).value]
        book.active.cell(r, column["确认方式"], how)
        book.active.cell(r, column["经确认具备领取资格"], yes)
        book.active.cell(r, column["经确认丧失领取资格"], no)
        if no:
            book.active.cell(r, column["停发原因"], "死亡")
            book.active.cell(r, column["停发时间"], "2026-06-20")
    book.save(sheet)
    with db.session() as session:
        summary = record_returned_sheet(session, sheet, operator="clerk", today=D(2026, 8, 1))
    assert (summary.eligible, summary.lost, summary.unreachable, summary.rejected) == (1, 1, 1, [])
    assert _state(db, alive)[:2] == ("normal", D(2026, 8, 1))
    assert _state(db, gone)[0] == "stopped" and _state(db, away)[0] == "suspended"
    with db.session() as session:
        resumed = session.scalars(
            select(PaymentStatusChange).where(PaymentStatusChange.status == "resumed")
        ).one()
        assert resumed.back_pay_months == 3  # June, July, August
        assert list(pending_by_unit(session)) == ["晋中供电局"]
        again = record_returned_sheet(session, sheet, operator="clerk", today=D(2026, 8, 2))
        assert (again.eligible, again.lost, again.unreachable) == (0, 0, 0)


def test_payroll_report_lists_suspensions_and_resumptions_with_back_pay(db, tmp_path):
    with db.session() as session:
        person = make_person(session, seq=31, region_code=XUNWU, benefit_type="resident")
        session.add_all(
            [
                PaymentStatusChange(
                    person_id=person.id,
                    status="suspended",
                    effective_on=D(2026, 7, 1),
                    reason="逾期未认证",
                ),
                PaymentStatusChange(
                    person_id=person.id,
                    status="resumed",
                    effective_on=D(2026, 9, 10),
                    back_pay_from=D(2026, 7, 1),
                    back_pay_months=3,
                ),
            ]
        )
    with db.session() as session:
        assert write_payroll_report(session, D(2026, 7, 1), D(2026, 9, 30), tmp_path / "r.csv") == 2
        assert (
            write_payroll_report(session, D(2026, 8, 1), D(2026, 9, 30), tmp_path / "r.xlsx") == 1
        )
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as handle:
        lines = list(csv.reader(handle))
    assert [line[5] for line in lines[1:]] == ["暂停发放", "恢复发放"]
    assert lines[2][8:] == ["2026-07", "3"]
    assert id_number(31) not in str(lines)
    xlsx = list(load_workbook(tmp_path / "r.xlsx").active.iter_rows(values_only=True))
    assert xlsx[1][5:] == ("恢复发放", "2026-09-10", None, "2026-07", 3)


def test_the_embedded_sqlite_database_imports_the_same_way(sqlite_db, tmp_path):
    traveller, deceased, _ = _people(sqlite_db)
    path = _csv(
        tmp_path / "c.csv",
        [
            ("铁路", "train", id_number(11), "2026-05-03"),
            ("民航", "flight", id_number(12), "2026-05-10"),
            ("民政", "death", id_number(12), "2026-05-01"),
            ("铁路", "train", id_number(77), "2026-05-03"),
        ],
    )
    summary = import_comparison_file(sqlite_db, path, today=TODAY)
    assert summary.rejected_rows == [3, 5]
    assert _state(sqlite_db, traveller) == ("normal", D(2026, 5, 3), 1)
    assert _state(sqlite_db, deceased)[0] == "stopped"
    again = import_comparison_file(sqlite_db, path, today=TODAY)
    assert (again.stored, again.unchanged) == (0, 2)
