"""上门认证申请：行动不便的老人申请工作人员上门，得到一个好念好记的受理编号。

The reference is ``SM`` + the Beijing date + a per-day sequence, e.g. ``SM20261123-0007``.
Concurrent requests may compute the same next number; the unique constraint on
``home_visit_requests.reference`` decides and the loser retries with the next one.

Address and reason are stored as typed (the console escapes on output) except for ID and
mobile numbers, masked: they do not belong there and the contact phone has its own field. Contact phones are normalised: ``13912345678`` or ``029-88886666``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.accounts import actor_for
from services.idcard import mask_personal_numbers, mask_phone
from services.models import AuditLog, ChannelAccount, HomeVisitRequest, Person, naive_utc

__all__ = [
    "PENDING_STATUSES",
    "InvalidHomeVisitRequest",
    "normalise_phone",
    "pending_home_visits",
    "request_home_visit",
]

REFERENCE_PREFIX = "SM"  # 上门
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # no daylight saving
ADDRESS_MAX_LENGTH = 256  # HomeVisitRequest.address
REASON_MAX_LENGTH = 256  # HomeVisitRequest.reason
MAX_ATTEMPTS = 50  # each lost race means another request committed: bounded by the burst
PENDING_STATUSES = ("requested", "scheduled")

_PHONE_NOISE = re.compile(r"[\s\-()（）—]+")
_EXTENSION = re.compile(r"转|分机|ext\.?|#", re.IGNORECASE)
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
# 区号 010 / 02x (3 digits) or 0[3-9]xx (4 digits); local number 7–8 digits, not from 0/1.
_LANDLINE = re.compile(r"(?:\+?86|0086)?(010|02\d|0[3-9]\d{2})([2-9]\d{6,7})")
_LOCAL_ONLY = re.compile(r"[2-9]\d{6,7}")


class InvalidHomeVisitRequest(ValueError):
    """申请内容不合格；``message`` 是给用户看的中文，``field`` 指出是哪一项。"""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def normalise_phone(text: object) -> str:
    """手机号 → ``13912345678``；固定电话 → ``029-88886666``（分机写成 ``029-88886666转12``）。

    Raises :class:`InvalidHomeVisitRequest` (field ``contact_phone``) otherwise.
    """
    raw = unicodedata.normalize("NFKC", str(text or "")).strip()
    parts = _EXTENSION.split(raw, maxsplit=1)
    number = _PHONE_NOISE.sub("", parts[0])
    extension = _PHONE_NOISE.sub("", parts[1]) if len(parts) == 2 else ""
    if not number:
        raise InvalidHomeVisitRequest("contact_phone", "请留一个联系电话，方便工作人员上门前联系")
    if not extension and (mobile := _MOBILE.fullmatch(number)):
        return mobile.group(1)
    landline = _LANDLINE.fullmatch(number)
    if landline and (not extension or (extension.isdigit() and len(extension) <= 6)):
        area, local = landline.groups()
        return f"{area}-{local}" + (f"转{extension}" if extension else "")
    if _LOCAL_ONLY.fullmatch(number):
        raise InvalidHomeVisitRequest("contact_phone", "固定电话请加上区号，例如 029-88886666")
    raise InvalidHomeVisitRequest(
        "contact_phone", "联系电话不对，请填11位手机号，或带区号的固定电话（如 029-88886666）"
    )


def request_home_visit(
    session: Session,
    *,
    person: Person | None,
    account: ChannelAccount | None,
    address: str,
    contact_phone: str,
    reason: str,
    now: dt.datetime | None = None,
) -> HomeVisitRequest:
    """登记一条上门认证申请并返回它（``reference`` 即受理编号）。"""
    address = _text_field("address", "上门地址", address, ADDRESS_MAX_LENGTH)
    reason = _text_field("reason", "申请原因", reason, REASON_MAX_LENGTH)
    phone = normalise_phone(contact_phone)

    created_at = naive_utc(now)
    day = created_at.replace(tzinfo=dt.UTC).astimezone(BEIJING).date()
    prefix = f"{REFERENCE_PREFIX}{day:%Y%m%d}-"
    session.flush()  # person / account ids

    for _attempt in range(MAX_ATTEMPTS):
        visit = HomeVisitRequest(
            reference=prefix + f"{_next_sequence(session, prefix):04d}",
            person_id=person.id if person is not None else None,
            account_id=account.id if account is not None else None,
            address=address,
            contact_phone=phone,
            reason=reason,
            status="requested",
            created_at=created_at,
        )
        try:
            with session.begin_nested():
                session.add(visit)
        except IntegrityError as error:
            if not _is_reference_clash(error):
                raise
            continue
        break
    else:  # pragma: no cover — fifty lost races in a row
        raise RuntimeError(f"could not allocate a home-visit reference for {prefix}")

    session.add(
        AuditLog(
            actor=actor_for(account),
            action="home_visit.requested",
            target_type="home_visit_request",
            target_id=visit.reference,
            detail={
                "person_id": visit.person_id,
                "account_id": visit.account_id,
                "contact_phone": mask_phone(phone),
            },
        )
    )
    session.flush()
    return visit


def pending_home_visits(session: Session) -> list[HomeVisitRequest]:
    """尚未完成的上门申请（已申请、已排期），先来先办。"""
    return list(
        session.scalars(
            select(HomeVisitRequest)
            .where(HomeVisitRequest.status.in_(PENDING_STATUSES))
            .order_by(HomeVisitRequest.created_at, HomeVisitRequest.id)
        )
    )


def _next_sequence(session: Session, prefix: str) -> int:
    # Longest first, then lexicographic: '…-10000' sorts after '…-9999'.
    last = session.scalars(
        select(HomeVisitRequest.reference)
        .where(HomeVisitRequest.reference.startswith(prefix, autoescape=True))
        .order_by(func.length(HomeVisitRequest.reference).desc(), HomeVisitRequest.reference.desc())
        .limit(1)
    ).first()
    if last is None:
        return 1
    return int(last[len(prefix) :]) + 1


def _is_reference_clash(error: IntegrityError) -> bool:
    message = str(error.orig)
    # PostgreSQL names the constraint, SQLite the column.
    return "uq_home_visit_requests_reference" in message or (
        "home_visit_requests.reference" in message
    )


def _text_field(field: str, label: str, value: object, limit: int) -> str:
    text = str(value or "").strip()
    if not text:
        raise InvalidHomeVisitRequest(field, f"请填写{label}")
    if len(text) > limit:
        raise InvalidHomeVisitRequest(field, f"{label}太长了，请控制在{limit}个字以内")
    if "\x00" in text:  # PostgreSQL cannot store NUL in text
        raise InvalidHomeVisitRequest(field, f"{label}里有无法识别的字符，请重新输入")
    return mask_personal_numbers(text)
