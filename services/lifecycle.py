"""认证年度的每日任务：到期前提醒、逾期提醒、逾期暂停发放、山西待核实名单、江西7月公示。

``run_daily(runtime)`` is what cron (``pension daily``) or a scheduled job calls once a day.
It is safe to run twice, on two hosts at once, and after missed days:

* every notice owed to a person is a row of ``notices`` unique per (person, kind, due date);
  only the run whose INSERT created the row sends it, so nobody hears the same thing twice;
* a suspension is the UPDATE of a still-paid person (``status = 'normal'``) that returns
  the row: a second run finds nobody left to suspend;
* finished days are kept (``lifecycle_days``); the next run first does the days it missed
  (up to ``LIFECYCLE_CATCH_UP_DAYS``, 31 by default), reminders only while still useful.

The policy engine (``services.policy``) decides every date. To avoid asking it about each of
a million people every day, the run asks it the other way round first: for each region /
benefit-type group, which last-certification dates make something due today? A due date
only ever moves forward with the last certification, so a binary search over dates gives a
range, and one indexed query fetches the few people inside the ranges. The engine then
assesses exactly those people, as the chatbot would, and its answer is what is acted on. On
PostgreSQL those answers are COPYed into a temporary table and a handful of set-based
statements write the day (``_write_postgres``); elsewhere plain batched statements do.

Reminders: the region's months before the due date (``reminder_months_before_due``, Shanxi:
three months, shanxi-2018-certification-rules.txt 一(四)), then ``reminder_followups``
(one month, one week). Suspension: on the engine's suspension date, the 1st of the month after
the due date (Jiangxi: 1 July, jiangxi-xunwu-2020-rural-pension-certification.txt 二(四));
in rolling cycles whose deadline falls mid-month the person hears on the day after the
deadline that they are overdue and from which month payment stops.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from services.models import (
    AuditLog,
    Binding,
    CycleNotice,
    LifecycleDay,
    PaymentStatus,
    PaymentStatusChange,
    PendingVerification,
    Person,
    utcnow,
)
from services.policy import (
    Assessment,
    PersonFacts,
    RegionPolicy,
    add_months,
    assess,
    format_date,
    next_window,
    policy_for,
    suspension_date,
)
from services.runtime import Runtime

__all__ = [
    "DayResult",
    "Offset",
    "OwedNotice",
    "deliver_notices",
    "figures",
    "insert_ignoring_duplicates",
    "owed_on",
    "reminder_offsets",
    "run_daily",
    "suspensions",
    "unit_list",
    "upcoming_notices",
]

log = logging.getLogger(__name__)

ONE_DAY = dt.timedelta(days=1)
CATCH_UP_DAYS = 31
BATCH = 5000
DELIVERY_BATCH = 500
# How far back a last certification is searched: older ones are all overdue already.
SEARCH_YEARS = 10

_LOCK_KEY = 0x11FE_0000_0000  # advisory-lock namespace of the daily run
OVERDUE = "overdue"
SUSPENDED = "suspended"
ROUTE_ACCOUNT, ROUTE_SMS, ROUTE_UNIT = "account", "sms", "unit"


# --- what is owed -------------------------------------------------------------------------


@dataclass(frozen=True)
class Offset:
    """A reminder so long before the due date: ``{months: 3}`` or ``{days: 7}``."""

    months: int = 0
    days: int = 0

    @property
    def kind(self) -> str:
        return f"remind_{self.months}m" if self.months else f"remind_{self.days}d"

    def before(self, due: dt.date) -> dt.date:
        return add_months(due, -self.months) - dt.timedelta(days=self.days)


def reminder_offsets(policy: RegionPolicy) -> tuple[Offset, ...]:
    """The region's reminders from ``regions.yaml``, the earliest first."""
    offsets = []
    if policy.reminder_months_before_due:
        offsets.append(Offset(months=policy.reminder_months_before_due))
    for entry in policy.extra.get("reminder_followups") or ():
        offsets.append(Offset(months=int(entry.get("months", 0)), days=int(entry.get("days", 0))))
    return tuple(dict.fromkeys(offsets))


