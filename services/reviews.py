"""照片人工审核：待审队列、认领、审核结论及其效果。

The queue is oldest first and shows a reviewer only people in their regions. A reviewer works
on a photo after claiming it: :func:`claim_next` takes the oldest photo nobody holds with
``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two reviewers pressing "next" at the
same moment get different photos; a claim lapses after :data:`CLAIM_TTL` without a decision.

:func:`decide` locks the row and decides once: a double submission, or an approval racing a
rejection, finds the photo decided already and is told by whom (:class:`AlreadyDecided`).
Approval records a certification (method photo_review, the reviewer as operator, the ticked
checklist as evidence) through :func:`services.certification.record_certification`, which also
resumes a suspended payment with back pay; rejection leaves the person due. Either way the
decision returns a :class:`~services.notifications.Notice` for whoever sent the photo, which
the caller enqueues once the transaction has committed. Nothing here deletes a photo or a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from services import audit
from services.certification import CannotCertify, record_certification
from services.clock import SHANGHAI, in_shanghai
from services.models import (
    CertificationMethod,
    ChannelAccount,
    Person,
    PhotoReview,
    StaffUser,
    naive_utc,
)
from services.notifications import Notice
from services.outbound import BotMessage, Button
from services.photos import photo_path
from services.policy import assess
from services.regions import policy_for
from services.staff import covers, region_clause

__all__ = [
    "CLAIM_TTL",
    "AlreadyDecided",
    "ClaimedByOther",
    "Decision",
    "InvalidDecision",
    "ReviewNotFound",
    "checklist_for",
    "claim_next",
    "decide",
    "open_review",
    "pending_queue",
    "reject_reasons",
]

CLAIM_TTL = dt.timedelta(minutes=15)
REASON_TEXT_MAX = 200
DATA_FILE = Path(__file__).parent / "data" / "photo_review.yaml"
PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


class ReviewNotFound(LookupError):
    """No such photo, or not one this staff user may see (the same answer: 404)."""


class AlreadyDecided(Exception):
    def __init__(self, review: PhotoReview):
        super().__init__(f"这张照片已由{review.reviewer}审核（{status_label(review.status)}）")
        self.review = review


class ClaimedByOther(Exception):
    def __init__(self, review: PhotoReview):
        super().__init__(f"这张照片正由{review.claimed_by}审核")
        self.review = review


class InvalidDecision(ValueError):
    """The form was incomplete: the message says what the reviewer must still do."""


@dataclass(frozen=True)
class RejectReason:
    code: str
    label: str
    tell: str
    needs_text: bool = False


@dataclass(frozen=True)
class ChecklistItem:
    code: str
    label: str


@dataclass(frozen=True)
class QueueRow:
    review: PhotoReview
    person: Person | None


@dataclass(frozen=True)
class Decision:
    review: PhotoReview
    notice: Notice | None  # whom to tell, and what; None when nobody can be told
    back_pay_months: int | None = None


@cache
def reject_reasons() -> tuple[RejectReason, ...]:
    with open(DATA_FILE, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return tuple(RejectReason(**item) for item in data["reject_reasons"])


def reject_reason(code: str) -> RejectReason | None:
    return next((r for r in reject_reasons() if r.code == code), None)


def checklist_for(region_code: str | None) -> tuple[ChecklistItem, ...]:
    """The region's photo checklist (services/data/regions.yaml ``photo_checklist``)."""
    items = policy_for(region_code).extra.get("photo_checklist") or ()
    return tuple(ChecklistItem(str(i["code"]), str(i["label"])) for i in items)


def _visible(staff: StaffUser):
    return region_clause(staff, Person.region_code)


