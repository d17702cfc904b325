"""工作人员账号：登录、连续输错三次锁定24小时、管理员解锁、重置密码、可见的地区。

The lockout is the seeds' own rule for the apps (密码输错3次,账户会被锁定,24小时后自动解锁:
shaanxi-app-certification-guide.txt 六.2), applied to staff. Passwords are argon2id hashes
(argon2-cffi); an unknown username costs the same hash as a wrong password, so timing does not
tell which usernames exist.

A staff user works for one or more regions, each a region-code prefix ("45" all of Guangxi,
"360734" Xunwu county; "" everywhere). :func:`region_clause` turns them into the SQL condition
every list in the console uses, :func:`covers` answers for one person.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session

from services import audit
from services.models import StaffUser, naive_utc, public_id

__all__ = [
    "LOCKOUT",
    "MAX_FAILED_LOGINS",
    "ROLES",
    "SignIn",
    "SignInResult",
    "StaffError",
    "add_staff",
    "authenticate",
    "covers",
    "region_clause",
    "reset_password",
    "unlock",
]

ROLES = ("reviewer", "admin")
MAX_FAILED_LOGINS = 3  # shaanxi-app-certification-guide.txt 六.2
LOCKOUT = dt.timedelta(hours=24)
MIN_PASSWORD_LENGTH = 10
ALL_REGIONS = ""  # the prefix every region code starts with
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
_REGION = re.compile(r"\d{1,6}")

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that case takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no such staff user")


class StaffError(ValueError):
    """A staff command or form was wrong; the message says what to fix."""


class SignInResult(enum.StrEnum):
    ok = "ok"
    wrong_password = "wrong_password"  # also: unknown username (the same answer to the user)
    locked = "locked"
    inactive = "inactive"


@dataclass(frozen=True)
class SignIn:
    result: SignInResult
    staff: StaffUser | None = None
    locked_until: dt.datetime | None = None  # naive UTC
    attempts_left: int | None = None


def normalise_regions(regions: Iterable[str]) -> list[str]:
    """``["45", "610102"]``; "all" / "全部" / "" stand for every region."""
    found: list[str] = []
    for raw in regions:
        value = str(raw).strip()
        if value.lower() in {"all", "全部", "*", ""}:
            value = ALL_REGIONS
        elif not _REGION.fullmatch(value):
            raise StaffError(f"地区 {value!r} 不是行政区划代码前缀（1–6位数字，或 all）")
        if value not in found:
            found.append(value)
    if not found:
        raise StaffError("至少要给一个地区（--region）")
    return found


def covers(staff: StaffUser, region_code: str | None) -> bool:
    """这个工作人员能否看这个地区的人。没有地区的记录只有管辖全部地区的人能看。"""
    prefixes = staff.regions or []
    if ALL_REGIONS in prefixes:
        return True
    return bool(region_code) and any(region_code.startswith(p) for p in prefixes)


def region_clause(staff: StaffUser, column):
    """SQL condition: ``column`` (a 6-digit region code) lies in the staff user's regions.

    A prefix is written as a range ("45" → 450000…459999), not ``LIKE '45%'``: the plain
    b-tree index on the column serves a range in any collation, a LIKE only in "C".
    """
    prefixes = staff.regions or []
    if ALL_REGIONS in prefixes:
        return true()
    if not prefixes:
        return false()
    return or_(*(and_(column >= p.ljust(6, "0"), column <= p.ljust(6, "9")) for p in prefixes))


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise StaffError(f"密码至少{MIN_PASSWORD_LENGTH}位")


def add_staff(
    session: Session,
    username: str,
    password: str,
    *,
    role: str,
    regions: Iterable[str],
    display_name: str | None = None,
    by: str = "cli",
) -> StaffUser:
    """新建工作人员账号。"""
    username = (username or "").strip().lower()
    if not _USERNAME.fullmatch(username):
        raise StaffError("用户名用2–32位小写字母、数字、点、横线或下划线")
    if role not in ROLES:
        raise StaffError(f"角色只能是 {' / '.join(ROLES)}")
    _check_password(password)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise StaffError(f"用户 {username} 已经存在")
    staff = StaffUser(
        username=username,
        password_hash=_hasher.hash(password),
        display_name=(display_name or username).strip()[:64],
        role=role,
        regions=normalise_regions(regions),
        active=True,
        failed_logins=0,
        session_token=public_id(),
    )
    session.add(staff)
    session.flush()
    audit.record(
        session,
        by,
        "staff.added",
        "staff",
        username,
        {"role": role, "regions": staff.regions},
    )
    return staff


def find(session: Session, username: str) -> StaffUser | None:
    return session.scalars(
        select(StaffUser).where(StaffUser.username == (username or "").strip().lower())
    ).one_or_none()


def by_session_token(session: Session, token: str) -> StaffUser | None:
    """The signed-in user of a browser session (flask-login's user id is this token)."""
    if not token:
        return None
    staff = session.scalars(select(StaffUser).where(StaffUser.session_token == token)).one_or_none()
    return staff if staff is not None and staff.active else None


def authenticate(
    session: Session, username: str, password: str, *, now: dt.datetime | None = None
) -> SignIn:
    """核对用户名和密码；连续输错三次锁定24小时。每一次都写审计日志。"""
    now = naive_utc(now)
    name = (username or "").strip().lower()[:64]
    staff = session.scalars(
        select(StaffUser).where(StaffUser.username == name).with_for_update()
    ).one_or_none()
    if staff is None:
        _verify(_DUMMY_HASH, password)
        audit.record(
            session, name or "?", "staff.sign_in_failed", "staff", name, {"why": "unknown"}, at=now
        )
        return SignIn(SignInResult.wrong_password)
    if not staff.active:
        audit.record(
            session, name, "staff.sign_in_failed", "staff", name, {"why": "inactive"}, at=now
        )
        return SignIn(SignInResult.inactive)
    if staff.locked_until is not None:
        if staff.locked_until > now:
            audit.record(
                session, name, "staff.sign_in_refused", "staff", name, {"why": "locked"}, at=now
            )
            return SignIn(SignInResult.locked, locked_until=staff.locked_until)
        staff.locked_until = None  # 24 hours are over: unlocked by itself
        staff.failed_logins = 0
    if not _verify(staff.password_hash, password):
        staff.failed_logins = (staff.failed_logins or 0) + 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.locked_until = now + LOCKOUT
            audit.record(
                session,
                name,
                "staff.locked",
                "staff",
                name,
                {"failed": staff.failed_logins},
                at=now,
            )
            return SignIn(SignInResult.locked, locked_until=staff.locked_until)
        audit.record(
            session, name, "staff.sign_in_failed", "staff", name, {"why": "password"}, at=now
        )
        return SignIn(
            SignInResult.wrong_password, attempts_left=MAX_FAILED_LOGINS - staff.failed_logins
        )
    staff.failed_logins = 0
    staff.last_login_at = now
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    audit.record(session, name, "staff.signed_in", "staff", name, at=now)
    return SignIn(SignInResult.ok, staff)


def unlock(session: Session, username: str, *, by: str) -> StaffUser:
    """管理员解锁。"""
    staff = _existing(session, username)
    staff.failed_logins = 0
    staff.locked_until = None
    audit.record(session, by, "staff.unlocked", "staff", staff.username)
    return staff


def reset_password(session: Session, username: str, password: str, *, by: str) -> StaffUser:
    """重置密码并解锁；用旧密码登录的会话全部失效。"""
    staff = _existing(session, username)
    _check_password(password)
    staff.password_hash = _hasher.hash(password)
    staff.session_token = public_id()
    staff.failed_logins = 0
    staff.locked_until = None
    audit.record(session, by, "staff.password_reset", "staff", staff.username)
    return staff


def all_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))


def _existing(session: Session, username: str) -> StaffUser:
    staff = find(session, username)
    if staff is None:
        raise StaffError(f"没有用户 {username}")
    return staff


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password or "")
    except (VerificationError, InvalidHashError):
        return False