@dataclass(frozen=True)
class OwedNotice:
    """Something the run owes one person on one day (before it is written)."""

    person_id: int
    kind: str  # Offset.kind, "overdue" or "suspended"
    due_date: dt.date
    unit_name: str | None
    effective_on: dt.date | None = None  # suspensions: the first unpaid day
    reason: str | None = None
    pending_months: int | None = None  # overdue in a region whose units verify (Shanxi)


@dataclass(frozen=True)
class _Group:
    """People whose due dates follow the same rule: one policy, one benefit type."""

    policy: RegionPolicy
    benefit_type: str
    region_codes: tuple[str, ...]
    birth_month: int | None  # birthday cycles are split by birth month

    @property
    def birth_date(self) -> dt.date | None:
        return dt.date(2000, self.birth_month, 1) if self.birth_month else None

    def due(self, last: dt.date) -> dt.date:
        return next_window(self.policy.cycle, last, self.birth_date).due_date

    def pending_months(self) -> int | None:
        comparison = self.policy.extra.get("information_comparison") or {}
        return comparison.get("pending_verification_months")


def _groups(session: Session) -> list[_Group]:
    pairs = session.execute(
        select(Person.region_code, Person.benefit_type)
        .where(Person.status == PaymentStatus.normal)
        .distinct()
    ).all()
    codes: dict[tuple[str, str], list[str]] = defaultdict(list)
    policies: dict[tuple[str, str], RegionPolicy] = {}
    for region_code, benefit in pairs:
        policy = policy_for(region_code, benefit)
        key = (policy.code_prefix, str(benefit))
        codes[key].append(region_code)
        policies[key] = policy
    groups = []
    for key, region_codes in codes.items():
        policy = policies[key]
        months = range(1, 13) if policy.cycle.kind == "birthday_month" else (None,)
        for month in months:
            groups.append(_Group(policy, key[1], tuple(sorted(region_codes)), month))
    return groups


def _first_at_least(f: Callable[[dt.date], dt.date], target: dt.date, lo: dt.date, hi: dt.date):
    """The first day in [lo, hi] with f(day) >= target for a non-decreasing f, else None."""
    if f(hi) < target:
        return None
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid + ONE_DAY
    return lo


def _range_where(f, low: dt.date | None, high: dt.date, span: tuple[dt.date, dt.date]):
    """Last-certification days in ``span`` with low <= f(day) <= high (None: no lower bound)."""
    start, end = span
    first = start if low is None else _first_at_least(f, low, start, end)
    if first is None:
        return None
    after = _first_at_least(f, high + ONE_DAY, first, end)
    last = end if after is None else after - ONE_DAY
    return (None if low is None else first, last) if first <= last else None


def _candidate_ranges(group: _Group, day: dt.date) -> list[tuple[dt.date | None, dt.date]]:
    """Ranges of last-certification days for which the engine may owe something on ``day``."""
    span = (day - dt.timedelta(days=366 * SEARCH_YEARS), day)
    ranges = []
    for offset in reminder_offsets(group.policy):
        found = _range_where(lambda last, o=offset: o.before(group.due(last)), day, day, span)
        if found:
            ranges.append(found)
    # the day after the deadline: overdue notice, pending verification
    found = _range_where(group.due, day - ONE_DAY, day - ONE_DAY, span)
    if found:
        ranges.append(found)
    # everyone whose suspension date has come (a stale roster included): None = no lower bound
    found = _range_where(lambda last: suspension_date(group.due(last)), None, day, span)
    if found:
        ranges.append(found)
    return ranges


def _first_cycle_open(group: _Group, day: dt.date) -> bool:
    first = group.policy.first_cycle
    return bool(first and first.applies_to(group.benefit_type) and day.year <= first.deadline.year)


