"""The certification year: the daily run over a simulated 2026, day by day, on PostgreSQL.

Reminders (shanxi-2018-certification-rules.txt 一(四): three months ahead, SMS, or the unit for
people without a phone), suspension when the cycle is missed (jiangxi-xunwu 二(四), shaanxi
notice 三.2, guangxi 三(二)), resumption with back pay from the month payment stopped (all
seeds), Shanxi's pending list (二(三), 三(一)1) and Jiangxi's July notice (二(四)).
Test names cite the rule they check; the expected dates are worked out by hand from the seeds.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from services.certification import record_certification
from services.clock import FrozenClock
from services.lifecycle import figures, owed_on, run_daily, unit_list, upcoming_notices
from services.models import (
    BenefitType,
    Binding,
    ChannelAccount,
    CycleNotice,
    PaymentStatusChange,
    PendingVerification,
    Person,
    PublicNotice,
)
from services.outbound import CollectingOutbound, OutboundRouter, Recipient
from services.policy import assess, policy_for
from services.public_notice import export_notice, notice_lines, notices_on_display
from services.runtime import Runtime
from services.sms import LoggingSmsSender
from tests.support import make_person

D = dt.date
DEFAULT, XINCHENG, SHANXI, XUNWU, GUANGXI = "110101", "610102", "140105", "360734", "450103"
REGIONS = (DEFAULT, XINCHENG, SHANXI, XUNWU, GUANGXI)
YEAR_START, YEAR_END = D(2026, 1, 1), D(2026, 12, 31)


class World:
    """A runtime on the test database with a collecting WeChat port and a logging SMS sender."""

    def __init__(self, db, start=YEAR_START):
        self.clock = FrozenClock(start)
        self.wechat = CollectingOutbound()
        self.sms = LoggingSmsSender()
        self.runtime = Runtime(
            config={},
            database=db,
            clock=self.clock,
            outbound=OutboundRouter({"wechat": self.wechat}),
            extensions={"sms": self.sms},
        )
        self.db = db

    def run_until(self, last: dt.date, on_day=None) -> None:
        """The cron job: once each morning from the clock's day through ``last``."""
        while self.clock.today() <= last:
            if on_day:
                on_day(self.clock.today())
            run_daily(self.runtime)
            self.clock.advance(days=1)

    def notices(self, person_id: int) -> list[tuple[str, dt.date, dt.date]]:
        with self.db.session() as session:
            return [
                (n.kind, n.day, n.due_date)
                for n in session.scalars(
                    select(CycleNotice)
                    .where(CycleNotice.person_id == person_id)
                    .order_by(CycleNotice.id)
                )
            ]

    def changes(self, person_id: int) -> list[PaymentStatusChange]:
        with self.db.session() as session:
            return session.scalars(
                select(PaymentStatusChange)
                .where(PaymentStatusChange.person_id == person_id)
                .order_by(PaymentStatusChange.id)
            ).all()


def session_of(db):
    """A plain session for reading (no transaction block to commit)."""
    return db.sessions()


def _bind(session, person, openid: str) -> Recipient:
    account = ChannelAccount(channel="wechat", external_id=openid)
    session.add(account)
    session.flush()
    session.add(Binding(account_id=account.id, person_id=person.id, relation="self"))
    return Recipient("wechat", openid)


def _roster(session) -> dict[str, Person]:
    """Every region × every benefit type, certified on staggered days of 2025, plus routes."""
    people = {}
    seq = 0
    for r, region in enumerate(REGIONS):
        for b, benefit in enumerate(BenefitType):
            seq += 1
            last = D(2025, 1 + (r * 6 + b) % 12, 1 + (r * 5 + b * 3) % 27)
            people[f"{region}:{benefit}"] = make_person(
                session,
                name=f"人员{seq}",
                seq=seq,
                region_code=region,
                benefit_type=benefit,
                birth_date=D(1950, 1 + seq % 12, 10),
                last_certified_on=last,
                phone=f"139{seq:08d}",
                unit_name=f"单位{r}",
            )
    return people


