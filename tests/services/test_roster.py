"""Roster import: what a clerk notices — counts, row numbers, reasons — and what lands in the DB."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from services.models import BenefitType, PaymentStatus, Person
from services.roster import ImportSummary, import_roster_file, import_rows

HEADER = [
    "person_no",
    "name",
    "id_number",
    "region_code",
    "benefit_type",
    "phone",
    "unit_name",
    "status",
    "last_certified_on",
    "address",
    "overseas",
]
TODAY = dt.date(2026, 11, 23)
XINCHENG_1952 = "610102195203150020"


def make_id(prefix: str, birth: dt.date, sequence: int) -> str:
    body = f"{prefix}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def broken(number: str) -> str:
    """The same number with a wrong check digit."""
    return number[:-1] + ("1" if number[-1] == "0" else "0")


def person(n: int, **overrides) -> dict[str, str]:
    """A valid roster row; ``n`` makes person_no and ID number unique."""
    row = {
        "person_no": f"P{n:05d}",
        "name": "张建国",
        "id_number": make_id("140105", dt.date(1950, 1, 1) + dt.timedelta(days=n), 11),
        "region_code": "140000",
        "benefit_type": "enterprise",
        "phone": f"13800{n:06d}",
        "unit_name": "太原重型机器厂",
        "status": "normal",
        "last_certified_on": "2025-06-30",
        "address": "山西省太原市迎泽区",
        "overseas": "0",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict], *, encoding: str = "utf-8", header=HEADER) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list], header=HEADER) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def persons(database) -> dict[str, Person]:
    with database.session() as session:
        return {p.person_no: p for p in session.scalars(select(Person))}


def count(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Person))


# --------------------------------------------------------------------------- formats


def test_utf8_csv_is_imported_with_gender_and_birth_date_from_the_id_number(db, tmp_path):
    rows = [
        person(1, name="王秀兰", id_number=XINCHENG_1952, region_code="610102"),
        person(2, benefit_type="institution", status="suspended", overseas="1", phone=""),
        person(3, benefit_type="dependent", last_certified_on="", unit_name="", address=""),
    ]
    summary = import_roster_file(db, write_csv(tmp_path / "名册.csv", rows), today=TODAY)

    assert (summary.created, summary.updated, summary.unchanged) == (3, 0, 0)
    assert summary.rejected == [] and summary.warnings == [] and summary.ok
    stored = persons(db)
    wang = stored["P00001"]
    assert (wang.name, wang.gender, wang.birth_date) == ("王秀兰", "F", dt.date(1952, 3, 15))
    assert wang.region_code == "610102"
    assert wang.last_certified_on == dt.date(2025, 6, 30)
    assert wang.phone == "13800000001"
    second = stored["P00002"]
    assert second.gender == "M"
    assert second.benefit_type is BenefitType.institution
    assert second.status is PaymentStatus.suspended
    assert second.overseas is True and second.phone is None
    third = stored["P00003"]
    assert third.last_certified_on is None and third.unit_name is None and third.address is None


def test_gbk_csv_with_chinese_headers_is_detected(db, tmp_path):
    chinese_header = [
        "个人编号",
        "姓名",
        "身份证号码",
        "参保地行政区划",
        "待遇类型",
        "联系电话",
        "原工作单位",
        "待遇状态",
        "上次认证日期",
        "现居住地",
        "是否居住境外",
    ]
    rows = [
        dict(zip(chinese_header, person(1, name="钟水英").values(), strict=True)),
        dict(
            zip(
                chinese_header,
                person(2, benefit_type="城乡居民", status="暂停发放", overseas="否").values(),
                strict=True,
            )
        ),
    ]
    path = write_csv(tmp_path / "gbk.csv", rows, encoding="gbk", header=chinese_header)
    assert "钟水英".encode("gbk") in path.read_bytes()

    summary = import_roster_file(db, path, today=TODAY)

    assert summary.created == 2 and summary.ok, summary.format()
    stored = persons(db)
    assert stored["P00001"].name == "钟水英"
    assert stored["P00001"].unit_name == "太原重型机器厂"
    assert stored["P00002"].benefit_type is BenefitType.resident
    assert stored["P00002"].status is PaymentStatus.suspended
    assert stored["P00002"].overseas is False


def test_utf8_with_bom_and_excel_style_line_endings(db, tmp_path):
    path = tmp_path / "bom.csv"
    lines = [",".join(HEADER)] + [",".join(person(n, name="李桂英").values()) for n in (1, 2)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8-sig"))

    summary = import_roster_file(db, path, today=TODAY)

    assert summary.created == 2 and summary.ok, summary.format()
    assert {p.name for p in persons(db).values()} == {"李桂英"}


def test_xlsx_with_excel_cell_types(db, tmp_path):
    good = person(1)
    rows = [
        [
            12345,  # person_no typed as a number
            "黄秀英",
            good["id_number"],  # ID number as text, as it must be
            450000,  # region code as a number
            "institution",
            13912345678,  # phone as a number
            None,
            "normal",
            dt.datetime(2025, 10, 10),  # a real Excel date cell
            None,
            0,
        ],
        [
            "P00002",
            "韦家宝",
            float(person(2)["id_number"]),  # Excel turned the ID number into a number
            "450000",
            "work_injury",
            None,
            None,
            "normal",
            None,
            None,
            None,
        ],
    ]
    summary = import_roster_file(db, write_xlsx(tmp_path / "名册.xlsx", rows), today=TODAY)

    assert summary.created == 1
    assert summary.rejected_rows == [3]
    assert "Excel 存成了数字" in summary.reason_for(3)
    huang = persons(db)["12345"]
    assert huang.name == "黄秀英"
    assert huang.region_code == "450000"
    assert huang.phone == "13912345678"
    assert huang.last_certified_on == dt.date(2025, 10, 10)
    assert huang.overseas is False
    assert huang.gender == "M" and huang.birth_date == dt.date(1950, 1, 2)


def test_xlsx_row_numbers_count_blank_rows(db, tmp_path):
    rows = [list(person(1).values()), [None] * len(HEADER), list(person(2, id_number="1").values())]
    summary = import_roster_file(db, write_xlsx(tmp_path / "gaps.xlsx", rows), today=TODAY)
    assert summary.created == 1
    assert summary.rows == 2
    assert summary.rejected_rows == [4]


# --------------------------------------------------------------------------- bad rows


def test_every_kind_of_bad_row_is_rejected_with_its_row_number_and_reason(db, tmp_path):
    rows = [
        person(1),  # row 2
        person(2, id_number=broken(person(2)["id_number"])),  # 3: checksum
        person(3, name="王秀蘭"),  # 4: traditional character
        person(4, region_code="61010"),  # 5: not 6 digits
        person(5, benefit_type="pension"),  # 6: unknown benefit type
        person(6, last_certified_on="2025-13-45"),  # 7: unparseable date
        person(1, name="张建国"),  # 8: duplicate person_no of row 2
        {},  # 9: an empty line — skipped, not counted
        person(7, region_code="330102"),  # 10: outside the configured provinces: warning
        person(8, status="已死亡"),  # 11: unknown status
        person(9, overseas="maybe"),  # 12: overseas not 0/1
        person(10, last_certified_on="yesterday"),  # 13: unparseable date
        person(11, name="", id_number=""),  # 14: two problems in one row
        person(12),  # 15
    ]
    summary = import_roster_file(db, write_csv(tmp_path / "bad.csv", rows), today=TODAY)

    assert summary.created == 3  # rows 2, 10, 15
    assert count(db) == 3
    assert summary.rows == 13
    assert summary.rejected_rows == [3, 4, 5, 6, 7, 8, 11, 12, 13, 14]
    assert "校验位不对" in summary.reason_for(3)
    assert "「蘭」应为「兰」" in summary.reason_for(4)
    assert "应为6位数字" in summary.reason_for(5)
    assert "待遇类型「pension」不认识" in summary.reason_for(6)
    assert "上次认证日期「2025-13-45」无法识别" in summary.reason_for(7)
    assert "个人编号 P00001 与第 2 行重复（已按第 2 行导入）" in summary.reason_for(8)
    assert "待遇状态「已死亡」不认识" in summary.reason_for(11)
    assert "应为 1（是）或 0（否）" in summary.reason_for(12)
    assert "「yesterday」无法识别" in summary.reason_for(13)
    assert summary.reason_for(14) == "姓名为空；身份证号码为空"
    assert [(w.row, w.person_no) for w in summary.warnings] == [(10, "P00007")]
    assert "330102 不在已配置的地区" in summary.warnings[0].message
    assert persons(db)["P00007"].region_code == "330102"
    assert not summary.ok

    text = summary.format()
    assert "第 4 行 row 4（P00003）" in text
    assert "新增 created 3" in text and "拒绝 rejected 10" in text
    assert "第 10 行 row 10（P00007）" in text


def test_no_full_id_number_appears_in_the_summary(db, tmp_path):
    rows = [person(1), person(2, person_no="P00099", id_number=person(1)["id_number"])]
    rows.append(person(3, id_number=broken(person(3)["id_number"])))
    summary = import_roster_file(db, write_csv(tmp_path / "ids.csv", rows), today=TODAY)
    text = summary.format()
    for row in rows:
        assert row["id_number"] not in text
    # the same ID number twice (two benefit types for one person is legitimate): a warning
    assert summary.created == 2
    assert [w.row for w in summary.warnings] == [3]
    assert "与第 2 行相同" in summary.warnings[0].message


def test_a_later_duplicate_of_a_rejected_row_is_not_imported_either(db, tmp_path):
    rows = [person(1, benefit_type="?"), person(1)]
    summary = import_roster_file(db, write_csv(tmp_path / "dup.csv", rows), today=TODAY)
    assert summary.created == 0
    assert summary.rejected_rows == [2, 3]
    assert "第 2 行也未导入" in summary.reason_for(3)


def test_missing_required_columns_are_reported_once_and_nothing_is_imported(db, tmp_path):
    header = ["person_no", "name", "region_code", "phone"]
    path = write_csv(tmp_path / "short.csv", [person(n) for n in range(1, 6)], header=header)

    summary = import_roster_file(db, path, today=TODAY)

    assert len(summary.errors) == 1
    assert "id_number（身份证号码）" in summary.errors[0]
    assert "benefit_type（待遇类型）" in summary.errors[0]
    assert summary.rejected == [] and summary.created == 0 and count(db) == 0
    assert summary.format().count("缺少必需的列") == 1


def test_extra_columns_are_ignored_and_missing_optional_columns_are_fine(db, tmp_path):
    header = ["备注", "person_no", "name", "id_number", "region_code", "benefit_type"]
    rows = [person(1) | {"备注": "随便写"}]
    summary = import_roster_file(
        db, write_csv(tmp_path / "min.csv", rows, header=header), today=TODAY
    )
    assert summary.created == 1 and summary.ok
    stored = persons(db)["P00001"]
    assert stored.status is PaymentStatus.normal
    assert stored.phone is None and stored.overseas is False


def test_traditional_names_are_caught_but_simplified_name_characters_are_not(db, tmp_path):
    rows = [
        person(1, name="劉德華"),
        person(2, name="李乾"),  # 乾 (qián) is a standard simplified character in names
        person(3, name="於丹"),  # the surname 於 is kept in the 2013 standard list
        person(4, name="买买提·艾力"),
        person(5, name="王 秀兰"),  # a stray space
    ]
    summary = import_roster_file(db, write_csv(tmp_path / "names.csv", rows), today=TODAY)
    assert summary.rejected_rows == [2]
    assert "「劉」应为「刘」、「華」应为「华」" in summary.reason_for(2)
    assert summary.created == 4
    assert persons(db)["P00005"].name == "王秀兰"


def test_sql_and_html_in_text_fields_are_stored_verbatim(db, tmp_path):
    sql = "Robert'); DROP TABLE persons;--"
    html = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    rows = [
        person(1, unit_name=sql, address=html),
        person(2, name="<b>王</b>"),
        person(3, person_no="P3'; DELETE FROM persons;--"),
    ]
    summary = import_roster_file(db, write_csv(tmp_path / "evil.csv", rows), today=TODAY)

    assert summary.created == 1
    assert summary.rejected_rows == [3, 4]
    assert "姓名中有不应出现的字符" in summary.reason_for(3)
    assert "只能包含字母、数字" in summary.reason_for(4)
    stored = persons(db)
    assert stored["P00001"].unit_name == sql
    assert stored["P00001"].address == html
    assert count(db) == 1  # the table is still there and intact


def test_control_characters_and_line_breaks_are_removed_from_text(db, tmp_path):
    rows = [person(1, address="山西省\x00太原市\r\n迎泽区"), person(2, id_number="123")]
    summary = import_roster_file(db, write_csv(tmp_path / "ctl.csv", rows), today=TODAY)
    assert summary.created == 1
    assert persons(db)["P00001"].address == "山西省太原市 迎泽区"
    # a quoted line break is one Excel row: the next record is still row 3
    assert summary.rejected_rows == [3]


def test_the_xincheng_1952_id_number_is_accepted(db, tmp_path):
    rows = [person(1, name="王秀兰", id_number=XINCHENG_1952, region_code="610102")]
    summary = import_roster_file(db, write_csv(tmp_path / "x.csv", rows), today=TODAY)
    assert summary.created == 1 and summary.ok and summary.warnings == []


def test_a_malformed_phone_is_a_warning_and_the_person_is_still_imported(db, tmp_path):
    rows = [person(1, phone="1391234"), person(2, phone="无"), person(3, phone="0771-5887824")]
    summary = import_roster_file(db, write_csv(tmp_path / "ph.csv", rows), today=TODAY)
    assert summary.created == 3 and summary.rejected == []
    assert [w.row for w in summary.warnings] == [2]
    assert "不是11位" in summary.warnings[0].message
    stored = persons(db)
    assert stored["P00001"].phone is None
    assert stored["P00002"].phone is None
    assert stored["P00003"].phone == "0771-5887824"


def test_dates_in_the_future_or_before_birth_are_rejected(db, tmp_path):
    rows = [
        person(1, last_certified_on="2027-01-01"),
        person(2, last_certified_on="1940-01-01"),
        person(3, last_certified_on="2025/7/1"),
        person(4, last_certified_on="2025年7月1日"),
        person(5, last_certified_on="20250701"),
    ]
    summary = import_roster_file(db, write_csv(tmp_path / "d.csv", rows), today=TODAY)
    assert summary.rejected_rows == [2, 3]
    assert "晚于今天" in summary.reason_for(2)
    assert "早于出生日期" in summary.reason_for(3)
    assert {p.last_certified_on for p in persons(db).values()} == {dt.date(2025, 7, 1)}


def test_unreadable_files_are_reported(db, tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"person_no,name\n\x80\xff\x81\xfe\n")
    assert "文字编码" in import_roster_file(db, garbage).errors[0]

    old_excel = tmp_path / "old.xls"
    old_excel.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert ".xls" in import_roster_file(db, old_excel).errors[0]

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert "无法读取" in import_roster_file(db, broken).errors[0]

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "空的" in import_roster_file(db, empty).errors[0]

    with pytest.raises(FileNotFoundError):
        import_roster_file(db, tmp_path / "missing.csv")
    assert count(db) == 0


# --------------------------------------------------------------------------- re-import


def test_reimporting_the_same_file_changes_nothing(db, tmp_path):
    path = write_csv(tmp_path / "r.csv", [person(n) for n in range(1, 6)])
    first = import_roster_file(db, path, today=TODAY)
    before = {no: (p.id, p.updated_at) for no, p in persons(db).items()}

    again = import_roster_file(db, path, today=TODAY)

    assert (first.created, first.unchanged) == (5, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert "未变 unchanged 5" in again.format()
    assert {no: (p.id, p.updated_at) for no, p in persons(db).items()} == before


def test_a_changed_row_updates_the_person(db, tmp_path):
    rows = [person(n) for n in range(1, 4)]
    import_roster_file(db, write_csv(tmp_path / "v1.csv", rows), today=TODAY)
    before = persons(db)["P00002"]

    rows[1] = person(2, phone="13999999999", address="江西省赣州市寻乌县", status="stopped")
    summary = import_roster_file(db, write_csv(tmp_path / "v2.csv", rows), today=TODAY)

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 2)
    assert summary.changes == [(3, "P00002", ("phone", "status", "address"))]
    assert "第 3 行 row 3（P00002）：联系电话、待遇状态、现居住地" in summary.format()
    after = persons(db)["P00002"]
    assert after.id == before.id
    assert after.phone == "13999999999"
    assert after.address == "江西省赣州市寻乌县"
    assert after.status is PaymentStatus.stopped
    assert after.updated_at >= before.updated_at
    assert count(db) == 3


def test_a_corrected_id_number_updates_gender_and_birth_date(db, tmp_path):
    import_rows(db, [person(1)], today=TODAY)
    corrected = make_id("140105", dt.date(1961, 4, 30), 20)
    summary = import_rows(db, [person(1, id_number=corrected)], today=TODAY)
    assert summary.updated == 1
    stored = persons(db)["P00001"]
    assert (stored.id_number, stored.gender, stored.birth_date) == (
        corrected,
        "F",
        dt.date(1961, 4, 30),
    )


def test_an_older_roster_does_not_erase_a_newer_certification(db, tmp_path):
    import_rows(db, [person(1, last_certified_on="2025-06-30")], today=TODAY)
    with db.session() as session:  # the person certified through the chatbot since
        session.scalars(select(Person)).one().last_certified_on = dt.date(2026, 6, 1)

    summary = import_rows(db, [person(1, last_certified_on="2025-06-30")], today=TODAY)

    assert summary.unchanged == 1
    assert persons(db)["P00001"].last_certified_on == dt.date(2026, 6, 1)
    newer = import_rows(db, [person(1, last_certified_on="2026-10-01")], today=TODAY)
    assert newer.updated == 1
    assert persons(db)["P00001"].last_certified_on == dt.date(2026, 10, 1)


def test_a_column_left_out_of_the_file_leaves_stored_values_alone(db, tmp_path):
    import_rows(db, [person(1, phone="13911112222", status="suspended")], today=TODAY)
    slim = {k: v for k, v in person(1).items() if k not in {"phone", "status"}}
    summary = import_rows(db, [slim], today=TODAY)
    assert summary.unchanged == 1
    stored = persons(db)["P00001"]
    assert stored.phone == "13911112222" and stored.status is PaymentStatus.suspended


def test_import_rows_accepts_dicts_with_chinese_keys_and_python_values(db):
    rows = [
        {
            "个人编号": "D1",
            "姓名": "谢观秀",
            "身份证号码": make_id("360734", dt.date(1941, 6, 6), 2),
            "参保地行政区划": "360734",
            "待遇类型": "城乡居民",
            "上次认证日期": dt.date(2026, 3, 1),
            "是否居住境外": True,
        }
    ]
    summary = import_rows(db, rows, today=TODAY)
    assert isinstance(summary, ImportSummary)
    assert summary.created == 1 and summary.ok
    stored = persons(db)["D1"]
    assert stored.benefit_type is BenefitType.resident
    assert stored.last_certified_on == dt.date(2026, 3, 1) and stored.overseas is True


def test_large_files_are_written_in_batches(db, tmp_path):
    rows = [person(n) for n in range(1, 4502)]
    rows[4000]["id_number"] = "bad"
    summary = import_roster_file(db, write_csv(tmp_path / "big.csv", rows), today=TODAY)
    assert (summary.created, summary.rejected_rows) == (4500, [4002])
    assert count(db) == 4500
    rows[4000] = person(4001)
    again = import_roster_file(db, write_csv(tmp_path / "big.csv", rows), today=TODAY)
    assert (again.created, again.unchanged, again.rejected) == (1, 4500, [])


def test_progress_bar_stays_silent_when_stderr_is_not_a_terminal(db, tmp_path, capsys):
    import_roster_file(db, write_csv(tmp_path / "p.csv", [person(1)]), progress=True)
    assert capsys.readouterr().err == ""


def test_progress_bar_is_shown_on_a_terminal(db, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    rows = [person(n) for n in range(1, 4)]
    import_roster_file(db, write_csv(tmp_path / "p.csv", rows), progress=True)
    assert "导入名册" in terminal.getvalue()
    assert "3/3" in terminal.getvalue()


def test_sqlite_imports_the_same_file_identically(db, sqlite_db, tmp_path):
    rows = [
        person(1, name="王秀兰", id_number=XINCHENG_1952, region_code="610102"),
        person(2, overseas="1", phone="", last_certified_on=""),
        person(3, name="王秀蘭"),
        person(4, region_code="330102", unit_name="<b>x</b>'--"),
    ]
    path = write_csv(tmp_path / "same.csv", rows)

    def outcome(database):
        first = import_roster_file(database, path, today=TODAY)
        again = import_roster_file(database, path, today=TODAY)
        people = sorted(
            (
                p.person_no,
                p.name,
                p.id_number,
                p.gender,
                p.birth_date,
                p.region_code,
                p.benefit_type,
                p.phone,
                p.unit_name,
                p.status,
                p.last_certified_on,
                p.address,
                p.overseas,
            )
            for p in persons(database).values()
        )
        counts = (first.created, first.updated, first.unchanged, first.rejected, first.warnings)
        return counts, (again.created, again.updated, again.unchanged), people

    on_postgres = outcome(db)
    assert on_postgres == outcome(sqlite_db)
    assert on_postgres[0][0] == 3 and on_postgres[1] == (0, 0, 3)