def _candidates_clause(groups: Sequence[_Group], day: dt.date):
    clauses = []
    for group in groups:
        ranges = _candidate_ranges(group, day)
        bounds = [
            Person.last_certified_on <= high
            if low is None
            else Person.last_certified_on.between(low, high)
            for low, high in ranges
        ]
        if _first_cycle_open(group, day):
            bounds.append(Person.last_certified_on.is_(None))
        if not bounds:
            continue
        same = [
            Person.region_code.in_(group.region_codes),
            Person.benefit_type == group.benefit_type,
        ]
        if group.birth_month:
            same.append(func.extract("month", Person.birth_date) == group.birth_month)
        clauses.append(and_(*same, or_(*bounds)))
    return or_(*clauses) if clauses else None


_CANDIDATE_COLUMNS = (
    Person.id,
    Person.region_code,
    Person.benefit_type,
    Person.birth_date,
    Person.status,
    Person.last_certified_on,
    Person.unit_name,
)


def _candidates(session: Session, day: dt.date) -> Iterator:
    clause = _candidates_clause(_groups(session), day)
    if clause is None:
        return iter(())
    query = select(*_CANDIDATE_COLUMNS).where(Person.status == PaymentStatus.normal, clause)
    return iter(session.execute(query.execution_options(yield_per=BATCH)))


def _facts(row) -> PersonFacts:
    return PersonFacts(
        region_code=row.region_code,
        benefit_type=str(row.benefit_type),
        birth_date=row.birth_date,
        status=str(row.status),
        last_certified_on=row.last_certified_on,
    )


def _owed(row, day: dt.date, today: dt.date) -> list[OwedNotice]:
    """What the engine says this person is owed on ``day`` (run on ``today``)."""
    assessment = assess(_facts(row), day)
    if assessment.window is None:
        return []
    due = assessment.window.due_date
    if assessment.suspended and assessment.suspended_from:
        reason = f"逾期未认证：应在{format_date(due)}前完成认证"
        return [
            OwedNotice(row.id, SUSPENDED, due, row.unit_name, assessment.suspended_from, reason)
        ]
    owed = []
    if assessment.overdue and due == day - ONE_DAY:
        comparison = assessment.policy.extra.get("information_comparison") or {}
        months = comparison.get("pending_verification_months")
        owed.append(OwedNotice(row.id, OVERDUE, due, row.unit_name, pending_months=months))
    if due < today:
        return owed  # a missed day's reminder would come too late to help
    for offset in reminder_offsets(assessment.policy):
        if offset.before(due) == day:
            owed.append(OwedNotice(row.id, offset.kind, due, row.unit_name))
    return owed


def owed_on(session: Session, day: dt.date, today: dt.date | None = None) -> Iterator[OwedNotice]:
    """Every notice and suspension the engine owes on ``day`` (nothing is written)."""
    today = today or day
    for row in _candidates(session, day):
        yield from _owed(row, day, today)


# --- the run ------------------------------------------------------------------------------


@dataclass
class DayResult:
    day: dt.date
    notices: Counter = field(default_factory=Counter)  # kind → rows created
    routes: Counter = field(default_factory=Counter)  # route → rows created
    suspended: int = 0
    pending_listed: int = 0
    public_notices: int = 0

    def format(self) -> str:
        kinds = "、".join(f"{kind} {n}" for kind, n in sorted(self.notices.items())) or "无"
        routes = "、".join(f"{route} {n}" for route, n in sorted(self.routes.items())) or "无"
        return (
            f"{self.day.isoformat()}：提醒/通知 notices {kinds}（{routes}）；"
            f"暂停发放 suspended {self.suspended}；待核实 pending {self.pending_listed}；"
            f"公示 public notices {self.public_notices}"
        )


