"""演示名册：虚构的参保人，覆盖四个省、每种待遇类型和每种状态，让新人看到每个分支。

Each person stands for one branch of the product ("already certified this cycle", "due",
"overdue and suspended", "stopped", …). A fixed "certified 11 months ago" is not enough: in
December that lands in the same calendar year, where Shaanxi allows no second certification.
So each last-certification date is *found*: starting from the nominal age and moving a day at
a time, the first date for which the policy engine puts the person in their branch on the day
the roster is loaded. The branch therefore holds on every day of the year (a test sweeps it).
All people are fictional; their ID numbers are checksum-valid but made up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from sqlalchemy import func, select
from stdnum.cn import ric

from services.db import Database
from services.models import Person
from services.policy import Assessment, PersonFacts, Reason, assess

MAX_SEARCH_DAYS = 900  # every branch of every cycle rule is within 2½ years of the nominal date


class Branch(enum.StrEnum):
    """What the product shows a demo person; :func:`shows` is the policy's reading of it."""

    certified = "certified"  # already certified this cycle: the next window is given
    due = "due"  # may certify now, not overdue
    overdue = "overdue"  # overdue and suspended: certify to resume, with back pay
    stopped = "stopped"  # payment stopped: contact the office
    never = "never"  # never certified: may certify now


def shows(assessment: Assessment, branch: Branch) -> bool:
    """Does the policy's answer for a person show ``branch``?"""
    if branch is Branch.certified:
        return assessment.reason is Reason.already_certified and not assessment.suspended
    if branch in (Branch.due, Branch.never):
        return assessment.may_certify and not assessment.overdue and not assessment.suspended
    if branch is Branch.overdue:
        return assessment.may_certify and assessment.overdue and assessment.suspended
    return assessment.reason is Reason.payment_stopped


def fictional_id_number(region_code: str, birth_date: dt.date, sequence: int, female: bool) -> str:
    """A checksum-valid resident ID number (GB 11643): odd 17th digit for men, even for women."""
    sequence = sequence * 2 + (0 if female else 1)
    body = f"{region_code}{birth_date:%Y%m%d}{sequence % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


# (person_no, name, region, benefit, birth, female, status, nominal months since the last
# certification (None: never), the branch shown, extra). Each line's comment says why.
_PEOPLE = [
    # 陕西 西安新城区 (rolling 12 months, once a calendar year)
    (
        "DEMO0001",
        "王秀兰",
        "610102",
        "institution",
        "1952-03-15",
        True,
        "normal",
        0,
        Branch.certified,
        {},
    ),
    #   ↑ certified this month: "already certified", with the next due date
    (
        "DEMO0002",
        "赵建国",
        "610102",
        "institution",
        "1950-07-08",
        False,
        "normal",
        11,
        Branch.due,
        {},
    ),
    #   ↑ last certified 11 months ago: due soon, may certify now
    (
        "DEMO0003",
        "孙淑芬",
        "610102",
        "enterprise",
        "1948-11-30",
        True,
        "suspended",
        15,
        Branch.overdue,
        {},
    ),
    #   ↑ overdue and suspended: certify to resume, back pay from the suspension month
    (
        "DEMO0004",
        "周志强",
        "610102",
        "institution",
        "1955-01-20",
        False,
        "normal",
        8,
        Branch.due,
        {"overseas": "1", "address": "加拿大温哥华"},
    ),
    #   ↑ lives abroad: embassy form / relative's domestic phone
    # 山西 (rolling 12 months, information comparison)
    (
        "DEMO0005",
        "李桂英",
        "140000",
        "enterprise",
        "1934-05-12",
        True,
        "normal",
        10,
        Branch.due,
        {"address": "山西省太原市迎泽区桃园北路12号", "phone": "13800000005"},
    ),
    #   ↑ 92 years old, bedridden: home visit; her son below certifies for her
    (
        "DEMO0006",
        "张建军",
        "140000",
        "enterprise",
        "1960-09-03",
        False,
        "normal",
        2,
        Branch.certified,
        {"phone": "13800000005"},
    ),
    #   ↑ the son of 李桂英: relative pair, same phone
    (
        "DEMO0007",
        "刘福生",
        "140000",
        "unemployment",
        "1964-02-29",
        False,
        "normal",
        13,
        Branch.overdue,
        {},
    ),
    #   ↑ born on 29 February; overdue but roster still says normal → policy says suspended
    (
        "DEMO0008",
        "陈玉兰",
        "140000",
        "enterprise",
        "1940-12-01",
        True,
        "stopped",
        20,
        Branch.stopped,
        {"unit_name": "太原市第三棉纺厂"},
    ),
    #   ↑ payment stopped (information comparison: death record) — contact the office
    # 江西 寻乌 (January–June window, suspension in July)
    (
        "DEMO0009",
        "钟水英",
        "360734",
        "resident",
        "1945-04-18",
        True,
        "normal",
        0,
        Branch.certified,
        {},
    ),
    (
        "DEMO0010",
        "钟伟明",
        "360734",
        "resident",
        "1958-08-22",
        False,
        "normal",
        16,
        Branch.overdue,
        {},
    ),
    #   ↑ did not certify last year: suspended since July
    (
        "DEMO0011",
        "谢观秀",
        "360734",
        "resident",
        "1941-06-06",
        True,
        "normal",
        None,
        Branch.never,
        {"phone": ""},
    ),
    #   ↑ never certified, no smartphone: photo review with ID card and newspaper
    # 广西 (birthday month cycle; dependants every 6 months)
    (
        "DEMO0012",
        "黄秀英",
        "450000",
        "institution",
        "1953-10-10",
        True,
        "normal",
        3,
        Branch.certified,
        {},
    ),
    (
        "DEMO0013",
        "韦家宝",
        "450000",
        "work_injury",
        "1966-01-31",
        False,
        "normal",
        12,
        Branch.due,
        {},
    ),
    (
        "DEMO0014",
        "蓝美玲",
        "450000",
        "dependent",
        "1949-09-09",
        True,
        "normal",
        7,
        Branch.overdue,
        {},
    ),
    #   ↑ dependant's pension: 6-month cycle, overdue
]


