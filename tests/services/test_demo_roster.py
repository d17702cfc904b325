"""The demo roster shows every branch it promises on every day of the year.

A newcomer may run `make run` on any day: a person "certified this cycle" must not turn "due"
on 1 January, nor a "due" Shaanxi person "already certified" in December (once per calendar
year, shaanxi-app-certification-guide.txt 六.7(2)).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from services.demo_roster import _PEOPLE, Branch, demo_rows, load_demo_roster_once, shows
from services.idcard import parse_id_number
from services.models import Person
from services.policy import PersonFacts, assess


def _month_ends(year: int) -> list[dt.date]:
    return [
        dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
        for month in range(1, 13)
    ]


SWEEP = sorted(
    {dt.date(year, month, 1) for year in (2026, 2027, 2028) for month in range(1, 13)}
    | {day for year in (2026, 2027, 2028) for day in _month_ends(year)}
    | {dt.date(2028, 2, 29)}
)
BRANCHES = {person[0]: person[8] for person in _PEOPLE}


def _assessment(row: dict, today: dt.date):
    last = row["last_certified_on"]
    facts = PersonFacts(
        region_code=row["region_code"],
        benefit_type=row["benefit_type"],
        birth_date=parse_id_number(row["id_number"]).birth_date,
        status=row["status"],
        last_certified_on=dt.date.fromisoformat(last) if last else None,
    )
    return assess(facts, today)


@pytest.mark.parametrize("today", SWEEP, ids=str)
def test_every_demo_person_shows_their_branch(today):
    wrong = [
        (row["person_no"], str(BRANCHES[row["person_no"]]))
        for row in demo_rows(today)
        if not shows(_assessment(row, today), BRANCHES[row["person_no"]])
    ]
    assert wrong == []


def test_the_roster_covers_every_branch_region_and_benefit_type():
    rows = demo_rows(dt.date(2026, 12, 1))
    assert set(BRANCHES.values()) == set(Branch)
    assert {row["region_code"][:2] for row in rows} == {"61", "14", "36", "45"}
    assert {row["benefit_type"] for row in rows} >= {
        "institution",
        "enterprise",
        "resident",
        "dependent",
    }
    assert any(row["overseas"] == "1" for row in rows)


def test_last_certifications_never_lie_in_the_future():
    for today in SWEEP:
        for row in demo_rows(today):
            if row["last_certified_on"]:
                assert dt.date.fromisoformat(row["last_certified_on"]) <= today


def test_it_is_loaded_into_an_empty_database_only(sqlite_db):
    assert load_demo_roster_once(sqlite_db, dt.date(2027, 1, 1)) == len(_PEOPLE)
    assert load_demo_roster_once(sqlite_db, dt.date(2027, 1, 2)) == 0
    with sqlite_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == len(_PEOPLE)
