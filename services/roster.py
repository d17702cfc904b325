"""名册导入：把养老金领取人员名册（CSV / Excel）导入数据库。

Roster format: ``docs/spec/interfaces.md`` ("Roster format"). One path for every
source: :func:`import_roster_file` reads CSV (UTF-8, UTF-8 with BOM, GBK/GB18030, or
UTF-16 "Unicode text" from Excel) and XLSX and hands dictionaries to :func:`import_rows`,
which the demo roster loader calls directly.

What a clerk sees:

* every bad row is rejected with its row number as Excel shows it (the header is row 1) and
  all of that row's problems in Chinese; the good rows are imported anyway;
* re-importing the same file changes nothing (``unchanged``); a changed row updates the
  person; rows are never duplicated (``person_no`` is the key);
* a missing required column is reported once and nothing is imported.

Rules worth knowing:

* gender and birth date come from the ID number, never from the file;
* a column missing from the file leaves that field of existing people alone; an empty cell
  in a present column clears it (optional fields) or takes the default (status → normal);
* ``last_certified_on`` never moves backwards: a certification recorded by this service
  after the roster was exported is kept when an older file is imported again;
* a malformed phone number is a warning (the person is imported, the phone is not
  changed), because rejecting the row would leave the person "查无此人" in the chatbot.

Speed: rows are validated in Python, then written in batches — one ``SELECT … WHERE
person_no IN (…)`` per batch, one executemany INSERT and one executemany UPDATE — so 100,000
rows take seconds, not minutes (``bench/import_roster.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
import time
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from services.clock import system_clock
from services.db import Database
from services.idcard import InvalidIdNumber, mask_id_number, parse_id_number
from services.models import BenefitType, PaymentStatus, Person, utcnow

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportSummary",
    "RowProblem",
    "import_roster_file",
    "import_rows",
    "known_region_prefixes",
    "traditional_characters",
]

BATCH_SIZE = 2000

# Canonical column → what a clerk calls it (used in messages).
COLUMNS: dict[str, str] = {
    "person_no": "个人编号",
    "name": "姓名",
    "id_number": "身份证号码",
    "region_code": "参保地行政区划",
    "benefit_type": "待遇类型",
    "phone": "联系电话",
    "unit_name": "原工作单位",
    "status": "待遇状态",
    "last_certified_on": "上次认证日期",
    "address": "现居住地",
    "overseas": "是否居住境外",
}
REQUIRED_COLUMNS = ("person_no", "name", "id_number", "region_code", "benefit_type")

# Header cells clerks actually write, in Chinese, mapped to the contract's column names.
HEADER_ALIASES: dict[str, str] = {
    **{name: name for name in COLUMNS},
    **{label: name for name, label in COLUMNS.items()},
    "个人编号(person_no)": "person_no",
    "人员编号": "person_no",
    "编号": "person_no",
    "身份证号": "id_number",
    "公民身份号码": "id_number",
    "证件号码": "id_number",
    "参保地": "region_code",
    "行政区划": "region_code",
    "行政区划代码": "region_code",
    "参保地行政区划代码": "region_code",
    "待遇种类": "benefit_type",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "电话": "phone",
    "工作单位": "unit_name",
    "管理单位": "unit_name",
    "单位名称": "unit_name",
    "原工作单位/管理单位": "unit_name",
    "状态": "status",
    "发放状态": "status",
    "最后认证日期": "last_certified_on",
    "最近认证日期": "last_certified_on",
    "认证日期": "last_certified_on",
    "地址": "address",
    "居住地址": "address",
    "现住址": "address",
    "境外": "overseas",
    "居住境外": "overseas",
    "是否境外": "overseas",
}

BENEFIT_ALIASES: dict[str, str] = {
    **{b.value: b.value for b in BenefitType},
    "机关事业": "institution",
    "机关事业单位": "institution",
    "机关事业单位养老保险": "institution",
    "企业职工": "enterprise",
    "企业": "enterprise",
    "企业职工基本养老保险": "enterprise",
    "城乡居民": "resident",
    "城乡居民养老保险": "resident",
    "居民": "resident",
    "失业": "unemployment",
    "失业保险": "unemployment",
    "工伤": "work_injury",
    "工伤长期待遇": "work_injury",
    "供养直系亲属": "dependent",
    "供养亲属": "dependent",
}
STATUS_ALIASES: dict[str, str] = {
    **{s.value: s.value for s in PaymentStatus},
    "正常": "normal",
    "正常发放": "normal",
    "暂停": "suspended",
    "暂停发放": "suspended",
    "停发": "stopped",
    "停止发放": "stopped",
    "终止": "stopped",
}
_TRUE = {"1", "是", "y", "yes", "true", "t"}
_FALSE = {"", "0", "否", "n", "no", "false", "f"}
_EMPTY_PHONE = {"无", "没有", "-", "—", "/", "null", "none", "n/a"}

MAX_LENGTH = {"person_no": 32, "name": 64, "unit_name": 128, "address": 256}

# Characters OpenCC's t2s maps to another character although the 2013 通用规范汉字表 keeps
# them for names (乾 qián, the surname 於, 哪吒, 昇/陞 in given names, 赵孟頫 …).
NAME_CHARACTERS_KEPT = frozenset("乾於吒昇陞蒐祕頫")

_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NAME_DOTS = re.compile(r"[.・•‧∙]")
_PERSON_NO = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-/]*")
_REGION_CODE = re.compile(r"\d{6}")
_PHONE = re.compile(r"\+?\d[\d\-]{4,19}")
_DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class RowProblem:
    row: int  # as Excel shows it: the header is row 1
    message: str
    person_no: str | None = None


@dataclass
class ImportSummary:
    source: str | None = None
    rows: int = 0  # non-empty data rows read
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the whole file could not be imported
    changes: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the file was read and no row was rejected."""
        return not self.errors and not self.rejected

    @property
    def rejected_rows(self) -> list[int]:
        return [problem.row for problem in self.rejected]

    def reason_for(self, row: int) -> str | None:
        """The rejection reason of one row, or None when that row was not rejected."""
        return next((p.message for p in self.rejected if p.row == row), None)

    def format(self, limit: int = 50) -> str:
        """A summary for the terminal or the console page, in Chinese with English labels."""
        title = "名册导入 Roster import" + (f"：{self.source}" if self.source else "")
        lines = [title]
        for error in self.errors:
            lines.append(f"  ✗ 无法导入 Not imported：{error}")
        if self.errors:
            return "\n".join(lines)
        lines.append(
            f"  共 {self.rows} 行 rows：新增 created {self.created} · 更新 updated {self.updated}"
            f" · 未变 unchanged {self.unchanged} · 拒绝 rejected {len(self.rejected)}"
            f" · 提示 warnings {len(self.warnings)}  ({self.seconds:.1f} s)"
        )
        sections = (
            ("拒绝的行（未导入，请改正后重新导入） Rejected rows (not imported):", self.rejected),
            ("提示（已导入，请核对） Warnings (imported, please check):", self.warnings),
        )
        for heading, problems in sections:
            if not problems:
                continue
            lines.append(heading)
            for problem in problems[:limit]:
                who = f"（{problem.person_no}）" if problem.person_no else ""
                lines.append(f"  第 {problem.row} 行 row {problem.row}{who}：{problem.message}")
            if len(problems) > limit:
                lines.append(
                    f"  ……另有 {len(problems) - limit} 行 and {len(problems) - limit} more"
                )
        if self.changes and len(self.changes) <= limit:
            lines.append("更新的人员 Updated people:")
            for row, person_no, fields in self.changes:
                labels = "、".join(COLUMNS.get(f, f) for f in fields)
                lines.append(f"  第 {row} 行 row {row}（{person_no}）：{labels}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- regions


@lru_cache(maxsize=1)
def known_region_prefixes() -> dict[str, str]:
    """Region-code prefixes with a policy in ``services/data/regions.yaml`` → province name."""
    from services import regions

    return {
        key: regions.policy_for(key).province
        for key in sorted(regions.region_keys())
        if key != regions.DEFAULT_KEY
    }


def _region_known(code: str) -> bool:
    return any(code.startswith(prefix) for prefix in known_region_prefixes())


# --------------------------------------------------------------------------- names


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def traditional_characters(name: str) -> list[tuple[str, str]]:
    """Traditional characters in a name and their simplified forms: ``[('蘭', '兰')]``."""
    converted = _t2s().convert(name)
    if converted == name:
        return []
    if len(converted) != len(name):  # a phrase mapping changed the length: go char by char
        converted = "".join(_t2s().convert(ch) for ch in name)
        if len(converted) != len(name):
            return []
    found = []
    for original, simple in zip(name, converted, strict=True):
        kept = original == simple or original in NAME_CHARACTERS_KEPT
        if not kept and (original, simple) not in found:
            found.append((original, simple))
    return found


def _is_name_character(ch: str) -> bool:
    if ch in "· ":
        return True
    category = unicodedata.category(ch)
    return category == "Lo" or (category in {"Lu", "Ll"} and ch.isascii())


# --------------------------------------------------------------------------- cells


def _text(value: Any) -> str:
    """A cell as stripped text; numbers from Excel lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        value = value.date()
    return str(value).strip().strip("\u3000\u00a0\ufeff")


def _compact(value: Any) -> str:
    """Codes and numbers: NFKC (full-width → half-width) and no spaces at all."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", _text(value)))