def run_daily(runtime: Runtime, day: dt.date | None = None) -> list[DayResult]:
    """Do today's work (``day``, default the clock's today) and any days missed before it."""
    today = day or runtime.clock.today()
    limit = int(runtime.config.get("LIFECYCLE_CATCH_UP_DAYS", CATCH_UP_DAYS))
    with runtime.database.session() as session:
        last_done = session.scalar(
            select(func.max(LifecycleDay.day)).where(LifecycleDay.day <= today)
        )
    # today is always done again (a roster imported since the morning run); missed days once
    start = today if last_done is None else max(last_done + ONE_DAY, today - dt.timedelta(limit))
    start = min(start, today)
    results = []
    for offset in range((today - start).days + 1):
        results.append(_run_day(runtime, start + dt.timedelta(offset), today))
    return results


def _run_day(runtime: Runtime, day: dt.date, today: dt.date) -> DayResult:
    from services import public_notice  # the July notice is the public side of suspension

    result = DayResult(day)
    created: list[int] = []
    with runtime.database.session() as session:
        if session.bind.dialect.name == "postgresql":
            # Two runs of one day (cron and a clerk) take turns: the second finds it all done,
            # and their row locks on persons can never deadlock.
            session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY + day.toordinal())))
        owed = list(owed_on(session, day, today))
        write = _write_postgres if session.bind.dialect.name == "postgresql" else _write_portable
        created = write(session, owed, day, runtime.clock.utcnow(), result)
        result.public_notices = public_notice.post_due_notices(session, day)
        insert_ignoring_duplicates(
            session, LifecycleDay, [{"day": day, "finished_at": runtime.clock.utcnow()}], ["day"]
        )
    queue = runtime.extensions.get("jobs")  # none (a script, a test): deliver here and now
    for batch in _chunks(created, DELIVERY_BATCH):
        if queue is not None:
            queue.enqueue(deliver_notices, batch)
        else:
            deliver_notices(runtime, batch)
    log.info("daily run %s", result.format())
    return result


def _write_portable(session, owed, day, now, result: DayResult) -> list[int]:
    """Any database: suspensions, notices and pending rows in batches of ORM-free statements."""
    routes = _routes(session, [o.person_id for o in owed])
    suspended_ids = _suspend(session, [o for o in owed if o.kind == SUSPENDED], now)
    result.suspended = len(suspended_ids)
    notices = [o for o in owed if o.kind != SUSPENDED or o.person_id in suspended_ids]
    created = _create_notices(session, notices, day, routes, result)
    result.pending_listed = _list_pending(session, [o for o in owed if o.kind == OVERDUE], day)
    return created


_STAGE = """
CREATE TEMPORARY TABLE lifecycle_owed (
    person_id integer, kind varchar(16), due_date date, effective_on date,
    reason varchar(256), unit_name varchar(128), deadline date,
    route varchar(8), won boolean DEFAULT false
) ON COMMIT DROP
"""
_SUSPEND = """
WITH suspended AS (
    UPDATE persons p SET status = 'suspended', updated_at = %(now)s
    FROM lifecycle_owed o
    WHERE o.kind = 'suspended' AND p.id = o.person_id AND p.status = 'normal'
    RETURNING p.id, p.person_no, o.effective_on, o.reason
), history AS (
    INSERT INTO payment_status_changes (person_id, status, effective_on, reason, created_at)
    SELECT id, 'suspended', effective_on, reason, %(now)s FROM suspended
), audit AS (
    INSERT INTO audit_log (at, actor, action, target_type, target_id, detail)
    SELECT %(now)s, 'system', 'payment.suspended', 'person', person_no,
           json_build_object('effective_on', effective_on)
    FROM suspended
)
UPDATE lifecycle_owed o SET won = true FROM suspended s
WHERE o.person_id = s.id AND o.kind = 'suspended'
"""
_ROUTE = """
UPDATE lifecycle_owed o SET route = CASE
    WHEN EXISTS (SELECT 1 FROM bindings b WHERE b.person_id = o.person_id) THEN 'account'
    WHEN coalesce(p.phone, '') <> '' THEN 'sms'
    ELSE 'unit' END
FROM persons p WHERE p.id = o.person_id
"""
_NOTICES = """
INSERT INTO notices (person_id, kind, due_date, day, route, created_at)
SELECT person_id, kind, due_date, %(day)s, route, %(now)s FROM lifecycle_owed
WHERE kind <> 'suspended' OR won
ON CONFLICT (person_id, kind, due_date) DO NOTHING
RETURNING id, kind, route
"""
_PENDING = """
INSERT INTO pending_verifications (person_id, unit_name, due_date, listed_on, deadline)
SELECT person_id, unit_name, due_date, %(day)s, deadline FROM lifecycle_owed
WHERE kind = 'overdue' AND deadline IS NOT NULL
ON CONFLICT (person_id, due_date) DO NOTHING
"""