def _expected(person: Person) -> tuple[dt.date, list[tuple[str, dt.date]], dt.date]:
    """Due date, reminder days and suspension day of someone who never certifies again.

    The due date is the engine's; the reminder days and the suspension day are the rules:
    3 months, 1 month, 1 week before; the 1st of the month after the due date.
    """
    from services.policy import add_months

    due = assess(person, YEAR_START).window.due_date
    reminders = [
        ("remind_3m", add_months(due, -3)),
        ("remind_1m", add_months(due, -1)),
        ("remind_7d", due - dt.timedelta(days=7)),
    ]
    suspension = add_months(due.replace(day=1), 1)
    return due, reminders, suspension


def test_simulated_year_every_region_and_benefit_each_reminder_once_then_suspended_on_time(db):
    """shanxi-2018 一(四) reminders three months ahead (then one month, one week: issue 12);
    suspension from the month after the missed deadline (shaanxi notice 三.2, jiangxi 二(四),
    guangxi 三(二)): for every region and benefit type, over a whole year, run every day."""
    world = World(db)
    with db.session() as session:
        people = {key: p.id for key, p in _roster(session).items()}
        facts = {key: session.get(Person, pid) for key, pid in people.items()}
        expected = {key: _expected(person) for key, person in facts.items()}
    world.run_until(YEAR_END)

    for key, person_id in people.items():
        due, reminders, suspension = expected[key]
        sent = world.notices(person_id)
        in_year = [(k, d) for k, d in reminders if d >= YEAR_START and due >= YEAR_START]
        got = [(kind, day) for kind, day, d in sent if kind.startswith("remind") and d == due]
        assert got == in_year, key
        suspended = [c for c in world.changes(person_id) if c.status == "suspended"]
        if suspension <= YEAR_END:
            assert [c.effective_on for c in suspended] == [suspension], key
            assert ("suspended", suspension, due) in sent, key
        else:
            assert suspended == [], key
    # late certification on New Year's Eve: back pay from the recorded suspension month
    with db.session() as session:
        for key, person_id in people.items():
            person = session.get(Person, person_id)
            suspension = expected[key][2]
            outcome = record_certification(session, person, "face", at=dt.datetime(2026, 12, 31))
            if suspension <= YEAR_END:
                months = (2026 - suspension.year) * 12 + 12 - suspension.month + 1
                assert outcome.resumed.back_pay_from == suspension, key
                assert outcome.resumed.back_pay_months == months, key
            else:
                assert outcome.resumed is None, key
    # nobody heard the same thing twice
    with db.session() as session:
        duplicates = session.execute(
            select(CycleNotice.person_id, CycleNotice.kind, CycleNotice.due_date)
            .group_by(CycleNotice.person_id, CycleNotice.kind, CycleNotice.due_date)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []


def test_shanxi_2018_reminder_three_months_ahead_by_sms_and_pending_list_after_the_deadline(db):
    """shanxi-2018 一(四): 提前3个月发送认证提醒（短信）; 二(三), 三(一)1: no record and no
    certification in the period → 待核实人员, the unit verifies within 3 months."""
    world = World(db)
    with db.session() as session:
        person = make_person(
            session,
            region_code=SHANXI,
            last_certified_on=D(2025, 5, 20),
            phone="13912345678",
            unit_name="太原钢铁公司",
        )
        pid = person.id
    world.run_until(D(2026, 6, 30))
    assert world.notices(pid) == [
        ("remind_3m", D(2026, 2, 20), D(2026, 5, 20)),
        ("remind_1m", D(2026, 4, 20), D(2026, 5, 20)),
        ("remind_7d", D(2026, 5, 13), D(2026, 5, 20)),
        ("overdue", D(2026, 5, 21), D(2026, 5, 20)),
        ("suspended", D(2026, 6, 1), D(2026, 5, 20)),
    ]
    phones = {phone for phone, _ in world.sms.sent}
    assert phones == {"13912345678"}
    first_sms = world.sms.sent[0][1]
    assert "2026年5月20日" in first_sms and "民生山西" in first_sms
    with db.session() as session:
        pending = session.scalars(select(PendingVerification)).one()
        assert (pending.unit_name, pending.listed_on, pending.deadline) == (
            "太原钢铁公司",
            D(2026, 5, 21),
            D(2026, 8, 21),
        )


def test_jiangxi_xunwu_2_4_suspended_1_july_resumes_with_back_pay_from_july(db):
    """jiangxi-xunwu 二(二) January–June window, 二(四) suspension in July and back pay after
    a late certification; the back-pay months come from the recorded suspension."""
    world = World(db)
    with db.session() as session:
        person = make_person(
            session, region_code=XUNWU, benefit_type="resident", last_certified_on=D(2025, 3, 1)
        )
        recipient = _bind(session, person, "openid-zhong")
        pid = person.id
    world.run_until(D(2026, 9, 9))
    kinds = [(kind, day) for kind, day, _ in world.notices(pid)]
    assert kinds == [
        ("remind_3m", D(2026, 3, 30)),
        ("remind_1m", D(2026, 5, 30)),
        ("remind_7d", D(2026, 6, 23)),
        ("suspended", D(2026, 7, 1)),
    ]
    texts = world.wechat.texts_for(recipient)
    assert len(texts) == 4 and "赣服通" in texts[0]
    assert "暂停发放" in texts[-1] and "补发" in texts[-1]  # told kindly how to resume
    with db.session() as session:
        person = session.get(Person, pid)
        assert person.status == "suspended"
        outcome = record_certification(
            session, person, "face", channel="wechat", at=dt.datetime(2026, 9, 10, 10)
        )
    assert (outcome.resumed.back_pay_from, outcome.resumed.back_pay_months) == (D(2026, 7, 1), 3)
    statuses = [(c.status, c.effective_on, c.back_pay_months) for c in world.changes(pid)]
    assert statuses == [("suspended", D(2026, 7, 1), None), ("resumed", D(2026, 9, 10), 3)]


def test_back_pay_months_come_from_the_recorded_suspension_not_the_cycle(db):
    """从停发之月起补发 (all seeds): a person suspended by the daily run on a caught-up day
    gets back pay from the month the history records."""
    with db.session() as session:
        person = make_person(session, region_code=DEFAULT, last_certified_on=D(2025, 2, 10))
        session.add(
            PaymentStatusChange(
                person_id=person.id, status="suspended", effective_on=D(2026, 4, 1), reason="x"
            )
        )
        person.status = "suspended"
        outcome = record_certification(session, person, "home_visit", at=dt.datetime(2026, 6, 2))
    assert (outcome.resumed.back_pay_from, outcome.resumed.back_pay_months) == (D(2026, 4, 1), 3)


def test_guangxi_birthday_month_cycle_and_dependents_six_months(db):
    """guangxi 附件2 birthday month to the month before the next birthday; 三(二) dependants
    every 6 months."""
    world = World(db)
    with db.session() as session:
        retiree = make_person(
            session,
            seq=3,
            region_code=GUANGXI,
            birth_date=D(1955, 5, 8),
            last_certified_on=D(2024, 6, 10),
        )
        dependant = make_person(
            session,
            seq=4,
            region_code=GUANGXI,
            benefit_type="dependent",
            last_certified_on=D(2025, 11, 15),
        )
        ids = retiree.id, dependant.id
    world.run_until(D(2026, 6, 30))
    assert [(k, d) for k, d, _ in world.notices(ids[0])] == [
        ("remind_3m", D(2026, 1, 30)),
        ("remind_1m", D(2026, 3, 30)),
        ("remind_7d", D(2026, 4, 23)),
        ("suspended", D(2026, 5, 1)),
    ]
    assert [(k, d) for k, d, _ in world.notices(ids[1])] == [
        ("remind_3m", D(2026, 2, 15)),
        ("remind_1m", D(2026, 4, 15)),
        ("remind_7d", D(2026, 5, 8)),
        ("overdue", D(2026, 5, 16)),
        ("suspended", D(2026, 6, 1)),
    ]


def test_certifying_in_time_stops_the_reminders_and_moves_the_due_date(db):
    """shaanxi notice 二(二): a certification starts the next 12 months; no more reminders."""
    world = World(db)
    with db.session() as session:
        person = make_person(session, region_code=DEFAULT, last_certified_on=D(2025, 5, 1))
        pid = person.id

    def certify_on_march_1(day):
        if day == D(2026, 3, 1):
            with db.session() as session:
                record_certification(
                    session, session.get(Person, pid), "face", at=dt.datetime(2026, 3, 1)
                )

    world.run_until(D(2026, 12, 31), on_day=certify_on_march_1)
    assert [(k, d) for k, d, _ in world.notices(pid)] == [
        ("remind_3m", D(2026, 2, 1)),
        ("remind_3m", D(2026, 12, 1)),  # the next cycle, due 2027-03-01
    ]
    assert world.changes(pid) == []


def test_running_twice_a_day_and_concurrently_sends_nothing_twice(db):
    """Idempotent per (person, kind, due date), also for two runs at the same moment."""
    world = World(db, start=D(2026, 6, 1))
    with db.session() as session:
        person = make_person(session, region_code=DEFAULT, last_certified_on=D(2025, 5, 15))
        recipient = _bind(session, person, "openid-twice")
        pid = person.id
    errors = []
    barrier = threading.Barrier(4)

    def run():
        try:
            barrier.wait()
            run_daily(world.runtime)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    run_daily(world.runtime)
    assert not errors
    assert [c.status for c in world.changes(pid)] == ["suspended"]
    assert [k for k, _, _ in world.notices(pid)] == ["suspended"]
    assert len(world.wechat.texts_for(recipient)) == 1


def test_missed_days_are_caught_up_without_late_reminders(db):
    """Cron did not run for a week: the suspension still dates from its day; a reminder whose
    due date is still ahead is sent late rather than never."""
    world = World(db, start=D(2026, 3, 28))
    with db.session() as session:
        suspended = make_person(
            session, seq=5, region_code=DEFAULT, last_certified_on=D(2025, 3, 1)
        )
        reminded = make_person(
            session, seq=6, region_code=DEFAULT, last_certified_on=D(2025, 6, 30)
        )
        ids = suspended.id, reminded.id
    run_daily(world.runtime)  # 28 March
    world.clock.set(D(2026, 4, 5))
    results = run_daily(world.runtime)
    assert [r.day for r in results][0] == D(2026, 3, 29) and results[-1].day == D(2026, 4, 5)
    assert [c.effective_on for c in world.changes(ids[0])] == [D(2026, 4, 1)]
    assert [(k, d) for k, d, _ in world.notices(ids[1])] == [("remind_3m", D(2026, 3, 30))]


def test_people_without_account_or_phone_are_on_their_units_list(db):
    """shanxi-2018 一(四): 没有手机号码的退休人员由参保单位通知."""
    world = World(db, start=D(2026, 2, 20))
    with db.session() as session:
        make_person(
            session, region_code=SHANXI, last_certified_on=D(2025, 5, 20), unit_name="晋中供电局"
        )
    assert figures(session_of(db), D(2026, 2, 20))["reminders"] == 0
    run_daily(world.runtime)
    assert figures(session_of(db), D(2026, 2, 20)) | {"suspended_people": 0} == {
        "reminders": 1,
        "overdue_notices": 0,
        "suspended": 0,
        "unit_list": 1,
        "pending_verification": 0,
        "suspended_people": 0,
    }
    assert world.sms.sent == [] and world.wechat.sent == []
    with db.session() as session:
        listed = unit_list(session, D(2026, 2, 1), D(2026, 2, 28))
        assert list(listed) == ["晋中供电局"]
        assert [notice.kind for notice, _ in listed["晋中供电局"]] == ["remind_3m"]


def test_jiangxi_public_notice_in_july_per_village_masked_ids_kept_ten_days(db, tmp_path):
    """jiangxi-xunwu 二(四): 每年7月 … 由村（居）委会公示，公示时间不少于10天."""
    world = World(db, start=D(2026, 6, 30))
    with db.session() as session:
        missed = make_person(
            session,
            seq=7,
            region_code=XUNWU,
            benefit_type="resident",
            last_certified_on=D(2025, 4, 2),
        )
        make_person(
            session,
            seq=8,
            region_code=XUNWU,
            benefit_type="resident",
            last_certified_on=D(2026, 2, 3),
        )
        number = missed.id_number
    world.run_until(D(2026, 7, 2))
    with db.session() as session:
        notice = session.scalars(select(PublicNotice)).one()
        assert (notice.region_code, notice.posted_on, notice.keep_until) == (
            XUNWU,
            D(2026, 7, 1),
            D(2026, 7, 11),
        )
        assert [n.id for n in notices_on_display(session, D(2026, 7, 10))] == [notice.id]
        assert notices_on_display(session, D(2026, 7, 11)) == []
        lines = notice_lines(session, XUNWU, 2026)
        assert [(line.name, line.masked_id) for line in lines] == [
            ("王秀兰", number[:4] + "*" * 10 + number[-4:])
        ]
        out = tmp_path / "notice.xlsx"
        assert export_notice(session, XUNWU, 2026, out) == 1
    from openpyxl import load_workbook

    cells = [c for row in load_workbook(out).active.iter_rows(values_only=True) for c in row if c]
    assert number not in cells and "王秀兰" in cells


def test_upcoming_notices_show_what_the_run_will_do_without_doing_it(db):
    with db.session() as session:
        make_person(session, region_code=DEFAULT, last_certified_on=D(2025, 5, 20))
    with db.session() as session:
        ahead = upcoming_notices(session, D(2026, 2, 18), days=5)
        assert ahead[D(2026, 2, 20)] == {"remind_3m": 1}
        assert sum(sum(c.values()) for c in ahead.values()) == 1
        assert session.scalar(select(func.count()).select_from(CycleNotice)) == 0
        assert list(owed_on(session, D(2026, 2, 21))) == []


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_has_reminders_in_the_data_file(region):
    """Reminder offsets are data (regions.yaml), cited to shanxi-2018 一(四)."""
    policy = policy_for(region)
    assert policy.reminder_months_before_due == 3
    assert policy.extra["reminder_followups"] == [{"months": 1}, {"days": 7}]


def test_the_embedded_sqlite_database_runs_the_same_year(sqlite_db):
    """The portable path (no COPY, no temporary tables): jiangxi-xunwu 二(四) on SQLite."""
    world = World(sqlite_db, start=D(2026, 6, 22))
    with sqlite_db.session() as session:
        person = make_person(
            session, region_code=XUNWU, benefit_type="resident", last_certified_on=D(2025, 3, 1)
        )
        recipient = _bind(session, person, "openid-sqlite")
        pid = person.id
    world.run_until(D(2026, 7, 2))
    run_daily(world.runtime)
    assert [(k, d) for k, d, _ in world.notices(pid)] == [
        ("remind_7d", D(2026, 6, 23)),
        ("suspended", D(2026, 7, 1)),
    ]
    assert [c.effective_on for c in world.changes(pid)] == [D(2026, 7, 1)]
    assert len(world.wechat.texts_for(recipient)) == 2


def test_a_delivery_job_run_twice_sends_once(db):
    """An RQ retry or a duplicated job must not repeat a notice."""
    from services.lifecycle import deliver_notices

    world = World(db, start=D(2026, 2, 20))
    world.runtime.jobs = _Recording()
    with db.session() as session:
        person = make_person(session, region_code=SHANXI, last_certified_on=D(2025, 5, 20))
        recipient = _bind(session, person, "openid-retry")
    run_daily(world.runtime)
    (func, (ids,)) = world.runtime.jobs.jobs[0]
    threads = [threading.Thread(target=func, args=(world.runtime, ids)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    deliver_notices(world.runtime, ids)
    assert len(world.wechat.texts_for(recipient)) == 1


class _Recording:
    def __init__(self):
        self.jobs = []

    def enqueue(self, func, *args):
        self.jobs.append((func, args))
