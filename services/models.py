"""数据库模型：参保人名册、渠道账号与绑定、认证记录、待遇状态、上门认证、照片审核、转人工、员工、审计日志。

One schema for SQLite (embedded default) and PostgreSQL; Alembic migrations in
``services/migrations`` create it. Plain SQLAlchemy 2 — no Flask here.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.clock import system_clock

# Stable constraint names so Alembic migrations match on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Column defaults: now, as naive UTC (see services.clock)."""
    return system_clock.utcnow()


def public_id() -> str:
    """A random, unguessable id for URLs: says nothing about the person, never the ID number."""
    return secrets.token_urlsafe(16)


def naive_utc(moment: dt.datetime | None = None) -> dt.datetime:
    """The database stores naive UTC: ``moment`` (or now) converted to that."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BenefitType(enum.StrEnum):
    institution = "institution"  # 机关事业
    enterprise = "enterprise"  # 企业职工
    resident = "resident"  # 城乡居民
    unemployment = "unemployment"  # 失业
    work_injury = "work_injury"  # 工伤长期待遇
    dependent = "dependent"  # 供养直系亲属


class PaymentStatus(enum.StrEnum):
    normal = "normal"
    suspended = "suspended"
    stopped = "stopped"


class CertificationMethod(enum.StrEnum):
    face = "face"
    photo_review = "photo_review"
    home_visit = "home_visit"
    info_comparison = "info_comparison"
    app = "app"
    unit_confirmation = "unit_confirmation"  # 参保单位核实确认 (shanxi-2018 二(一), 三(一))


class CertificationResult(enum.StrEnum):
    passed = "passed"
    failed = "failed"


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    # Stored as VARCHAR + CHECK on both engines: no PostgreSQL enum types to migrate.
    return Enum(kind, name=name, native_enum=False, length=20, validate_strings=True)


class Person(Base):
    """A pension recipient from the roster (参保人)."""

    __tablename__ = "persons"
    __table_args__ = (
        # The daily run's lookup: people still paid, by region, benefit and last certification.
        Index(
            "ix_persons_cycle",
            "region_code",
            "benefit_type",
            "last_certified_on",
            postgresql_where=text("status = 'normal'"),
            sqlite_where=text("status = 'normal'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    gender: Mapped[str] = mapped_column(String(1))  # 'M' / 'F', derived from the ID number
    birth_date: Mapped[dt.date] = mapped_column(Date)  # derived from the ID number
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    benefit_type: Mapped[BenefitType] = mapped_column(_enum(BenefitType, "benefit_type"))
    phone: Mapped[str | None] = mapped_column(String(20))
    unit_name: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus, "payment_status"))
    last_certified_on: Mapped[dt.date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(String(256))
    overseas: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # the console's URLs name people by this, never by person_no or the ID number
    public_id: Mapped[str | None] = mapped_column(
        String(32), unique=True, index=True, default=public_id
    )

    bindings: Mapped[list[Binding]] = relationship(back_populates="person")
    certifications: Mapped[list[CertificationRecord]] = relationship(
        back_populates="person", order_by="CertificationRecord.certified_at"
    )


class ChannelAccount(Base):
    """A user of one platform: a WeChat openid, an Alipay user id, a REST sender."""

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    region_code: Mapped[str | None] = mapped_column(String(6))
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    bindings: Mapped[list[Binding]] = relationship(back_populates="account")


class Binding(Base):
    """An account certifies for a person: themself (relation 'self') or a relative."""

    __tablename__ = "bindings"
    __table_args__ = (UniqueConstraint("account_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    relation: Mapped[str] = mapped_column(String(16))  # 'self', 妈妈, 父亲, 岳母, …
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    account: Mapped[ChannelAccount] = relationship(back_populates="bindings")
    person: Mapped[Person] = relationship(back_populates="bindings")


class CertificationRecord(Base):
    """One certification attempt and its outcome."""

    __tablename__ = "certification_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    method: Mapped[CertificationMethod] = mapped_column(
        _enum(CertificationMethod, "certification_method")
    )
    certified_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    result: Mapped[CertificationResult] = mapped_column(
        _enum(CertificationResult, "certification_result")
    )
    evidence: Mapped[dict | None] = mapped_column(JSON)
    operator: Mapped[str | None] = mapped_column(String(64))  # staff username, or None
    channel: Mapped[str | None] = mapped_column(String(16))

    person: Mapped[Person] = relationship(back_populates="certifications")


class PaymentStatusChange(Base):
    """Payment-status history: normal → suspended → resumed (with back pay) / stopped."""

    __tablename__ = "payment_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # normal / suspended / resumed / stopped
    effective_on: Mapped[dt.date] = mapped_column(Date, index=True)
    reason: Mapped[str | None] = mapped_column(String(256))
    back_pay_from: Mapped[dt.date | None] = mapped_column(Date)
    back_pay_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class HomeVisitRequest(Base):
    """上门认证申请."""

    __tablename__ = "home_visit_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    address: Mapped[str] = mapped_column(String(256))
    contact_phone: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    scheduled_for: Mapped[dt.date | None] = mapped_column(Date)
    staff_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    public_id: Mapped[str | None] = mapped_column(
        String(32), unique=True, index=True, default=public_id
    )
    assigned_to: Mapped[str | None] = mapped_column(String(64))  # staff username
    outcome: Mapped[str | None] = mapped_column(String(16))  # alive / deceased / not_found / moved
    deceased_on: Mapped[dt.date | None] = mapped_column(Date)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class PhotoReview(Base):
    """A photo holding the ID card and a dated newspaper, waiting for staff review."""

    __tablename__ = "photo_reviews"
    # the review queue: pending, oldest first
    __table_args__ = (Index("ix_photo_reviews_status_submitted", "status", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    photo_name: Mapped[str] = mapped_column(String(64))  # random name outside the web root
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reviewer: Mapped[str | None] = mapped_column(String(64))
    decision_reason: Mapped[str | None] = mapped_column(String(256))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    public_id: Mapped[str | None] = mapped_column(
        String(32), unique=True, index=True, default=public_id
    )
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # reviewer working on it
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reject_code: Mapped[str | None] = mapped_column(String(32))  # services/data/photo_review.yaml
    checklist: Mapped[list | None] = mapped_column(JSON)  # checklist items the reviewer ticked
    prechecks: Mapped[dict | None] = mapped_column(JSON)  # automatic pre-check results


class Handoff(Base):
    """转人工：一个会话交给工作人员，机器人暂停回复，直到释放或满 24 小时。

    At most one open handoff (``released_at`` NULL) per conversation, enforced by the partial
    unique index ``uq_handoffs_conversation_id`` on both SQLite and PostgreSQL.
    """

    __tablename__ = "handoffs"
    __table_args__ = (
        Index(
            "uq_handoffs_conversation_id",
            "conversation_id",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
            sqlite_where=text("released_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(256))  # last user text, ID numbers masked
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # staff username, 'expired' (24 h), 'timeout' (nobody took it), 'user' (left the queue)
    released_by: Mapped[str | None] = mapped_column(String(64))
    public_id: Mapped[str | None] = mapped_column(
        String(32), unique=True, index=True, default=public_id
    )
    region_code: Mapped[str | None] = mapped_column(String(6))  # whose staff may take it
    taken_by: Mapped[str | None] = mapped_column(String(64))
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    messages: Mapped[list[HandoffMessage]] = relationship(
        back_populates="handoff", order_by="HandoffMessage.id"
    )


class HandoffMessage(Base):
    """转人工会话记录：用户、机器人和工作人员说的话（身份证号已脱敏）。"""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sender: Mapped[str] = mapped_column(String(8))  # user / bot / staff
    author: Mapped[str | None] = mapped_column(String(64))  # staff username
    text: Mapped[str] = mapped_column(Text)

    handoff: Mapped[Handoff] = relationship(back_populates="messages")


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16), default="reviewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    regions: Mapped[list] = mapped_column(JSON, default=list)  # region-code prefixes; "" = all
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # changes on a password reset: every session signed in with the old password ends
    session_token: Mapped[str] = mapped_column(String(64), default=public_id)


class AuditLog(Base):
    """Every staff action (and every system action on a person's payment)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor_at", "actor", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSON)


# --- the certification year (services/lifecycle.py, comparison.py, verification.py) ---------


class LifecycleDay(Base):
    """A day the daily run finished: the next run catches up from the day after."""

    __tablename__ = "lifecycle_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CycleNotice(Base):
    """A reminder or a suspension notice owed to a person: at most one per (person, kind, due date).

    The unique key is what makes the daily run safe to run twice or on two hosts at once:
    a notice is sent only by the run whose INSERT created its row. ``route`` is decided when
    the row is created: 'account' (bound WeChat / Alipay / web accounts), 'sms' (a phone but no
    account) or 'unit' (neither: the person's unit tells them, from the per-unit list).
    """

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("person_id", "kind", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    kind: Mapped[str] = mapped_column(
        String(16)
    )  # remind_3m / remind_1m / remind_7d / overdue / suspended
    due_date: Mapped[dt.date] = mapped_column(Date)
    day: Mapped[dt.date] = mapped_column(Date, index=True)  # the run day that owed it
    route: Mapped[str] = mapped_column(String(8))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ComparisonRecord(Base):
    """信息比对记录：出行、住院、体检、出入境（视同认证），死亡、火化、失踪、服刑（停发）."""

    __tablename__ = "comparison_records"
    __table_args__ = (UniqueConstraint("person_id", "kind", "record_date", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # 民航, 铁路, 卫健, 民政, 公安, 司法 …
    kind: Mapped[str] = mapped_column(String(24))
    record_date: Mapped[dt.date] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PendingVerification(Base):
    """待核实人员：认证期内没有比对信息也没有认证，下发参保单位在期限内核实确认."""

    __tablename__ = "pending_verifications"
    __table_args__ = (UniqueConstraint("person_id", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    unit_name: Mapped[str | None] = mapped_column(String(128), index=True)
    due_date: Mapped[dt.date] = mapped_column(Date)  # the cycle the person missed
    listed_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)  # the unit reports back by then
    outcome: Mapped[str | None] = mapped_column(String(16))  # eligible / lost / unreachable
    outcome_note: Mapped[str | None] = mapped_column(String(256))
    returned_on: Mapped[dt.date | None] = mapped_column(Date)


class PublicNotice(Base):
    """江西：每年7月在村（居）委公示本年度未认证人员，公示不少于10天."""

    __tablename__ = "public_notices"
    __table_args__ = (UniqueConstraint("region_code", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    posted_on: Mapped[dt.date] = mapped_column(Date)
    keep_until: Mapped[dt.date] = mapped_column(Date)  # the earliest day it may come down
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    entries: Mapped[list[PublicNoticeEntry]] = relationship(back_populates="notice")


class PublicNoticeEntry(Base):
    """One person on a posted notice: the list as it was posted, kept after they certify."""

    __tablename__ = "public_notice_entries"
    __table_args__ = (UniqueConstraint("notice_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("public_notices.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)

    notice: Mapped[PublicNotice] = relationship(back_populates="entries")


class ReferenceFace(Base):
    """人脸建模：a person's reference face, the 128-d encoding a live check is matched against.

    One per person. ``source`` says where it came from: 'roster_photo' (the social-security-card
    photo, imported by staff) or 'photo_review' (the face on the first approved review photo).
    The image itself is not kept here.
    """

    __tablename__ = "reference_faces"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    encoding: Mapped[list] = mapped_column(JSON)  # 128 floats
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class FaceCheck(Base):
    """One face check offered in the chat: the link's single use, the actions asked, the outcome.

    ``status``: issued → consented → uploaded → passed / failed. The link names the row by
    ``public_id``; it works until the upload (single use) and for 15 minutes at most.
    """

    __tablename__ = "face_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=public_id)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    actions: Mapped[list] = mapped_column(JSON)  # e.g. ['blink', 'turn_left']
    status: Mapped[str] = mapped_column(String(16), default="issued")
    reason: Mapped[str | None] = mapped_column(String(32))  # why it failed: services/liveness.py
    evidence: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class FaceConsent(Base):
    """同意书 (PIPL art. 29): the person agreed to face processing, when, and to which wording."""

    __tablename__ = "face_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("face_checks.id"))
    wording_version: Mapped[str] = mapped_column(String(16))
    consented_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