def _write_postgres(session, owed, day, now, result: DayResult) -> list[int]:
    """PostgreSQL: COPY what the engine decided into a temporary table, then a few set-based
    statements do the rest — a million people's day in seconds, and just as race-free."""
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(_STAGE)
    with cursor.copy(
        "COPY lifecycle_owed (person_id, kind, due_date, effective_on, reason, unit_name,"
        " deadline) FROM STDIN"
    ) as copy:
        for o in owed:
            deadline = add_months(day, o.pending_months) if o.pending_months else None
            copy.write_row(
                (o.person_id, o.kind, o.due_date, o.effective_on, o.reason, o.unit_name, deadline)
            )
    cursor.execute("ANALYZE lifecycle_owed")  # without row counts the planner loops per row
    cursor.execute(_SUSPEND, {"now": now})
    cursor.execute("SELECT count(*) FROM lifecycle_owed WHERE won")
    result.suspended = cursor.fetchone()[0]
    cursor.execute(_ROUTE)
    cursor.execute(_NOTICES, {"day": day, "now": now})
    created = []
    for notice_id, kind, route in cursor.fetchall():
        result.notices[kind] += 1
        result.routes[route] += 1
        if route != ROUTE_UNIT:
            created.append(notice_id)
    cursor.execute(_PENDING, {"day": day})
    result.pending_listed = cursor.rowcount
    cursor.execute("DROP TABLE lifecycle_owed")
    return created


def _routes(session: Session, person_ids: Sequence[int]) -> dict[int, str]:
    """'account' when someone is bound to the person, else 'sms' with a phone, else 'unit'."""
    routes: dict[int, str] = {}
    for chunk in _chunks(sorted(set(person_ids)), BATCH):
        bound = set(
            session.scalars(
                select(Binding.person_id).where(Binding.person_id.in_(chunk)).distinct()
            )
        )
        phones = dict(
            session.execute(select(Person.id, Person.phone).where(Person.id.in_(chunk))).all()
        )
        for person_id in chunk:
            if person_id in bound:
                routes[person_id] = ROUTE_ACCOUNT
            elif phones.get(person_id):
                routes[person_id] = ROUTE_SMS
            else:
                routes[person_id] = ROUTE_UNIT
    return routes


def _suspend(session: Session, owed: Sequence[OwedNotice], now: dt.datetime) -> set[int]:
    """Suspend the still-paid among ``owed``: the status change, its history row, the audit."""
    done: set[int] = set()
    by_person = {o.person_id: o for o in owed}
    for chunk in _chunks(sorted(by_person), BATCH):
        # Only the run whose UPDATE finds the person still paid records the suspension.
        ids = session.scalars(
            update(Person)
            .where(Person.id.in_(chunk), Person.status == PaymentStatus.normal)
            .values(status=PaymentStatus.suspended, updated_at=now)
            .returning(Person.id)
            .execution_options(synchronize_session=False)
        ).all()
        if not ids:
            continue
        changes = [
            {
                "person_id": pid,
                "status": "suspended",
                "effective_on": by_person[pid].effective_on,
                "reason": by_person[pid].reason,
                "created_at": now,
            }
            for pid in ids
        ]
        session.execute(PaymentStatusChange.__table__.insert(), changes)
        numbers = dict(
            session.execute(select(Person.id, Person.person_no).where(Person.id.in_(ids))).all()
        )
        audits = [
            {
                "at": now,
                "actor": "system",
                "action": "payment.suspended",
                "target_type": "person",
                "target_id": numbers[pid],
                "detail": {"effective_on": by_person[pid].effective_on.isoformat()},
            }
            for pid in ids
        ]
        session.execute(AuditLog.__table__.insert(), audits)
        done.update(ids)
    return done


