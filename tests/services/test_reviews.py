"""Photo review: the queue, claims (SKIP LOCKED), one decision per photo, and its effects."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from services import reviews
from services.accounts import account_for, bind_person
from services.models import (
    AuditLog,
    CertificationRecord,
    PaymentStatus,
    PaymentStatusChange,
    Person,
    PhotoReview,
    StaffUser,
)
from services.notifications import enqueue_notice
from services.outbound import Recipient
from tests.support import make_person, make_review, make_runtime, make_staff

NOW = dt.datetime(2026, 12, 1, 2, 0)  # naive UTC = 10:00 in Beijing
LOCAL = dt.datetime(2026, 12, 1, 10, 0)
ALL_TICKED = [item.code for item in reviews.checklist_for("610102")]


@pytest.fixture
def photo_dir(tmp_path):
    return tmp_path / "photos"


def test_checklist_and_reasons_come_from_the_data_files():
    labels = [item.label for item in reviews.checklist_for("360734")]
    assert "手持身份证" in labels and any("十五天" in label for label in labels)
    codes = [reason.label for reason in reviews.reject_reasons()]
    assert codes == ["模糊", "脸被遮挡", "没拿身份证", "报纸日期超过15天", "不是本人", "其他"]


def test_queue_is_oldest_first_and_only_the_reviewers_regions(db, photo_dir):
    with db.session() as session:
        reviewer = make_staff(session, regions=["61"])
        xian = make_person(session, seq=3, region_code="610102")
        nanning = make_person(session, seq=4, region_code="450103")
        newer = make_review(session, photo_dir, xian, submitted_at=NOW)
        older = make_review(session, photo_dir, xian, submitted_at=NOW - dt.timedelta(hours=1))
        make_review(session, photo_dir, nanning, submitted_at=NOW - dt.timedelta(hours=2))
        rows, total = reviews.pending_queue(session, reviewer)
        assert total == 2
        assert [row.review.id for row in rows] == [older.id, newer.id]


def test_two_reviewers_claiming_at_once_get_different_photos(db, photo_dir):
    """FOR UPDATE SKIP LOCKED: neither waits for the other, neither gets the other's photo."""
    with db.session() as session:
        make_staff(session, "wang", regions=["61"])
        make_staff(session, "zhao", regions=["61"])
        person = make_person(session, seq=3)
        for minutes in (3, 2, 1):
            make_review(
                session, photo_dir, person, submitted_at=NOW - dt.timedelta(minutes=minutes)
            )
    barrier = threading.Barrier(2)
    claimed: dict[str, int] = {}

    def claim(username: str) -> None:
        with db.session() as session:
            me = session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
            review = reviews.claim_next(session, me, now=NOW)
            barrier.wait(10)  # both hold their row lock at the same time
            claimed[username] = review.id

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("wang", "zhao")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(set(claimed.values())) == 2
    with db.session() as session:
        holders = set(
            session.scalars(
                select(PhotoReview.claimed_by).where(PhotoReview.claimed_by.is_not(None))
            )
        )
        assert holders == {"wang", "zhao"}


def test_approval_certifies_resumes_with_back_pay_and_tells_the_sender(db, photo_dir):
    runtime = make_runtime(db)
    with db.session() as session:
        reviewer = make_staff(session)
        # due 2026-03-01, so suspended from April 2026: back pay April–December
        person = make_person(
            session, seq=3, status=PaymentStatus.suspended, last_certified_on=dt.date(2025, 3, 1)
        )
        daughter = account_for(session, "wechat", "o-daughter")
        bind_person(session, daughter, person, "妈妈")
        review = make_review(session, photo_dir, person, daughter)
        decision = reviews.decide(
            session,
            reviewer,
            review.public_id,
            approve=True,
            checklist=ALL_TICKED,
            now=NOW,
            local_now=LOCAL,
        )
        assert decision.back_pay_months == 9
    enqueue_notice(runtime, decision.notice)
    with db.session() as session:
        stored = session.get(Person, person.id)
        assert stored.status == PaymentStatus.normal
        assert stored.last_certified_on == dt.date(2026, 12, 1)
        record = session.scalars(select(CertificationRecord)).one()
        assert record.method == "photo_review" and record.operator == "li"
        assert record.evidence["photo_review"] == review.public_id
        change = session.scalars(select(PaymentStatusChange)).one()
        assert (change.status, change.back_pay_from, change.back_pay_months) == (
            "resumed",
            dt.date(2026, 4, 1),
            9,
        )
    told = " ".join(runtime.extensions["collected"].texts_for(Recipient("wechat", "o-daughter")))
    assert "审核通过" in told and "补发" in told and "9个月" in told


def test_rejection_says_what_to_fix_and_keeps_the_person_due(db, photo_dir):
    runtime = make_runtime(db)
    with db.session() as session:
        reviewer = make_staff(session)
        person = make_person(session, seq=3, last_certified_on=dt.date(2025, 3, 1))
        account = account_for(session, "alipay", "2088-me")
        review = make_review(session, photo_dir, person, account)
        decision = reviews.decide(
            session,
            reviewer,
            review.public_id,
            approve=False,
            reason_code="newspaper_old",
            now=NOW,
            local_now=LOCAL,
        )
        assert decision.review.status == "rejected"
        assert decision.review.decision_reason == "报纸日期超过15天"
    enqueue_notice(runtime, decision.notice)
    with db.session() as session:
        assert session.get(Person, person.id).last_certified_on == dt.date(2025, 3, 1)
        assert session.scalar(select(func.count()).select_from(CertificationRecord)) == 0
    told = runtime.extensions["collected"].texts_for(Recipient("alipay", "2088-me"))
    assert "15天" in told[0] and "重新拍一张" in told[0] and "重新拍照认证" in told[0]


