"""信息比对导入：出行、住院、体检、出入境记录视同认证；死亡、火化、失踪、服刑记录停发养老金。

shanxi-2018-certification-rules.txt 一(二), 二(一)–(二): data shared by transport, police,
civil affairs, justice and health departments decide, without the pensioner doing anything,
whether payment goes on. Which kinds certify and which stop is data (``information_comparison``
in ``regions.yaml``): travel records certify only where the region says so (Shanxi); stopping
records stop payment everywhere.

File: CSV or XLSX with the columns ``source, kind, id_number, date`` (Chinese headers
accepted: 来源, 类型, 身份证号码, 日期). What a clerk sees, as with the roster import:

* bad rows are reported by row number (the header is row 1) and never applied — an ID not on
  the roster, a row repeated in the file, a date in the future, a travel record dated after
  the person's death (or other stop);
* re-importing the same file changes nothing (a record is unique per person, kind, date,
  source);
* a stop is never reversed: a later travel record does not certify a stopped person.

Stopping rows are applied while the file is read; certifying rows are kept (compactly) and
applied afterwards, so a death anywhere in the file is known before any travel record is
judged.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, any_, bindparam, func, select, update
from sqlalchemy.orm import Session

from services.certification import record_many_by_comparison
from services.db import Database
from services.idcard import mask_id_number, normalise_id_number
from services.lifecycle import insert_ignoring_duplicates
from services.models import (
    AuditLog,
    CertificationMethod,
    ComparisonRecord,
    PaymentStatus,
    PaymentStatusChange,
    Person,
    utcnow,
)
from services.regions import policy_for, region_keys
from services.roster import (
    RowProblem,
    _compact,
    _FileProblem,
    _parse_date,
    _progress_bar,
    _read_csv,
    _read_xlsx,
    _text,
)

__all__ = ["ComparisonSummary", "KIND_LABELS", "import_comparison_file", "import_comparison_rows"]

BATCH = 50000
REQUIRED = ("source", "kind", "id_number", "date")
COLUMN_LABELS = {"source": "来源", "kind": "类型", "id_number": "身份证号码", "date": "日期"}
HEADERS = {
    **{name: name for name in REQUIRED},
    **{label: name for name, label in COLUMN_LABELS.items()},
    "数据来源": "source",
    "来源部门": "source",
    "比对类型": "kind",
    "信息类型": "kind",
    "记录类型": "kind",
    "身份证号": "id_number",
    "公民身份号码": "id_number",
    "证件号码": "id_number",
    "记录日期": "date",
    "发生日期": "date",
}
# Kind names as the sharing departments write them → the names in regions.yaml.
KIND_LABELS = {
    "flight": "乘机",
    "train": "乘火车",
    "hospital_discharge": "出院",
    "health_checkup": "体检",
    "entry_exit": "出入境",
    "death": "死亡",
    "cremation": "火化",
    "missing": "宣告失踪",
    "criminal_penalty": "刑事处罚",
}
KIND_ALIASES = {
    **{kind: kind for kind in KIND_LABELS},
    **{label: kind for kind, label in KIND_LABELS.items()},
    "航班": "flight",
    "飞机": "flight",
    "火车": "train",
    "高铁": "train",
    "铁路": "train",
    "住院": "hospital_discharge",
    "康复出院": "hospital_discharge",
    "健康体检": "health_checkup",
    "出境": "entry_exit",
    "入境": "entry_exit",
    "火葬": "cremation",
    "失踪": "missing",
    "服刑": "criminal_penalty",
}


@dataclass
class ComparisonSummary:
    source: str | None = None
    rows: int = 0
    certified: int = 0  # records that certified someone
    stopped: int = 0  # people whose payment this import stopped
    stored: int = 0  # new records kept
    unchanged: int = 0  # records already imported before
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected_rows(self) -> list[int]:
        return sorted(problem.row for problem in self.rejected)

    def reason_for(self, row: int) -> str | None:
        return next((p.message for p in self.rejected if p.row == row), None)

    def format(self, limit: int = 50) -> str:
        lines = ["信息比对导入 Comparison import" + (f"：{self.source}" if self.source else "")]
        lines += [f"  ✗ 无法导入 Not imported：{error}" for error in self.errors]
        if self.errors:
            return "\n".join(lines)
        lines.append(
            f"  共 {self.rows} 行 rows：新记录 stored {self.stored} · 视同认证 certified "
            f"{self.certified} · 停发 stopped {self.stopped} · 已导入过 unchanged {self.unchanged}"
            f" · 拒绝 rejected {len(self.rejected)}  ({self.seconds:.1f} s)"
        )
        for heading, problems in (
            ("拒绝的行（未采用） Rejected rows (not applied):", self.rejected),
            ("提示 Warnings:", self.warnings),
        ):
            if problems:
                lines.append(heading)
                ordered = sorted(problems, key=lambda p: p.row)
                lines += [f"  第 {p.row} 行 row {p.row}：{p.message}" for p in ordered[:limit]]
                if len(problems) > limit:
                    lines.append(f"  ……另有 {len(problems) - limit} 行 and more")
        return "\n".join(lines)


def _kinds() -> tuple[set[str], set[str]]:
    certify, stop = set(), set()
    for key in region_keys():
        comparison = policy_for(key).extra.get("information_comparison") or {}
        certify.update(comparison.get("counts_as_certified") or ())
        stop.update(comparison.get("stops_payment") or ())
    return certify, stop


def _accepts(region_code: str, benefit: str, kind: str) -> bool:
    policy = policy_for(region_code, benefit)
    comparison = policy.extra.get("information_comparison") or {}
    accepted = comparison.get("counts_as_certified") or ()
    return policy.accepts(CertificationMethod.info_comparison) and kind in accepted


def _canonical(cell: Any) -> str | None:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", _text(cell)).lower())
    return HEADERS.get(text) or HEADERS.get(re.sub(r"\(.*?\)|\*", "", text))


class _Row(NamedTuple):  # a tuple: a million of them are kept between the two stages
    number: int
    source: str
    kind: str
    id_number: str
    day: dt.date


def _cell(value: Any) -> str:
    # most cells of a large CSV are plain strings: skip the general conversion
    return value.strip() if isinstance(value, str) else _text(value)


def _id_number(value: Any) -> str:
    text = _cell(value)
    if len(text) == 18 and text.isascii() and text.isalnum():
        return text.upper()
    return normalise_id_number(text)


def _day(value: Any) -> dt.date | None:
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    return _parse_date(value)


class _Checker:
    """Cell-level checks; problems that need the database come later, per batch."""

    def __init__(self, today: dt.date):
        self.today = today
        self.certify, self.stop = _kinds()
        self.known = self.certify | self.stop
        self.seen: dict[int, int] = {}  # hash of (ID, kind, date, source) → first row
        self.sources: dict[str, str] = {}

    def kind_of(self, raw: Mapping[str, Any]) -> str | None:
        written = _cell(raw.get("kind"))
        return KIND_ALIASES.get(written) or KIND_ALIASES.get(_compact(written).lower())

    def check(self, number: int, raw: Mapping[str, Any]) -> tuple[_Row | None, str | None]:
        problems = []
        source = _cell(raw.get("source"))[:32]
        if not source:
            problems.append("来源为空")
        kind = self.kind_of(raw)
        if kind not in self.known:
            known = "、".join(f"{k}（{KIND_LABELS[k]}）" for k in KIND_LABELS)
            problems.append(f"类型「{_text(raw.get('kind'))}」不认识，应为 {known}")
        id_number = _id_number(raw.get("id_number"))
        if not id_number:
            problems.append("身份证号码为空")
        day = None
        try:
            day = _day(raw.get("date"))
        except (ValueError, OverflowError):
            problems.append(
                f"日期「{_text(raw.get('date'))}」无法识别，请写成 2024-05-31 这样的日期"
            )
        else:
            if day is None:
                problems.append("日期为空")
            elif day > self.today:
                what = f"{KIND_LABELS[kind]}日期" if kind else "日期"
                problems.append(f"{what} {day.isoformat()} 晚于今天")
        if problems:
            return None, "；".join(problems)
        source = self.sources.setdefault(source, source)  # one string per source, not per row
        first = self.seen.setdefault(hash((id_number, kind, day, source)), number)
        if first != number:
            return None, f"与第 {first} 行重复（同一身份证号、类型、日期、来源），未重复采用"
        return _Row(number, source, kind, id_number, day), None


def import_comparison_file(
    db: Database, path: str | Path, *, progress: bool = False, today: dt.date | None = None
) -> ComparisonSummary:
    """Import a comparison file (``.csv`` / ``.xlsx``); see the module docstring."""
    path = Path(path)
    summary = ComparisonSummary(source=path.name)
    started = time.perf_counter()

    with path.open("rb") as handle:
        magic = handle.read(4)
    xlsx = magic.startswith(b"PK\x03\x04") or path.suffix.lower() in {".xlsx", ".xlsm"}
    try:
        header, rows, total, closer = (_read_xlsx if xlsx else _read_csv)(path, _canonical)
    except _FileProblem as problem:
        summary.errors.append(str(problem))
        return summary
    try:
        missing = [c for c in REQUIRED if c not in {_canonical(cell) for cell in header}]
        if missing:
            names = "、".join(f"{c}（{COLUMN_LABELS[c]}）" for c in missing)
            summary.errors.append(
                f"缺少必需的列：{names}。第1行应为列名，例如 " + ",".join(REQUIRED)
            )
            return summary
        import_comparison_rows(
            db, rows, progress=progress, total=total, today=today, summary=summary
        )
    finally:
        closer()
    summary.seconds = time.perf_counter() - started
    return summary


def import_comparison_rows(
    db: Database,
    rows,
    *,
    progress: bool = False,
    total: int | None = None,
    today: dt.date | None = None,
    summary: ComparisonSummary | None = None,
) -> ComparisonSummary:
    """Import dict rows (numbered from 2, as below a header); ``rows`` may be a callable."""
    summary = summary or ComparisonSummary()
    started = time.perf_counter()
    checker = _Checker(today or dt.date.today())
    certifying: list[_Row] = []  # kept (compact) until every stop of the file is stored
    # A million kept tuples would make the cyclic collector rescan them again and again;
    # they hold no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _import(db, rows, checker, certifying, summary, progress, total)
    finally:
        if collecting:
            gc.enable()
    summary.seconds += time.perf_counter() - started
    return summary


def _import(db, rows, checker, certifying, summary, progress, total) -> None:
    with db.session() as session, _progress_bar(progress, total, "信息比对") as bar:
        batch = []
        for number, raw in enumerate(rows() if callable(rows) else rows, 2):
            bar.update()
            if not raw or not any(_cell(value) for value in raw.values()):
                continue
            summary.rows += 1
            row, problem = checker.check(number, raw)
            if problem:
                summary.rejected.append(RowProblem(number, problem))
            elif row.kind in checker.certify:
                certifying.append(row)
            else:
                batch.append(row)
                if len(batch) >= BATCH:
                    _apply(session, batch, summary, stopping=True)
                    batch = []
        _apply(session, batch, summary, stopping=True)
        checker.seen.clear()
        # then the certifying rows, judged against every stop now stored
        for start in range(0, len(certifying), BATCH):
            _apply(session, certifying[start : start + BATCH], summary, stopping=False)


def _among(session: Session, column, values: list):
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter however many."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _people(session: Session, rows: Iterable[_Row]) -> dict[str, list]:
    numbers = sorted({row.id_number for row in rows})
    found: dict[str, list] = defaultdict(list)
    for person in session.execute(
        select(
            Person.id, Person.id_number, Person.region_code, Person.benefit_type, Person.status
        ).where(_among(session, Person.id_number, numbers))
    ):
        found[person.id_number].append(person)  # one person may draw two benefits
    return found


def _stops(session: Session, person_ids: list[int]) -> dict[int, dt.date]:
    return dict(
        session.execute(
            select(PaymentStatusChange.person_id, func.min(PaymentStatusChange.effective_on))
            .where(
                _among(session, PaymentStatusChange.person_id, person_ids),
                PaymentStatusChange.status == "stopped",
            )
            .group_by(PaymentStatusChange.person_id)
        ).all()
    )


def _apply(session: Session, batch: list[_Row], summary: ComparisonSummary, *, stopping: bool):
    if not batch:
        return
    people = _people(session, batch)
    stops = {} if stopping else _stops(session, [p.id for ps in people.values() for p in ps])
    accepted: list[tuple[_Row, Any]] = []
    for row in batch:
        matches = people.get(row.id_number)
        if not matches:
            summary.rejected.append(
                RowProblem(row.number, f"身份证号码 {mask_id_number(row.id_number)} 不在名册中")
            )
            continue
        problem = None
        for person in matches:
            if stopping:
                accepted.append((row, person))
                continue
            stopped_on = stops.get(person.id)
            if stopped_on is not None and row.day > stopped_on:
                problem = (
                    f"{KIND_LABELS[row.kind]}记录日期 {row.day.isoformat()} 晚于停发日期 "
                    f"{stopped_on.isoformat()}（死亡、火化、失踪或服刑），未采用"
                )
            elif person.status == PaymentStatus.stopped:
                summary.warnings.append(RowProblem(row.number, "该人员已停发，比对记录不恢复发放"))
            elif not _accepts(person.region_code, person.benefit_type, row.kind):
                province = policy_for(person.region_code).province
                problem = f"{province}不以{KIND_LABELS[row.kind]}记录视同认证"
            else:
                accepted.append((row, person))
        if problem:
            summary.rejected.append(RowProblem(row.number, problem))
    if session.bind.dialect.name == "postgresql":
        _write_postgres(session, accepted, summary, stopping=stopping)
        return
    records = [
        {
            "person_id": person.id,
            "source": row.source,
            "kind": row.kind,
            "record_date": row.day,
            "imported_at": utcnow(),
        }
        for row, person in accepted
    ]
    created = set()
    if records:
        created = {
            record_id
            for (record_id,) in insert_ignoring_duplicates(
                session,
                ComparisonRecord,
                records,
                ["person_id", "kind", "record_date", "source"],
                returning=True,
            )
        }
    summary.stored += len(created)
    summary.unchanged += len(records) - len(created)
    fresh = _fresh(session, created)
    if stopping:
        summary.stopped += _stop(session, fresh)
    else:
        evidence = [
            (pid, day, {"source": source, "kind": kind}) for pid, kind, day, source in fresh
        ]
        summary.certified += record_many_by_comparison(session, evidence, at=utcnow())


_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS comparison_accepted (
    person_id integer, source varchar(32), kind varchar(24), record_date date, status varchar(16)
) ON COMMIT DROP;
CREATE TEMPORARY TABLE IF NOT EXISTS comparison_created (
    person_id integer, source varchar(32), kind varchar(24), record_date date
) ON COMMIT DROP;
TRUNCATE comparison_accepted, comparison_created
"""
_CREATE = """
WITH created AS (
    INSERT INTO comparison_records (person_id, source, kind, record_date, imported_at)
    SELECT person_id, source, kind, record_date, %(now)s FROM comparison_accepted
    ON CONFLICT (person_id, kind, record_date, source) DO NOTHING
    RETURNING person_id, source, kind, record_date
)
INSERT INTO comparison_created SELECT * FROM created
"""
_STOP = """
WITH earliest AS (
    SELECT DISTINCT ON (person_id) person_id, source, kind, record_date
    FROM comparison_created ORDER BY person_id, record_date
), stopped AS (
    UPDATE persons p SET status = 'stopped', updated_at = %(now)s FROM earliest e
    WHERE p.id = e.person_id AND p.status <> 'stopped'
    RETURNING p.id, e.source, e.kind, e.record_date
)
INSERT INTO payment_status_changes (person_id, status, effective_on, reason, created_at)
SELECT s.id, 'stopped', s.record_date, '信息比对：' || l.label || '（' || s.source || '）', %(now)s
FROM stopped s JOIN unnest(%(kinds)s::text[], %(labels)s::text[]) AS l(kind, label)
  ON l.kind = s.kind
"""
_CERTIFY = """
INSERT INTO certification_records (person_id, method, certified_at, result, evidence, channel)
SELECT c.person_id, 'info_comparison', c.record_date + time '12:00', 'passed',
       json_build_object('source', c.source, 'kind', c.kind), 'comparison'
FROM comparison_created c JOIN comparison_accepted a USING (person_id, source, kind, record_date)
WHERE a.status = 'normal'
"""
# the status read a moment ago in this transaction: no scan of persons per batch
_SUSPENDED = """
SELECT c.person_id, c.record_date, c.source, c.kind
FROM comparison_created c JOIN comparison_accepted a USING (person_id, source, kind, record_date)
WHERE a.status = 'suspended'
"""
_MOVE_LAST = """
UPDATE persons p SET last_certified_on = greatest(coalesce(p.last_certified_on, n.day), n.day),
       updated_at = %(now)s
FROM (SELECT person_id, max(record_date) AS day FROM comparison_created GROUP BY person_id) n
WHERE p.id = n.person_id AND p.status = 'normal'
"""