def _free_text(value: Any) -> str:
    """Unit names and addresses: kept verbatim except control characters and line breaks."""
    text = _CONTROL.sub("", _text(value))
    return re.sub(r"[\r\n\t]+", " ", text).strip()


def _parse_date(value: Any) -> dt.date | None:
    """YYYY-MM-DD and the usual variants; Excel dates; raises ValueError when unreadable."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = int(value)
        if 10000 <= number < 80000 and number == value:  # an Excel serial day number
            return _EXCEL_EPOCH + dt.timedelta(days=number)
        value = str(number)
    text = _compact(value)
    if not text:
        return None
    match = _DATE.fullmatch(text) or _DATE_COMPACT.fullmatch(text)
    if not match:
        raise ValueError(text)
    year, month, day = (int(part) for part in match.groups())
    return dt.date(year, month, day)  # ValueError for 2023-02-30


# --------------------------------------------------------------------------- validation


_KEEP = object()  # "leave the stored value alone"


class _RowChecker:
    def __init__(self, today: dt.date):
        self.today = today

    def check(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
        """Validated values (only the columns present), problems, warnings."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        warnings: list[str] = []

        person_no = _compact(row.get("person_no"))
        if not person_no:
            problems.append("个人编号为空")
        elif len(person_no) > MAX_LENGTH["person_no"]:
            problems.append(f"个人编号超过{MAX_LENGTH['person_no']}位")
        elif not _PERSON_NO.fullmatch(person_no):
            problems.append(f"个人编号「{person_no}」只能包含字母、数字和 - _ /")
        values["person_no"] = person_no

        values["name"] = self._name(row.get("name"), problems)
        self._id_number(row.get("id_number"), values, problems, warnings)

        region = _compact(row.get("region_code"))
        if not region:
            problems.append("参保地行政区划代码为空")
        elif not _REGION_CODE.fullmatch(region):
            problems.append(f"参保地行政区划代码「{region}」应为6位数字，例如 610102")
        elif not _region_known(region):
            names = "、".join(dict.fromkeys(known_region_prefixes().values()))
            warnings.append(
                f"参保地行政区划代码 {region} 不在已配置的地区（{names}），将按全国默认规则办理"
            )
        values["region_code"] = region

        benefit = _compact(row.get("benefit_type"))
        if not benefit:
            problems.append("待遇类型为空")
        elif benefit.lower() not in BENEFIT_ALIASES:
            problems.append(
                f"待遇类型「{benefit}」不认识，应为 institution（机关事业）、enterprise（企业职工）、"
                "resident（城乡居民）、unemployment（失业）、work_injury（工伤长期待遇）"
                "或 dependent（供养直系亲属）"
            )
        else:
            values["benefit_type"] = BENEFIT_ALIASES[benefit.lower()]

        if "status" in row:
            status = _compact(row["status"])
            if not status:
                values["status"] = "normal"
            elif status.lower() in STATUS_ALIASES:
                values["status"] = STATUS_ALIASES[status.lower()]
            else:
                problems.append(
                    f"待遇状态「{status}」不认识，应为 normal（正常）、suspended（暂停）"
                    "或 stopped（停发）"
                )

        if "last_certified_on" in row:
            raw = row["last_certified_on"]
            try:
                certified = _parse_date(raw)
            except (ValueError, OverflowError):
                problems.append(
                    f"上次认证日期「{_text(raw)}」无法识别，请写成 2024-05-31 这样的日期"
                )
            else:
                if certified and certified > self.today:
                    problems.append(f"上次认证日期 {certified.isoformat()} 晚于今天")
                elif certified and "birth_date" in values and certified < values["birth_date"]:
                    problems.append(f"上次认证日期 {certified.isoformat()} 早于出生日期")
                else:
                    values["last_certified_on"] = certified

        if "phone" in row:
            phone = _compact(row["phone"])
            if phone.lower() in _EMPTY_PHONE:
                phone = ""
            if phone and not _PHONE.fullmatch(phone):
                warnings.append(f"联系电话「{_text(row['phone'])}」格式不对，未导入电话")
                values["phone"] = _KEEP
            elif phone.isdigit() and phone.startswith("1") and len(phone) != 11:
                warnings.append(f"手机号码「{phone}」不是11位，未导入电话")
                values["phone"] = _KEEP
            else:
                values["phone"] = phone or None

        for column in ("unit_name", "address"):
            if column in row:
                text = _free_text(row[column])
                if len(text) > MAX_LENGTH[column]:
                    problems.append(f"{COLUMNS[column]}超过{MAX_LENGTH[column]}个字")
                values[column] = text or None

        if "overseas" in row:
            raw = row["overseas"]
            flag = _compact(raw).lower()
            if flag in _TRUE:
                values["overseas"] = True
            elif flag in _FALSE:
                values["overseas"] = False
            else:
                problems.append(f"是否居住境外「{_text(raw)}」应为 1（是）或 0（否）")
        return values, problems, warnings

    def _name(self, raw: Any, problems: list[str]) -> str:
        name = unicodedata.normalize("NFKC", _CONTROL.sub("", _text(raw)))
        name = _NAME_DOTS.sub("·", _SPACES.sub(" ", name)).strip()
        if not any(ch.isascii() and ch.isalpha() for ch in name):
            name = name.replace(" ", "")  # 王 秀兰 → 王秀兰: the chatbot looks names up exactly
        if not name:
            problems.append("姓名为空")
            return name
        if len(name) > MAX_LENGTH["name"]:
            problems.append(f"姓名超过{MAX_LENGTH['name']}个字")
        bad = [ch for ch in dict.fromkeys(name) if not _is_name_character(ch)]
        if bad:
            shown = "、".join(f"「{ch}」" for ch in bad[:5])
            problems.append(f"姓名中有不应出现的字符 {shown}")
        traditional = traditional_characters(name)
        if traditional:
            fixes = "、".join(f"「{t}」应为「{s}」" for t, s in traditional)
            problems.append(f"姓名「{name}」含繁体字：{fixes}，请改为简体")
        return name

    def _id_number(
        self, raw: Any, values: dict[str, Any], problems: list[str], warnings: list[str]
    ) -> None:
        if isinstance(raw, float):
            problems.append(
                "身份证号码被 Excel 存成了数字，后几位已经丢失；请把该列设为“文本”格式后重新录入"
            )
            return
        try:
            card = parse_id_number(_text(raw), today=self.today)
        except InvalidIdNumber as error:
            problems.append(error.reason)
            return
        values["id_number"] = card.number
        values["gender"] = card.gender
        values["birth_date"] = card.birth_date
        warnings.extend(card.warnings)