def test_other_needs_a_text_and_approval_needs_the_checklist(db, photo_dir):
    with db.session() as session:
        reviewer = make_staff(session)
        review = make_review(session, photo_dir, make_person(session, seq=3))
        with pytest.raises(reviews.InvalidDecision, match="其他"):
            reviews.decide(
                session, reviewer, review.public_id, approve=False, reason_code="other", now=NOW
            )
        with pytest.raises(reviews.InvalidDecision, match="勾选"):
            reviews.decide(
                session, reviewer, review.public_id, approve=True, checklist=ALL_TICKED[:2], now=NOW
            )
        with pytest.raises(reviews.InvalidDecision, match="原因"):
            reviews.decide(
                session, reviewer, review.public_id, approve=False, reason_code="bogus", now=NOW
            )
        assert session.get(PhotoReview, review.id).status == "pending"


def test_a_second_decision_is_refused_and_says_by_whom(db, photo_dir):
    with db.session() as session:
        reviewer = make_staff(session)
        review = make_review(session, photo_dir, make_person(session, seq=3))
        reviews.decide(
            session, reviewer, review.public_id, approve=False, reason_code="blurry", now=NOW
        )
        with pytest.raises(reviews.AlreadyDecided, match="li"):
            reviews.decide(
                session, reviewer, review.public_id, approve=True, checklist=ALL_TICKED, now=NOW
            )
        assert session.scalar(select(func.count()).select_from(CertificationRecord)) == 0


def test_an_approval_racing_a_rejection_one_wins(db, photo_dir):
    with db.session() as session:
        make_staff(session, "wang", role="admin", regions=["all"])
        make_staff(session, "zhao", role="admin", regions=["all"])
        review = make_review(session, photo_dir, make_person(session, seq=3))
        public_id = review.public_id
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(username: str, approve: bool) -> None:
        barrier.wait(10)
        try:
            with db.session() as session:
                me = session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
                reviews.decide(
                    session,
                    me,
                    public_id,
                    approve=approve,
                    checklist=ALL_TICKED,
                    reason_code="blurry",
                    now=NOW,
                    local_now=LOCAL,
                )
            outcomes[username] = "won"
        except (reviews.AlreadyDecided, reviews.ClaimedByOther) as lost:
            outcomes[username] = f"told: {lost}"

    threads = [
        threading.Thread(target=decide, args=("wang", True)),
        threading.Thread(target=decide, args=("zhao", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(v == "won" for v in outcomes.values()) == [False, True], outcomes
    with db.session() as session:
        decided = session.scalars(
            select(AuditLog.action).where(
                AuditLog.action.in_(["photo_review.approved", "photo_review.rejected"])
            )
        ).all()
        assert len(decided) == 1


def test_another_regions_photo_does_not_exist_for_the_reviewer(db, photo_dir):
    with db.session() as session:
        reviewer = make_staff(session, regions=["45"])
        review = make_review(session, photo_dir, make_person(session, seq=3, region_code="610102"))
        with pytest.raises(reviews.ReviewNotFound):
            reviews.open_review(session, reviewer, review.public_id, now=NOW)
        with pytest.raises(reviews.ReviewNotFound):
            reviews.photo_file(session, reviewer, photo_dir, review.public_id)
        with pytest.raises(reviews.ReviewNotFound):
            reviews.decide(session, reviewer, review.public_id, approve=False, reason_code="blurry")


def test_a_claim_held_by_someone_else_blocks_until_it_lapses(db, photo_dir):
    with db.session() as session:
        first = make_staff(session, "wang")
        second = make_staff(session, "zhao")
        review = make_review(session, photo_dir, make_person(session, seq=3))
        reviews.open_review(session, first, review.public_id, now=NOW)
        with pytest.raises(reviews.ClaimedByOther):
            reviews.decide(
                session, second, review.public_id, approve=False, reason_code="blurry", now=NOW
            )
        assert reviews.claim_next(session, second, now=NOW) is None
        later = NOW + reviews.CLAIM_TTL + dt.timedelta(seconds=1)
        assert reviews.claim_next(session, second, now=later).id == review.id
        viewed = session.scalars(
            select(AuditLog).where(AuditLog.action == "photo_review.viewed")
        ).all()
        assert [entry.actor for entry in viewed] == ["wang"]


def test_a_rejection_offers_a_home_visit_only_where_the_region_has_them(db, photo_dir):
    with db.session() as session:
        reviewer = make_staff(session, regions=["all"])
        xunwu = make_review(session, photo_dir, make_person(session, seq=3, region_code="360734"))
        xian = make_review(session, photo_dir, make_person(session, seq=4, region_code="610102"))
        buttons = {
            review.id: [
                b.title
                for b in reviews.decide(
                    session,
                    reviewer,
                    review.public_id,
                    approve=False,
                    reason_code="blurry",
                    now=NOW,
                )
                .notice.messages[0]
                .buttons
            ]
            for review in (xunwu, xian)
        }
    assert buttons[xunwu.id] == ["重新拍照认证"]  # Jiangxi: face or photo, no home visits
    assert buttons[xian.id] == ["重新拍照认证", "申请上门认证"]