def _write_postgres(session: Session, accepted, summary: ComparisonSummary, *, stopping: bool):
    """COPY the accepted records into a temporary table; a few set-based statements store them,
    stop payment or certify — the same rules as the portable path, one round trip each."""
    now = utcnow()
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(_STAGE)
    with cursor.copy(
        "COPY comparison_accepted (person_id, source, kind, record_date, status) FROM STDIN"
    ) as copy:
        for row, person in accepted:
            copy.write_row((person.id, row.source, row.kind, row.day, str(person.status)))
    cursor.execute("ANALYZE comparison_accepted")
    cursor.execute(_CREATE, {"now": now})
    created = cursor.rowcount
    summary.stored += created
    summary.unchanged += len(accepted) - created
    if not created:
        return
    cursor.execute("ANALYZE comparison_created")
    if stopping:
        cursor.execute(
            _STOP, {"now": now, "kinds": list(KIND_LABELS), "labels": list(KIND_LABELS.values())}
        )
        summary.stopped += cursor.rowcount
        detail = {"stopped": cursor.rowcount}
    else:
        # suspended people resume through record_certification (back pay), after the bulk
        cursor.execute(_SUSPENDED)
        suspended = cursor.fetchall()
        cursor.execute(_CERTIFY)
        summary.certified += cursor.rowcount
        cursor.execute(_MOVE_LAST, {"now": now})
        evidence = [
            (pid, day, {"source": source, "kind": kind}) for pid, day, source, kind in suspended
        ]
        summary.certified += record_many_by_comparison(session, evidence, at=now)
        detail = {"recorded": summary.certified}
    session.add(
        AuditLog(
            actor="system",
            action="payment.stopped_by_comparison" if stopping else "certification.compared",
            target_type="person",
            detail=detail,
        )
    )