def demo_rows(today: dt.date) -> list[dict[str, str]]:
    """The demo roster as roster-format rows (the same columns as an imported file), dated so
    that each person shows their branch on ``today``."""
    rows = []
    for number, (
        person_no,
        name,
        region,
        benefit,
        birth,
        female,
        status,
        months,
        branch,
        extra,
    ) in enumerate(_PEOPLE, start=1):
        birth_date = dt.date.fromisoformat(birth)
        facts = PersonFacts(
            region_code=region, benefit_type=benefit, birth_date=birth_date, status=status
        )
        last = None if months is None else last_certification_for(facts, branch, months, today)
        rows.append(
            {
                "person_no": person_no,
                "name": name,
                "id_number": fictional_id_number(region, birth_date, number, female),
                "region_code": region,
                "benefit_type": benefit,
                "phone": f"138000000{number:02d}",
                "unit_name": "",
                "status": status,
                "last_certified_on": "" if last is None else last.isoformat(),
                "address": "",
                "overseas": "0",
            }
            | extra
        )
    return rows


def last_certification_for(
    facts: PersonFacts, branch: Branch, months: int, today: dt.date
) -> dt.date:
    """The date nearest ``months`` before ``today`` on which a last certification puts the
    person in ``branch`` today (the policy engine decides)."""
    nominal = (today - dt.timedelta(days=round(months * 30.44))).toordinal()
    for step in range(2 * MAX_SEARCH_DAYS):
        offset = (step + 1) // 2 * (1 if step % 2 else -1)  # 0, +1, -1, +2, -2, …
        candidate = dt.date.fromordinal(nominal + offset)
        if candidate > today:
            continue
        with_date = dataclasses.replace(facts, last_certified_on=candidate)
        if shows(assess(with_date, today), branch):
            return candidate
    raise ValueError(f"no last-certification date shows {branch} on {today}")


def load_demo_roster_once(database: Database, today: dt.date) -> int:
    """Load the demo roster into an empty database; returns how many people were created."""
    from services.roster import import_rows

    with database.session() as session:
        if session.scalar(select(func.count()).select_from(Person)):
            return 0
    return import_rows(database, demo_rows(today), today=today).created
