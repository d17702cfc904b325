"""Staff accounts: argon2 passwords, three wrong passwords lock for 24 hours, regions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from services import staff
from services.models import AuditLog, Person, StaffUser
from services.staff import SignInResult, StaffError
from tests.support import PASSWORD, make_person, make_staff

T0 = dt.datetime(2026, 12, 1, 1, 0)  # naive UTC


def actions(session) -> list[str]:
    return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_password_is_stored_as_an_argon2_hash(db):
    with db.session() as session:
        user = make_staff(session)
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert staff.authenticate(session, "li", PASSWORD, now=T0).result == SignInResult.ok
        assert user.last_login_at == T0


def test_three_wrong_passwords_lock_for_24_hours_shaanxi_faq_2(db):
    """密码输错3次,账户会被锁定,24小时后自动解锁 (shaanxi-app-certification-guide.txt 六.2)."""
    with db.session() as session:
        make_staff(session)
        first = staff.authenticate(session, "li", "wrong", now=T0)
        assert first.result == SignInResult.wrong_password and first.attempts_left == 2
        assert staff.authenticate(session, "li", "wrong", now=T0).attempts_left == 1
        locked = staff.authenticate(session, "li", "wrong", now=T0)
        assert locked.result == SignInResult.locked
        assert locked.locked_until == T0 + dt.timedelta(hours=24)
        # locked: even the right password is refused
        later = T0 + dt.timedelta(hours=23, minutes=59)
        assert staff.authenticate(session, "li", PASSWORD, now=later).result == SignInResult.locked
        # 24 hours later it unlocks by itself
        after = T0 + dt.timedelta(hours=24, seconds=1)
        assert staff.authenticate(session, "li", PASSWORD, now=after).result == SignInResult.ok
        assert "staff.locked" in actions(session)


def test_a_success_resets_the_count(db):
    with db.session() as session:
        make_staff(session)
        staff.authenticate(session, "li", "wrong", now=T0)
        staff.authenticate(session, "li", "wrong", now=T0)
        assert staff.authenticate(session, "li", PASSWORD, now=T0).result == SignInResult.ok
        assert staff.authenticate(session, "li", "wrong", now=T0).attempts_left == 2


def test_admin_unlocks_and_reset_ends_old_sessions(db):
    with db.session() as session:
        user = make_staff(session)
        for _ in range(3):
            staff.authenticate(session, "li", "wrong", now=T0)
        staff.unlock(session, "li", by="admin1")
        assert staff.authenticate(session, "li", PASSWORD, now=T0).result == SignInResult.ok
        old_token = user.session_token
        staff.reset_password(session, "li", "a brand new secret", by="admin1")
        assert staff.by_session_token(session, old_token) is None
        assert staff.by_session_token(session, user.session_token).username == "li"
        assert staff.authenticate(session, "li", PASSWORD, now=T0).result != SignInResult.ok
        assert {"staff.unlocked", "staff.password_reset"} <= set(actions(session))


def test_unknown_user_gets_the_same_answer_and_is_audited(db):
    with db.session() as session:
        result = staff.authenticate(session, "nobody", "whatever", now=T0)
        assert result.result == SignInResult.wrong_password and result.staff is None
        assert actions(session) == ["staff.sign_in_failed"]


@pytest.mark.parametrize(
    ("username", "role", "regions", "password"),
    [
        ("Li Si", "reviewer", ["45"], PASSWORD),  # a space
        ("li", "boss", ["45"], PASSWORD),  # no such role
        ("li", "reviewer", ["guangxi"], PASSWORD),  # not a code prefix
        ("li", "reviewer", [], PASSWORD),  # no region
        ("li", "reviewer", ["45"], "short"),  # weak password
    ],
)
def test_bad_staff_details_are_refused(db, username, role, regions, password):
    with db.session() as session, pytest.raises(StaffError):
        staff.add_staff(session, username, password, role=role, regions=regions)


def test_regions_decide_who_is_visible(db):
    with db.session() as session:
        guangxi = make_staff(session, "gx", regions=["45"])
        everywhere = make_staff(session, "all", role="admin", regions=["all"])
        make_person(session, seq=3, region_code="450000")
        make_person(session, seq=4, region_code="610102")
        assert staff.covers(guangxi, "450103") and not staff.covers(guangxi, "610102")
        assert not staff.covers(guangxi, None) and staff.covers(everywhere, None)
        seen = session.scalars(
            select(Person.region_code).where(staff.region_clause(guangxi, Person.region_code))
        ).all()
        assert seen == ["450000"]
        assert everywhere.regions == [""]
        assert session.scalar(select(StaffUser.role).where(StaffUser.username == "all")) == "admin"