def _create_notices(session, owed, day, routes, result: DayResult) -> list[int]:
    rows = [
        {
            "person_id": o.person_id,
            "kind": o.kind,
            "due_date": o.due_date,
            "day": day,
            "route": routes[o.person_id],
            "created_at": utcnow(),
        }
        for o in owed
    ]
    created: list[int] = []
    for chunk in _chunks(rows, BATCH):
        inserted = insert_ignoring_duplicates(
            session, CycleNotice, chunk, ["person_id", "kind", "due_date"], returning=True
        )
        for notice_id, kind, route in inserted:
            result.notices[kind] += 1
            result.routes[route] += 1
            if route != ROUTE_UNIT:
                created.append(notice_id)
    return created


def _list_pending(session: Session, overdue: Sequence[OwedNotice], day: dt.date) -> int:
    """Shanxi: overdue with no record at all → the unit verifies within the region's months
    (shanxi-2018-certification-rules.txt 二(三), 三(一)1)."""
    rows = [
        {
            "person_id": o.person_id,
            "unit_name": o.unit_name,
            "due_date": o.due_date,
            "listed_on": day,
            "deadline": add_months(day, o.pending_months),
        }
        for o in overdue
        if o.pending_months
    ]
    listed = 0
    for chunk in _chunks(rows, BATCH):
        listed += len(
            insert_ignoring_duplicates(
                session, PendingVerification, chunk, ["person_id", "due_date"], returning=True
            )
        )
    return listed


def insert_ignoring_duplicates(
    session: Session, model, rows: Sequence[dict], keys: Sequence[str], *, returning: bool = False
):
    """INSERT … ON CONFLICT (keys) DO NOTHING on PostgreSQL and SQLite; the inserted rows back.

    With ``returning`` the result lists (id, kind, route) for notices and (id,) otherwise —
    the rows this call created, never those another run created first. One statement, sent
    as executemany (SQLAlchemy batches it into multi-row INSERTs), so it compiles once.
    """
    if not rows:
        return []
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = model.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if not returning:
        session.execute(statement, list(rows))
        return []
    columns = [table.c.id, table.c.kind, table.c.route] if model is CycleNotice else [table.c.id]
    return session.execute(statement.returning(*columns), list(rows)).all()


def _chunks(items: Sequence, size: int) -> Iterator[list]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- delivery -----------------------------------------------------------------------------


def notice_text(kind: str, name: str, assessment: Assessment) -> str:
    """The words of a notice: the engine's own sentence about the person, headed by who it is."""
    heading = "【养老金暂停发放通知】" if kind == SUSPENDED else "【养老金认证提醒】"
    return f"{heading}{name}：{assessment.message}"


