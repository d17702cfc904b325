"""认证政策引擎：某人某天能不能认证、为什么不能、是否逾期停发、补认证后补发几个月。

Plain functions over plain facts (``PersonFacts``); the rules themselves are data in
``services/data/regions.yaml`` (see ``services.regions``). Every date rule below names the
cycle kind it implements; the seeds behind each kind are cited in the YAML.

Checks run in this order, so a stranger typing someone else's ID learns nothing about the
person's payment: not on the roster → name/ID differ → payment stopped → already certified.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import unicodedata
from dataclasses import dataclass

from services.regions import CycleRule, RegionPolicy, policy_for

__all__ = [
    "Assessment",
    "CycleWindow",
    "IdentityMismatch",
    "PersonFacts",
    "Reason",
    "RegionPolicy",
    "Resumption",
    "add_months",
    "assess",
    "compare_identity",
    "current_window",
    "format_date",
    "next_window",
    "policy_for",
    "resumption",
    "suspension_date",
]

ONE_DAY = dt.timedelta(days=1)
# Beyond this many differing ID digits the positions say nothing useful: just "differs".
_MAX_ID_POSITIONS_SHOWN = 3


class Reason(enum.StrEnum):
    """Why a person may not certify now."""

    not_recipient = "not_recipient"
    already_certified = "already_certified"
    identity_mismatch = "identity_mismatch"
    payment_stopped = "payment_stopped"


@dataclass(frozen=True)
class PersonFacts:
    """The roster facts the policy needs; ``from_person`` reads them off a ``Person`` row."""

    region_code: str
    benefit_type: str
    birth_date: dt.date | None = None
    status: str = "normal"  # normal / suspended / stopped (PaymentStatus values)
    last_certified_on: dt.date | None = None
    name: str | None = None
    id_number: str | None = None

    @classmethod
    def from_person(cls, person) -> PersonFacts:
        return cls(
            region_code=person.region_code,
            benefit_type=str(person.benefit_type),
            birth_date=person.birth_date,
            status=str(person.status),
            last_certified_on=person.last_certified_on,
            name=person.name,
            id_number=person.id_number,
        )


@dataclass(frozen=True)
class CycleWindow:
    """The days on which the next certification is accepted; due_date is the last of them."""

    opens_on: dt.date
    due_date: dt.date

    def __contains__(self, day: dt.date) -> bool:
        return self.opens_on <= day <= self.due_date

    def describe(self, today: dt.date | None = None) -> str:
        """ "2027年1月1日至2027年12月1日" — from when, until when; "现在至…" once open."""
        opens = (
            "现在" if today is not None and self.opens_on <= today else format_date(self.opens_on)
        )
        return f"{opens}至{format_date(self.due_date)}"


@dataclass(frozen=True)
class IdentityMismatch:
    """Where the claimed name / ID differ from the roster (1-based positions), never what."""

    name_positions: tuple[int, ...] = ()
    name_length_differs: bool = False
    id_positions: tuple[int, ...] = ()
    id_length_differs: bool = False

    @property
    def name_differs(self) -> bool:
        return bool(self.name_positions) or self.name_length_differs

    @property
    def id_differs(self) -> bool:
        return bool(self.id_positions) or self.id_length_differs

    def describe(self) -> str:
        """e.g. "姓名第2个字" / "身份证号第17位" / "姓名字数和身份证号第3、17位"."""
        parts = []
        if self.name_length_differs:
            parts.append("姓名字数")
        elif self.name_positions:
            parts.append(f"姓名第{_join_positions(self.name_positions)}个字")
        if self.id_length_differs:
            parts.append("身份证号位数")
        elif 0 < len(self.id_positions) <= _MAX_ID_POSITIONS_SHOWN:
            parts.append(f"身份证号第{_join_positions(self.id_positions)}位")
        elif self.id_positions:
            parts.append("身份证号")
        return "和".join(parts)


@dataclass(frozen=True)
class Assessment:
    """The answer for one person on one day.

    ``window`` is the cycle the next certification counts for: it has not opened yet when
    the reason is ``already_certified``, and its due date is past when ``overdue``.
    Roster details (window, dates) are withheld (None) when the reason is
    not_recipient / identity_mismatch / payment_stopped.
    """

    may_certify: bool
    reason: Reason | None
    message: str  # one plain sentence; always ends with what to do next
    window: CycleWindow | None = None
    last_certified_on: dt.date | None = None
    next_due_date: dt.date | None = None
    overdue: bool = False
    suspended: bool = False
    # 1st of the month after the due date when overdue (may still lie ahead during the due
    # month: ``suspended`` is False until then); None when suspended only by the roster
    suspended_from: dt.date | None = None
    mismatch: IdentityMismatch | None = None
    policy: RegionPolicy | None = None


@dataclass(frozen=True)
class Resumption:
    """恢复发放与补发：从停发之月起补发，到认证当月（含）为止。"""

    resume_on: dt.date
    back_pay_from: dt.date | None  # 1st of the suspension month; None if unknown
    back_pay_months: int | None  # None if the suspension month is unknown


# --- dates ----------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day-of-month ``months`` later, clamped to the month's end (29 Feb → 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _first_of_next_month(day: dt.date) -> dt.date:
    return add_months(day.replace(day=1), 1)


def suspension_date(due_date: dt.date) -> dt.date:
    """The day payment stops when nobody certified by ``due_date``: the 1st of the next month
    (Jiangxi: 1 July after a 30 June deadline; back pay runs from that month, all seeds)."""
    return _first_of_next_month(due_date)


def _months_inclusive(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


def format_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _format_month(day: dt.date) -> str:
    return f"{day.year}年{day.month}月"


# --- cycles ---------------------------------------------------------------------------


def _calendar_window(cycle: CycleRule, year: int) -> CycleWindow:
    assert cycle.start_month is not None and cycle.end_month is not None
    return CycleWindow(dt.date(year, cycle.start_month, 1), _month_end(year, cycle.end_month))


def _birthday_window(birth_month: int, start_year: int) -> CycleWindow:
    # 生日当月1日 至 次年生日上月末 (guangxi 附件2): exactly one year, any birth month.
    opens = dt.date(start_year, birth_month, 1)
    return CycleWindow(opens, add_months(opens, 12) - ONE_DAY)


def next_window(cycle: CycleRule, last: dt.date, birth_date: dt.date | None = None) -> CycleWindow:
    """The window of the certification that follows one made on ``last``."""
    if cycle.kind == "rolling_months":
        assert cycle.months is not None
        due = add_months(last, cycle.months)
        opens = last + ONE_DAY
        if cycle.open_months_before_due:
            opens = max(opens, add_months(due, -cycle.open_months_before_due))
        if cycle.once_per_calendar_year:
            opens = max(opens, dt.date(last.year + 1, 1, 1))
        return CycleWindow(opens, due)
    if cycle.kind == "calendar_window":
        # A certification counts for its calendar year, also a late one (补办) in autumn.
        return _calendar_window(cycle, last.year + 1)
    if cycle.kind == "birthday_month":
        if birth_date is None:
            raise ValueError("the birthday-month cycle needs the person's birth date")
        month = birth_date.month
        covered_from = last.year if last.month >= month else last.year - 1
        return _birthday_window(month, covered_from + 1)
    raise ValueError(f"unknown cycle kind {cycle.kind!r}")


def current_window(
    cycle: CycleRule, today: dt.date, birth_date: dt.date | None = None
) -> CycleWindow | None:
    """The fixed window containing ``today`` (calendar / birthday cycles), else None."""
    if cycle.kind == "calendar_window":
        window = _calendar_window(cycle, today.year)
        return window if today in window else None
    if cycle.kind == "birthday_month" and birth_date is not None:
        month = birth_date.month
        return _birthday_window(month, today.year if today.month >= month else today.year - 1)
    return None


@dataclass(frozen=True)
class _Standing:
    window: CycleWindow
    overdue: bool
    suspended_from: dt.date | None  # set when overdue; may lie ahead within the due month
    first_cycle: bool  # window is a first-cycle campaign
    never_certified: bool


def _standing(facts: PersonFacts, policy: RegionPolicy, today: dt.date) -> _Standing:
    last = facts.last_certified_on
    if last is None:
        first = policy.first_cycle
        # A first cycle is that year's campaign. Later, someone never certified is more
        # likely a new recipient than a missed one (the roster has no start date, and the
        # office will have marked a missed one suspended): due now, never overdue.
        if first and first.applies_to(facts.benefit_type) and today.year <= first.deadline.year:
            window = CycleWindow(first.window_start, first.deadline)
            overdue = today > first.deadline
            return _Standing(window, overdue, first.suspended_from if overdue else None, True, True)
        window = current_window(policy.cycle, today, facts.birth_date)
        return _Standing(window or CycleWindow(today, today), False, None, False, True)
    window = next_window(policy.cycle, last, facts.birth_date)
    overdue = today > window.due_date
    suspended_from = suspension_date(window.due_date) if overdue else None
    return _Standing(window, overdue, suspended_from, False, False)


# --- identity -------------------------------------------------------------------------


def _normalise_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if not ch.isspace())
    for dot in "•・.．‧":  # the many dots typed inside minority names
        text = text.replace(dot, "·")
    return text


def _normalise_id(id_number: str) -> str:
    text = unicodedata.normalize("NFKC", id_number)
    return "".join(ch for ch in text if not ch.isspace()).upper()


def _differing_positions(claimed: str, registered: str) -> tuple[int, ...]:
    return tuple(
        i + 1
        for i in range(max(len(claimed), len(registered)))
        if i >= len(claimed) or i >= len(registered) or claimed[i] != registered[i]
    )


def _join_positions(positions: tuple[int, ...]) -> str:
    return "、".join(str(p) for p in positions)


def compare_identity(
    facts: PersonFacts, claimed_name: str | None, claimed_id: str | None
) -> IdentityMismatch | None:
    """None when what was claimed matches the roster; a missing claim is not compared."""
    name_positions: tuple[int, ...] = ()
    name_length = False
    if claimed_name is not None and facts.name is not None:
        claimed, registered = _normalise_name(claimed_name), _normalise_name(facts.name)
        name_positions = _differing_positions(claimed, registered)
        name_length = len(claimed) != len(registered)
    id_positions: tuple[int, ...] = ()
    id_length = False
    if claimed_id is not None and facts.id_number is not None:
        claimed, registered = _normalise_id(claimed_id), _normalise_id(facts.id_number)
        id_positions = _differing_positions(claimed, registered)
        id_length = len(claimed) != len(registered)
    if not (name_positions or id_positions):
        return None
    return IdentityMismatch(name_positions, name_length, id_positions, id_length)


# --- messages -------------------------------------------------------------------------


def _apps(policy: RegionPolicy) -> str:
    return "或".join(f"“{app}”" for app in policy.apps)


def _contact(policy: RegionPolicy) -> str:
    phone = policy.hotline
    return f"{policy.contact_advice}，或拨打{phone}" if phone else policy.contact_advice


def _already_certified_message(
    policy: RegionPolicy, last: dt.date, window: CycleWindow, roster_suspended: bool
) -> str:
    cycle = policy.cycle
    yearly = cycle.once_per_calendar_year or cycle.kind == "calendar_window"
    done = f"您已于{format_date(last)}完成{'本年度' if yearly else ''}认证"
    # Always both ends: "before 15 January 2027" hides that the app refuses until 1 January.
    when = f"下次请在{window.describe()}之间认证"
    if roster_suspended:
        return f"{done}，但您的养老金目前暂停发放，{_contact(policy)}。"
    return f"{done}，{when}。"


def _open_message(
    policy: RegionPolicy, standing: _Standing, facts: PersonFacts, today: dt.date
) -> str:
    apps, window = _apps(policy), standing.window
    if standing.overdue:
        assert standing.suspended_from is not None
        what = "首次认证" if standing.first_cycle else "认证"
        month = _format_month(standing.suspended_from)
        if standing.suspended_from > today:  # overdue, but the suspension month not yet here
            return (
                f"您应在{format_date(window.due_date)}前完成{what}，已经逾期，"
                f"如果不认证，养老金将从{month}起暂停发放，请尽快通过{apps}完成认证。"
            )
        return (
            f"您应在{format_date(window.due_date)}前完成{what}，已经逾期，"
            f"养老金从{month}起暂停发放，"
            f"认证通过后会恢复发放并补发停发期间的养老金，请尽快通过{apps}完成认证。"
        )
    if facts.status == "suspended":
        return (
            f"您的养老金目前暂停发放，认证通过后会恢复发放并补发，请尽快通过{apps}完成认证，"
            f"如有疑问{_contact(policy)}。"
        )
    if standing.never_certified and not standing.first_cycle:
        if window.due_date > today:
            return f"您还没有认证记录，请在{format_date(window.due_date)}前通过{apps}完成认证。"
        return f"您还没有认证记录，请尽快通过{apps}完成认证。"
    if standing.first_cycle:
        return f"{_from_until(window, today)}通过{apps}完成首次认证。"
    assert facts.last_certified_on is not None
    return (
        f"您上次认证是在{format_date(facts.last_certified_on)}，"
        f"{_from_until(window, today)}通过{apps}完成本次认证。"
    )


def _from_until(window: CycleWindow, today: dt.date) -> str:
    """Both ends of the window, never only the due date: "现在就可以认证，请在…前"."""
    if window.opens_on <= today:
        return f"现在就可以认证，请在{format_date(window.due_date)}前"
    return f"请在{window.describe()}之间"


# --- the engine -----------------------------------------------------------------------


def _facts(person) -> PersonFacts | None:
    if person is None or isinstance(person, PersonFacts):
        return person
    return PersonFacts.from_person(person)


def assess(
    person,
    today: dt.date,
    *,
    claimed_name: str | None = None,
    claimed_id: str | None = None,
    region_code: str | None = None,
) -> Assessment:
    """Can this person certify today, and if not, why — with a message to show them.

    ``person`` is a ``PersonFacts``, a ``Person`` row, or None when the roster has no one
    (``region_code`` then picks whose contacts the message gives).
    """
    facts = _facts(person)
    if facts is None:
        policy = policy_for(region_code)
        return Assessment(
            may_certify=False,
            reason=Reason.not_recipient,
            message=(
                "没有查到您领取养老金的记录，请核对姓名和身份证号后再试；"
                f"如果确认无误，{_contact(policy)}。"
            ),
            policy=policy,
        )
    policy = policy_for(facts.region_code, facts.benefit_type)

    mismatch = compare_identity(facts, claimed_name, claimed_id)
    if mismatch is not None:
        return Assessment(
            may_certify=False,
            reason=Reason.identity_mismatch,
            message=(
                f"您输入的{mismatch.describe()}与社保登记的不一致，请核对后重新输入；"
                f"如果确认无误，{_contact(policy)}。"
            ),
            mismatch=mismatch,
            policy=policy,
        )

    if facts.status == "stopped":
        return Assessment(
            may_certify=False,
            reason=Reason.payment_stopped,
            message=f"您的养老金已经停止发放，不能办理认证，{_contact(policy)}。",
            policy=policy,
        )

    standing = _standing(facts, policy, today)
    roster_suspended = facts.status == "suspended"
    common = dict(
        window=standing.window,
        last_certified_on=facts.last_certified_on,
        next_due_date=standing.window.due_date,
        overdue=standing.overdue,
        suspended=roster_suspended
        or (standing.suspended_from is not None and standing.suspended_from <= today),
        suspended_from=standing.suspended_from,
        policy=policy,
    )
    if facts.last_certified_on is not None and today < standing.window.opens_on:
        message = _already_certified_message(
            policy, facts.last_certified_on, standing.window, roster_suspended
        )
        return Assessment(
            may_certify=False, reason=Reason.already_certified, message=message, **common
        )
    return Assessment(
        may_certify=True,
        reason=None,
        message=_open_message(policy, standing, facts, today),
        **common,
    )


def resumption(
    person, certified_on: dt.date, *, suspended_from: dt.date | None = None
) -> Resumption | None:
    """After a successful certification on ``certified_on``: resume that day and pay back
    every month from the suspension month through the certification month (从停发之月起补发).

    Pass the person as they were *before* this certification (last_certified_on not yet
    updated). None when payment was not suspended by then. ``suspended_from`` (e.g. from the
    payment-status history) overrides the date the policy infers; without either, a roster
    suspension gives unknown back pay (None) for staff to settle.
    """
    facts = _facts(person)
    if facts is None:
        raise ValueError("no roster person to resume")
    if facts.status == "stopped":
        raise ValueError("payment is stopped: a certification cannot resume it")
    policy = policy_for(facts.region_code, facts.benefit_type)
    standing = _standing(facts, policy, certified_on)
    start = suspended_from or standing.suspended_from
    if start is not None and start.replace(day=1) <= certified_on:
        start = start.replace(day=1)
        return Resumption(certified_on, start, _months_inclusive(start, certified_on))
    # suspended by the roster for a reason the dates do not show: staff settle the back pay
    return Resumption(certified_on, None, None) if facts.status == "suspended" else None