# --------------------------------------------------------------------------- writing

_FIELDS = (
    "name",
    "id_number",
    "gender",
    "birth_date",
    "region_code",
    "benefit_type",
    "phone",
    "unit_name",
    "status",
    "last_certified_on",
    "address",
    "overseas",
)
_DEFAULTS = {
    "phone": None,
    "unit_name": None,
    "status": "normal",
    "last_certified_on": None,
    "address": None,
    "overseas": False,
}
_SELECT_COLUMNS = [Person.id, Person.person_no, *(getattr(Person, f) for f in _FIELDS)]


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, BenefitType | PaymentStatus):
        old = old.value
    return old == new


class _Writer:
    def __init__(self, session, summary: ImportSummary):
        self.session = session
        self.summary = summary

    def write(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        numbers = [values["person_no"] for _, values in batch]
        existing = {
            row.person_no: row
            for row in self.session.execute(
                select(*_SELECT_COLUMNS).where(Person.person_no.in_(numbers))
            )
        }
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for row_number, values in batch:
            old = existing.get(values["person_no"])
            if old is None:
                record = {"person_no": values["person_no"]}
                for name in _FIELDS:
                    value = values.get(name, _KEEP)
                    record[name] = _DEFAULTS.get(name) if value is _KEEP else value
                record["created_at"] = record["updated_at"] = now
                inserts.append(record)
                continue
            record = {"id": old.id}
            changed = []
            for name in _FIELDS:
                stored = getattr(old, name)
                value = values.get(name, _KEEP)
                if (
                    name == "last_certified_on"
                    and value is not _KEEP
                    and stored is not None
                    and (value is None or value < stored)
                ):
                    value = _KEEP  # never forget a newer certification
                if value is _KEEP:
                    value = stored.value if hasattr(stored, "value") else stored
                elif not _same(stored, value):
                    changed.append(name)
                record[name] = value
            if changed:
                record["updated_at"] = now
                updates.append(record)
                self.summary.changes.append((row_number, values["person_no"], tuple(changed)))
            else:
                self.summary.unchanged += 1
        if inserts:
            self.session.execute(insert(Person.__table__), inserts)  # Core: NULLs kept in one batch
            self.summary.created += len(inserts)
        if updates:
            self.session.execute(update(Person), updates)
            self.summary.updated += len(updates)


# --------------------------------------------------------------------------- import


def _canonical_key(key: Any) -> str | None:
    """A header cell → the contract's column name: ``身份证号码（必填）`` → ``id_number``."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", _text(key)).lower())
    if text in HEADER_ALIASES:
        return HEADER_ALIASES[text]
    return HEADER_ALIASES.get(re.sub(r"\(.*?\)|\*", "", text))


def _canonical_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in row.items():
        name = key if key in COLUMNS else _canonical_key(key)
        if name is not None and name not in result:
            result[name] = value
    return result


def _missing_columns_message(present: Iterable[str]) -> str | None:
    present = set(present)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if not missing:
        return None
    names = "、".join(f"{c}（{COLUMNS[c]}）" for c in missing)
    return f"缺少必需的列：{names}。第1行应为列名，例如 " + ",".join(REQUIRED_COLUMNS)


def _progress_bar(enabled: bool, total: int | None, desc: str = "导入名册"):
    from tqdm import tqdm

    show = enabled and sys.stderr is not None and sys.stderr.isatty()
    return tqdm(total=total, disable=not show, unit="行", desc=desc, file=sys.stderr)


def import_rows(
    db: Database,
    rows: Iterable[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    start_row: int = 2,
    progress: bool = False,
    total: int | None = None,
    source: str | None = None,
    today: dt.date | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Import roster rows (dicts keyed by the contract's column names or their Chinese labels).

    ``rows`` are numbered from ``start_row`` (2: the row after a header), empty rows
    included, so messages name the row a clerk sees. ``columns``, when given, is the header
    that is checked for required columns before any row is read; otherwise the first
    non-empty row's keys are.
    """
    started = time.perf_counter()
    summary = summary or ImportSummary(source=source)
    checker = _RowChecker(today or system_clock.today())
    if columns is not None:
        error = _missing_columns_message(filter(None, map(_canonical_key, columns)))
        if error:
            summary.errors.append(error)
            return summary
    header_checked = columns is not None
    seen_person_no: dict[str, int] = {}  # first row of each person_no, imported or not
    imported_person_no: set[str] = set()
    seen_id_number: dict[str, int] = {}
    pending: list[tuple[int, dict[str, Any]]] = []

    with db.session() as session, _progress_bar(progress, total) as bar:
        writer = _Writer(session, summary)
        for row_number, raw in enumerate(rows, start_row):
            bar.update()
            if not raw or not any(_text(value) for value in raw.values()):
                continue  # an empty line
            row = _canonical_row(raw)
            if not header_checked:
                error = _missing_columns_message(row)
                if error:
                    summary.errors.append(error)
                    return summary
                header_checked = True
            summary.rows += 1
            values, problems, warnings = checker.check(row)
            person_no = values["person_no"] or None
            if person_no:
                first = seen_person_no.setdefault(person_no, row_number)
                if first != row_number:
                    kept = (
                        f"已按第 {first} 行导入"
                        if person_no in imported_person_no
                        else f"第 {first} 行也未导入"
                    )
                    problems.insert(0, f"个人编号 {person_no} 与第 {first} 行重复（{kept}）")
            if problems:
                summary.rejected.append(RowProblem(row_number, "；".join(problems), person_no))
                continue
            imported_person_no.add(person_no)
            first = seen_id_number.setdefault(values["id_number"], row_number)
            if first != row_number:
                warnings.append(
                    f"身份证号码 {mask_id_number(values['id_number'])} 与第 {first} 行相同"
                    "（同一人领取两种待遇时属正常，否则请核对）"
                )
            summary.warnings.extend(RowProblem(row_number, w, person_no) for w in warnings)
            pending.append((row_number, values))
            if len(pending) >= BATCH_SIZE:
                writer.write(pending)
                pending = []
        writer.write(pending)
    summary.seconds += time.perf_counter() - started
    return summary


def import_roster_file(
    db: Database, path: str | Path, *, progress: bool = False, today: dt.date | None = None
) -> ImportSummary:
    """Import a roster file: ``.csv`` (UTF-8 / UTF-8 BOM / GBK) or ``.xlsx``.

    File-level problems (unreadable file, missing required columns) end up in
    ``summary.errors`` and nothing is imported; a missing file raises FileNotFoundError.
    """
    path = Path(path)
    summary = ImportSummary(source=path.name)
    started = time.perf_counter()
    with path.open("rb") as handle:
        magic = handle.read(8)
    suffix = path.suffix.lower()
    try:
        if magic.startswith(b"\xd0\xcf\x11\xe0") or suffix == ".xls":
            raise _FileProblem(
                "不支持 Excel 97-2003 的 .xls 格式，请在 Excel 中另存为 .xlsx 或 CSV"
            )
        if magic.startswith(b"PK\x03\x04") or suffix in {".xlsx", ".xlsm"}:
            header, rows, total, closer = _read_xlsx(path)
        else:
            header, rows, total, closer = _read_csv(path)
    except _FileProblem as problem:
        summary.errors.append(str(problem))
        return summary
    try:
        import_rows(
            db,
            rows,
            columns=header,
            progress=progress,
            total=total,
            today=today,
            summary=summary,
        )
    finally:
        closer()
    summary.seconds = time.perf_counter() - started
    return summary


class _FileProblem(Exception):
    pass


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError:
        raise _FileProblem(
            "无法识别文件的文字编码，请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新导入"
        ) from None


def _read_csv(path: Path, canonical=_canonical_key):
    text = _decode(path.read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise _FileProblem("文件是空的，第1行应为列名")
    keys = [canonical(cell) for cell in header]
    total = max(text.count("\n") - 1, 0)

    def rows() -> Iterator[dict[str, Any]]:
        for record in reader:
            yield {k: v for k, v in zip(keys, record, strict=False) if k is not None}

    return header, rows(), total, lambda: None


def _read_xlsx(path: Path, canonical=_canonical_key):
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
        raise _FileProblem(
            f"无法读取这个 Excel 文件（{error.__class__.__name__}），文件可能已损坏或加密"
        ) from None
    sheet = workbook.worksheets[0]
    total = sheet.max_row - 1 if sheet.max_row else None
    sheet.reset_dimensions()  # a wrong <dimension> in the file must not cut rows or columns
    values = sheet.iter_rows(min_row=1, values_only=True)
    header = next(values, None)
    if not header or not any(_text(cell) for cell in header):
        workbook.close()
        raise _FileProblem("工作表是空的，第1行应为列名")
    keys = [canonical(cell) for cell in header]

    def rows() -> Iterator[dict[str, Any]]:
        for record in values:
            yield {k: v for k, v in zip(keys, record, strict=False) if k is not None}

    return [_text(cell) for cell in header], rows(), total, workbook.close