def deliver_notices(runtime: Runtime, notice_ids: Sequence[int]) -> int:
    """Job: send these notices (accounts through the outbound port, else SMS); returns how many.

    A reminder whose due date has moved since it was owed (the person certified meanwhile) is
    not sent: it is marked delivered with nothing said. A notice nobody could be reached for
    stays undelivered (``delivered_at`` NULL) for staff to see.
    """
    from services.notifications import texts
    from services.outbound import recipients_by_person
    from services.sms import sms_sender

    today = runtime.clock.today()
    sent = 0
    with runtime.database.session() as session:
        rows = session.execute(
            select(CycleNotice, Person)
            .join(Person, Person.id == CycleNotice.person_id)
            .where(CycleNotice.id.in_(list(notice_ids)), CycleNotice.delivered_at.is_(None))
            # the same job run twice at once (an RQ retry): the second skips what the first
            # holds, and finds it delivered afterwards
            .with_for_update(of=CycleNotice, skip_locked=True)
        ).all()
        recipients = recipients_by_person(session, [person.id for _, person in rows])
        for notice, person in rows:
            assessment = assess(person, today)
            stale = notice.kind != SUSPENDED and (
                assessment.window is None or assessment.window.due_date != notice.due_date
            )
            if not stale:
                messages = texts(notice_text(notice.kind, person.name, assessment))
                reachable = [
                    r for r in recipients.get(person.id, []) if runtime.outbound.can_reach(r)
                ]
                if reachable:
                    for recipient in reachable:
                        runtime.outbound.deliver(recipient, messages)
                elif person.phone:
                    sms_sender(runtime).send(person.phone, messages[0].text)
                else:
                    log.warning("notice #%s: person #%s cannot be reached", notice.id, person.id)
                    continue
                sent += 1
            notice.delivered_at = runtime.clock.utcnow()
    return sent


# --- what the console shows -----------------------------------------------------------------


def upcoming_notices(session: Session, start: dt.date, days: int = 7) -> dict[dt.date, Counter]:
    """Per day ahead, how many notices of each kind the daily run will owe (nothing written)."""
    ahead: dict[dt.date, Counter] = {}
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        ahead[day] = Counter(o.kind for o in owed_on(session, day))
    return ahead


def suspensions(session: Session, start: dt.date, end: dt.date, region_prefix: str = ""):
    """Suspensions and resumptions taking effect in [start, end]: (change, person) pairs."""
    return session.execute(
        select(PaymentStatusChange, Person)
        .join(Person, Person.id == PaymentStatusChange.person_id)
        .where(
            PaymentStatusChange.status.in_(("suspended", "resumed", "stopped")),
            PaymentStatusChange.effective_on.between(start, end),
            Person.region_code.startswith(region_prefix),
        )
        .order_by(PaymentStatusChange.effective_on, Person.person_no)
    ).all()


def unit_list(
    session: Session, start: dt.date, end: dt.date
) -> dict[str, list[tuple[CycleNotice, Person]]]:
    """People neither bound to an account nor with a phone, owed a notice in [start, end]:
    their unit tells them (shanxi-2018-certification-rules.txt 一(四): 没有手机号码的由参保单位通知)."""
    found: dict[str, list] = defaultdict(list)
    rows = session.execute(
        select(CycleNotice, Person)
        .join(Person, Person.id == CycleNotice.person_id)
        .where(CycleNotice.route == ROUTE_UNIT, CycleNotice.day.between(start, end))
        .order_by(Person.unit_name, CycleNotice.day, Person.person_no)
    ).all()
    for notice, person in rows:
        found[person.unit_name or "（未登记单位）"].append((notice, person))
    return dict(found)


def figures(session: Session, day: dt.date) -> dict[str, int]:
    """What the dashboard shows of the daily run on ``day``: notices and suspensions made,
    people waiting for their unit (open pending verifications) and on their unit's list."""
    notices = dict(
        session.execute(
            select(CycleNotice.kind, func.count())
            .where(CycleNotice.day == day)
            .group_by(CycleNotice.kind)
        ).all()
    )
    return {
        "reminders": sum(n for kind, n in notices.items() if kind.startswith("remind_")),
        "overdue_notices": notices.get(OVERDUE, 0),
        "suspended": notices.get(SUSPENDED, 0),
        "unit_list": session.scalar(
            select(func.count())
            .select_from(CycleNotice)
            .where(CycleNotice.day == day, CycleNotice.route == ROUTE_UNIT)
        ),
        "pending_verification": session.scalar(
            select(func.count())
            .select_from(PendingVerification)
            .where(PendingVerification.outcome.is_(None))
        ),
        "suspended_people": session.scalar(
            select(func.count()).select_from(Person).where(Person.status == PaymentStatus.suspended)
        ),
    }