def _fresh(session: Session, record_ids: set[int]) -> list[tuple[int, str, dt.date, str]]:
    if not record_ids:
        return []
    return [
        tuple(row)
        for row in session.execute(
            select(
                ComparisonRecord.person_id,
                ComparisonRecord.kind,
                ComparisonRecord.record_date,
                ComparisonRecord.source,
            ).where(ComparisonRecord.id.in_(sorted(record_ids)))
        )
    ]


def _stop(session: Session, fresh: list[tuple[int, str, dt.date, str]]) -> int:
    """Stop payment for good (status 'stopped'); the earliest record of a person decides."""
    earliest: dict[int, tuple[dt.date, str, str]] = {}
    for person_id, kind, day, source in fresh:
        if person_id not in earliest or day < earliest[person_id][0]:
            earliest[person_id] = (day, kind, source)
    if not earliest:
        return 0
    now = utcnow()
    ids = session.scalars(
        update(Person)
        .where(Person.id.in_(sorted(earliest)), Person.status != PaymentStatus.stopped)
        .values(status=PaymentStatus.stopped, updated_at=now)
        .returning(Person.id)
        .execution_options(synchronize_session=False)
    ).all()
    if ids:
        session.execute(
            PaymentStatusChange.__table__.insert(),
            [
                {
                    "person_id": pid,
                    "status": "stopped",
                    "effective_on": earliest[pid][0],
                    "reason": f"信息比对：{KIND_LABELS[earliest[pid][1]]}（{earliest[pid][2]}）",
                    "created_at": now,
                }
                for pid in ids
            ],
        )
        session.add(
            AuditLog(
                actor="system",
                action="payment.stopped_by_comparison",
                target_type="person",
                detail={"stopped": len(ids)},
            )
        )
    return len(ids)