def pending_queue(
    session: Session, staff: StaffUser, *, limit: int = 50, offset: int = 0
) -> tuple[list[QueueRow], int]:
    """待审照片（本人负责的地区），先交的在前；返回一页和总数。"""
    condition = and_(PhotoReview.status == PENDING, _visible(staff))
    rows = session.execute(
        select(PhotoReview, Person)
        .outerjoin(Person, Person.id == PhotoReview.person_id)
        .where(condition)
        .order_by(PhotoReview.submitted_at, PhotoReview.id)
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.scalar(
        select(func.count())
        .select_from(PhotoReview)
        .outerjoin(Person, Person.id == PhotoReview.person_id)
        .where(condition)
    )
    return [QueueRow(review, person) for review, person in rows], total or 0


def claim_next(
    session: Session, staff: StaffUser, *, now: dt.datetime | None = None
) -> PhotoReview | None:
    """认领下一张：最早提交、没人认领（或认领已过期、或本来就是自己的）的照片。"""
    now = naive_utc(now)
    review = session.scalars(
        select(PhotoReview)
        .outerjoin(Person, Person.id == PhotoReview.person_id)
        .where(
            PhotoReview.status == PENDING,
            _visible(staff),
            or_(
                PhotoReview.claimed_by.is_(None),
                PhotoReview.claimed_by == staff.username,
                PhotoReview.claimed_at < now - CLAIM_TTL,
            ),
        )
        .order_by(PhotoReview.submitted_at, PhotoReview.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=PhotoReview)
    ).first()
    if review is not None:
        _claim(review, staff, now)
    return review


def open_review(
    session: Session, staff: StaffUser, public_id: str, *, now: dt.datetime | None = None
) -> tuple[PhotoReview, Person | None]:
    """打开一张照片的审核页；还没人审的由本人认领。写审计日志（看了谁的照片）。"""
    now = naive_utc(now)
    review, person = _find(session, staff, public_id, lock=True)
    if review.status == PENDING and not _held_by_other(review, staff, now):
        _claim(review, staff, now)
    audit.record(
        session,
        staff.username,
        "photo_review.viewed",
        "photo_review",
        review.public_id,
        {"person_id": review.person_id, "status": review.status},
        at=now,
    )
    return review, person


def held_by_other(review: PhotoReview, staff: StaffUser, now: dt.datetime | None = None) -> bool:
    """Someone else claimed this photo less than :data:`CLAIM_TTL` ago."""
    return _held_by_other(review, staff, naive_utc(now))


def reference_photo(session: Session, review: PhotoReview) -> PhotoReview | None:
    """参考照片：同一个人最近一张审核通过的照片（人脸建模另有来源时再加）。"""
    if review.person_id is None:
        return None
    return session.scalars(
        select(PhotoReview)
        .where(
            PhotoReview.person_id == review.person_id,
            PhotoReview.status == APPROVED,
            PhotoReview.id != review.id,
        )
        .order_by(PhotoReview.reviewed_at.desc())
        .limit(1)
    ).first()


def photo_file(
    session: Session,
    staff: StaffUser,
    photo_dir: Path,
    public_id: str,
    *,
    now: dt.datetime | None = None,
) -> Path:
    """照片文件（只给管辖该地区的工作人员）；每次查看都写审计日志。"""
    review, _person = _find(session, staff, public_id)
    path = photo_path(photo_dir, review)
    audit.record(
        session,
        staff.username,
        "photo.viewed",
        "photo_review",
        review.public_id,
        {"person_id": review.person_id},
        at=now,
    )
    return path


def decide(
    session: Session,
    staff: StaffUser,
    public_id: str,
    *,
    approve: bool,
    checklist: list[str] | tuple[str, ...] = (),
    reason_code: str | None = None,
    reason_text: str | None = None,
    now: dt.datetime | None = None,
    local_now: dt.datetime | None = None,
) -> Decision:
    """审核结论：通过（记一次认证，停发的恢复并补发）或不通过（写明原因）。只能决定一次。

    ``now`` is the moment as naive UTC (the rows' timestamps); ``local_now`` the same moment
    in Beijing time (aware, or naive meaning Beijing), which decides the day a certification
    counts for.
    """
    now = naive_utc(now)
    local_now = local_now or now.replace(tzinfo=dt.UTC).astimezone(SHANGHAI)
    review, person = _find(session, staff, public_id, lock=True)
    if review.status != PENDING:
        raise AlreadyDecided(review)
    if _held_by_other(review, staff, now):
        raise ClaimedByOther(review)

    region = person.region_code if person else None
    ticked = [item.code for item in checklist_for(region) if item.code in set(checklist)]
    account = session.get(ChannelAccount, review.account_id) if review.account_id else None
    back_pay_months = None
    if approve:
        missing = [i.label for i in checklist_for(region) if i.code not in ticked]
        if missing:
            raise InvalidDecision("通过前请逐项核对并勾选：" + "、".join(missing))
        if person is None:
            raise InvalidDecision("这张照片没有对应的参保人，不能通过；请选择不通过并说明原因")
        try:
            outcome = record_certification(
                session,
                person,
                CertificationMethod.photo_review,
                operator=staff.username,
                channel=account.channel if account else None,
                evidence={"photo_review": review.public_id, "checklist": ticked},
                at=local_now,
            )
        except CannotCertify as stopped:
            raise InvalidDecision(str(stopped)) from None
        review.status = APPROVED
        review.decision_reason = None
        review.reject_code = None
        if outcome.resumed is not None:
            back_pay_months = outcome.resumed.back_pay_months
        messages = _approved_messages(person, in_shanghai(local_now).date(), outcome.resumed)
    else:
        reason = reject_reason(reason_code or "")
        if reason is None:
            raise InvalidDecision("请选择不通过的原因")
        text = " ".join((reason_text or "").split())[:REASON_TEXT_MAX]
        if reason.needs_text and not text:
            raise InvalidDecision("选择“其他”时请写明原因")
        review.status = REJECTED
        review.reject_code = reason.code
        review.decision_reason = reason.label + (f"：{text}" if text else "")
        messages = _rejected_messages(person, reason, text)

    review.reviewer = staff.username
    review.reviewed_at = now
    review.checklist = ticked
    review.claimed_by = None
    review.claimed_at = None
    audit.record(
        session,
        staff.username,
        "photo_review.approved" if approve else "photo_review.rejected",
        "photo_review",
        review.public_id,
        {
            "person_id": review.person_id,
            "reason": review.reject_code,
            "checklist": ticked,
            "back_pay_months": back_pay_months,
        },
        at=now,
    )
    session.flush()
    if account is not None:
        notice = Notice(account_id=account.id, messages=tuple(messages))
    elif person is not None:
        notice = Notice(person_id=person.id, messages=tuple(messages))
    else:
        notice = None
    return Decision(review, notice, back_pay_months)


def _approved_messages(person: Person, day: dt.date, resumed) -> list[BotMessage]:
    lines = [f"{person.name}的认证照片已审核通过，本次养老金资格认证已完成。"]
    if resumed is not None:
        if resumed.back_pay_months:
            lines.append(
                f"养老金将恢复发放，并补发从{resumed.back_pay_from.year}年"
                f"{resumed.back_pay_from.month}月起共{resumed.back_pay_months}个月的待遇。"
            )
        else:
            lines.append("养老金将恢复发放，停发期间的待遇由经办机构核算后补发。")
    standing = assess(person, day)
    if standing.window is not None and standing.window.due_date > day:
        lines.append(f"下次请在{standing.window.describe()}之间认证。")
    return [BotMessage(text="".join(lines))]


def _rejected_messages(person: Person | None, reason: RejectReason, text: str) -> list[BotMessage]:
    whose = f"{person.name}的" if person else "您发来的"
    detail = f"（{text}）" if text else ""
    buttons = [Button("重新拍照认证", "/manual_review")]
    # a home visit only where the region offers one (regions.yaml ``methods``)
    if person is not None and policy_for(person.region_code).accepts("home_visit"):
        buttons.append(Button("申请上门认证", "/request_home_visit"))
    return [
        BotMessage(
            text=f"{whose}认证照片没有通过审核。{reason.tell}{detail}"
            "请按要求重新拍一张照片直接发给我，我们会尽快再审。",
            buttons=tuple(buttons),
        )
    ]


def _find(
    session: Session, staff: StaffUser, public_id: str, *, lock: bool = False
) -> tuple[PhotoReview, Person | None]:
    if not public_id or len(public_id) > 32:
        raise ReviewNotFound(public_id)
    query = select(PhotoReview).where(PhotoReview.public_id == public_id)
    if lock:
        query = query.with_for_update()
    review = session.scalars(query).one_or_none()
    if review is None:
        raise ReviewNotFound(public_id)
    person = session.get(Person, review.person_id) if review.person_id else None
    if not covers(staff, person.region_code if person else None):
        raise ReviewNotFound(public_id)  # another region's photo does not exist for this user
    return review, person


def _claim(review: PhotoReview, staff: StaffUser, now: dt.datetime) -> None:
    review.claimed_by = staff.username
    review.claimed_at = now


def _held_by_other(review: PhotoReview, staff: StaffUser, now: dt.datetime) -> bool:
    return (
        review.claimed_by is not None
        and review.claimed_by != staff.username
        and review.claimed_at is not None
        and review.claimed_at >= now - CLAIM_TTL
    )


def status_label(status: str) -> str:
    return {APPROVED: "已通过", REJECTED: "未通过", PENDING: "待审"}.get(status, status)
