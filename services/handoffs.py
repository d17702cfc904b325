"""转人工：用户要求人工服务时，请求进入工作台的队列，由工作人员接手、回复、交还机器人。

A handoff is open until staff release it. After 24 hours an unreleased handoff no longer
silences the bot (nobody answered — better the bot than silence); the next request for that
conversation closes the stale row (``released_by='expired'``) and opens a fresh one.
One open handoff per conversation is guaranteed by a partial unique index.

While nobody has taken it the user is never left in silence (bot/actions/assistance.py says
they are waiting, when staff are on duty and the phone number); asking the bot for something
leaves the queue (``released_by='user'``), and a request nobody takes within the
:class:`HandoffPolicy` wait times out (``released_by='timeout'``) with a message saying so.
Once a staff user has taken it (:func:`take`) the bot is silent and every message in the
conversation is kept in ``handoff_messages`` for the console (ID numbers masked).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import audit
from services.clock import SHANGHAI
from services.idcard import mask_id_numbers_in_text, mask_personal_numbers
from services.models import AuditLog, Handoff, HandoffMessage, StaffUser, naive_utc
from services.notifications import Notice
from services.outbound import BotMessage
from services.regions import policy_for
from services.staff import covers, region_clause

__all__ = [
    "HANDOFF_TTL",
    "DutyHours",
    "HandoffPolicy",
    "current_handoff",
    "is_handed_off",
    "open_handoffs",
    "release",
    "request_handoff",
]

HANDOFF_TTL = dt.timedelta(hours=24)
EXPIRED_BY = "expired"
TIMEOUT_BY = "timeout"
USER_LEFT_BY = "user"
REASON_MAX_LENGTH = 256  # Handoff.reason
MESSAGE_MAX_LENGTH = 2000
TRANSCRIPT_MAX = 20  # messages before the handoff copied for the staff user
WEEKDAYS = "一二三四五六日"


class AlreadyTaken(Exception):
    def __init__(self, handoff: Handoff):
        super().__init__(f"这个会话已由{handoff.taken_by}接手")
        self.handoff = handoff


class HandoffClosed(Exception):
    """The user left the queue, it timed out, or someone released it."""


class HandoffNotFound(LookupError):
    pass


@dataclass(frozen=True)
class DutyHours:
    """工作人员值班时间，如 ``"1-5 08:30-12:00,14:30-17:30"``（周一至周五，上午和下午）。"""

    days: tuple[int, ...]  # ISO weekdays, 1 = Monday
    periods: tuple[tuple[dt.time, dt.time], ...]

    _SPEC = re.compile(r"\s*([1-7])(?:-([1-7]))?\s+(.+)")

    @classmethod
    def parse(cls, spec: str) -> DutyHours:
        found = cls._SPEC.fullmatch(spec or "")
        if not found:
            raise ValueError(f"staff hours {spec!r}: expected e.g. '1-5 08:30-12:00,14:30-17:30'")
        first, last = int(found.group(1)), int(found.group(2) or found.group(1))
        periods = []
        for part in found.group(3).split(","):
            start, _, end = part.strip().partition("-")
            opens, closes = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
            if not opens < closes:
                raise ValueError(f"staff hours {part!r}: the start must come before the end")
            periods.append((opens, closes))
        return cls(tuple(range(first, last + 1)), tuple(periods))

    def on_duty(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(SHANGHAI) if moment.tzinfo else moment
        return local.isoweekday() in self.days and any(
            opens <= local.time() < closes for opens, closes in self.periods
        )

    def describe(self) -> str:
        """e.g. "周一至周五 8:30–12:00、14:30–17:30"."""
        first, last = WEEKDAYS[self.days[0] - 1], WEEKDAYS[self.days[-1] - 1]
        days = f"周{first}" if first == last else f"周{first}至周{last}"
        times = "、".join(f"{_hm(a)}–{_hm(b)}" for a, b in self.periods)
        return f"{days} {times}"


def _hm(moment: dt.time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"


@dataclass(frozen=True)
class HandoffPolicy:
    """How long an untaken request waits, and when staff are on duty (settings)."""

    wait: dt.timedelta = dt.timedelta(minutes=30)
    hours: DutyHours = DutyHours.parse("1-5 08:30-12:00,14:30-17:30")

    @classmethod
    def from_settings(cls, config: Mapping) -> HandoffPolicy:
        default = cls()
        minutes = config.get("HANDOFF_WAIT_MINUTES")
        hours = config.get("STAFF_HOURS")
        return cls(
            wait=dt.timedelta(minutes=int(minutes)) if minutes else default.wait,
            hours=DutyHours.parse(hours) if hours else default.hours,
        )


def current_handoff(
    session: Session,
    conversation_id: str,
    now: dt.datetime | None = None,
    *,
    wait: dt.timedelta | None = None,
) -> Handoff | None:
    """The open handoff of this conversation that still silences the bot, if any.

    With ``wait``, a request nobody has taken within it no longer counts (it timed out).
    """
    handoff = _open_row(session, conversation_id)
    now = naive_utc(now)
    if handoff is None or _expired(handoff, now) or _timed_out(handoff, now, wait):
        return None
    return handoff


def is_handed_off(
    session: Session,
    conversation_id: str,
    now: dt.datetime | None = None,
    *,
    wait: dt.timedelta | None = None,
) -> bool:
    """该会话是否在转人工中（未释放、不满 24 小时；给了 ``wait`` 时未接手的不超过它）。"""
    return current_handoff(session, conversation_id, now, wait=wait) is not None


def request_handoff(
    session: Session,
    conversation_id: str,
    channel: str,
    reason: str | None,
    *,
    now: dt.datetime | None = None,
    region_code: str | None = None,
    transcript: Iterable[tuple[str, str]] = (),
    wait: dt.timedelta | None = None,
) -> Handoff:
    """请求转人工；已有未过期的转人工时原样返回它（幂等）。

    ``reason`` is usually the user's last message; ID and mobile numbers in it are masked before
    storing.
    ``transcript`` is the conversation so far as ``(sender, text)`` pairs ('user' / 'bot'),
    kept for the staff user who takes it; ``region_code`` says whose staff see it.
    """
    conversation_id = _conversation_id(conversation_id)
    channel = (channel or "").strip()
    if not channel or len(channel) > 16:
        raise ValueError(f"invalid channel name {channel!r}")
    now = naive_utc(now)
    existing = _open_row(session, conversation_id)
    if existing is not None:
        if not (_expired(existing, now) or _timed_out(existing, now, wait)):
            return existing
        _close(
            session, existing, TIMEOUT_BY if _timed_out(existing, now, wait) else EXPIRED_BY, now
        )

    handoff = Handoff(
        conversation_id=conversation_id,
        channel=channel,
        requested_at=now,
        reason=_reason(reason),
        region_code=region_code if region_code and re.fullmatch(r"\d{6}", region_code) else None,
    )
    try:
        with session.begin_nested():
            session.add(handoff)
    except IntegrityError:
        # Another worker opened one for this conversation at the same moment.
        winner = _open_row(session, conversation_id)
        if winner is None:
            raise
        return winner

    session.add(
        AuditLog(
            at=now,
            actor="bot",
            action="handoff.requested",
            target_type="handoff",
            target_id=str(handoff.id),
            detail={"conversation_id": conversation_id, "channel": channel},
        )
    )
    for sender, text in list(transcript)[-TRANSCRIPT_MAX:]:
        add_message(session, handoff, sender, text, at=now)
    session.flush()
    return handoff


def release(
    session: Session, conversation_id: str, by: str, *, now: dt.datetime | None = None
) -> bool:
    """工作人员处理完毕，机器人恢复回复。没有未释放的转人工时返回 False。"""
    if not by or not by.strip():
        raise ValueError("release needs the staff username")
    handoff = _open_row(session, _conversation_id(conversation_id))
    if handoff is None:
        return False
    _close(session, handoff, by.strip()[:64], naive_utc(now))
    return True


def open_handoffs(session: Session, now: dt.datetime | None = None) -> list[Handoff]:
    """当前由人工处理的会话（未释放、不满 24 小时），先请求的在前。"""
    cutoff = naive_utc(now) - HANDOFF_TTL
    return list(
        session.scalars(
            select(Handoff)
            .where(Handoff.released_at.is_(None), Handoff.requested_at > cutoff)
            .order_by(Handoff.requested_at, Handoff.id)
        )
    )


def _open_row(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id, Handoff.released_at.is_(None)
        )
    ).one_or_none()


def _close(session: Session, handoff: Handoff, by: str, now: dt.datetime) -> bool:
    # Conditional update: two staff pressing "release" at once close it once.
    released_at = min(now, handoff.requested_at + HANDOFF_TTL) if by == EXPIRED_BY else now
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.released_at.is_(None))
        .values(released_at=released_at, released_by=by)
        .execution_options(synchronize_session=False)
    )
    session.refresh(handoff)
    if not result.rowcount:
        return False
    system = by in (EXPIRED_BY, TIMEOUT_BY, USER_LEFT_BY)
    session.add(
        AuditLog(
            at=now,
            actor="bot" if system else by,
            action=f"handoff.{by}" if system else "handoff.released",
            target_type="handoff",
            target_id=str(handoff.id),
            detail={"conversation_id": handoff.conversation_id, "channel": handoff.channel},
        )
    )
    session.flush()
    return True


def _expired(handoff: Handoff, now: dt.datetime) -> bool:
    return handoff.requested_at <= now - HANDOFF_TTL


def _timed_out(handoff: Handoff, now: dt.datetime, wait: dt.timedelta | None) -> bool:
    return wait is not None and handoff.taken_by is None and handoff.requested_at <= now - wait


def timed_out(handoff: Handoff, now: dt.datetime, wait: dt.timedelta) -> bool:
    """Nobody took this request within ``wait``."""
    return _timed_out(handoff, naive_utc(now), wait)


def close_timed_out(session: Session, handoff: Handoff, now: dt.datetime | None = None) -> bool:
    return _close(session, handoff, TIMEOUT_BY, naive_utc(now))


# --- the waiting user (dialogue side) ---------------------------------------------------


def add_message(
    session: Session,
    handoff: Handoff,
    sender: str,
    text: str | None,
    *,
    author: str | None = None,
    at: dt.datetime | None = None,
) -> HandoffMessage | None:
    """记下会话里的一句话（身份证号脱敏）。"""
    text = mask_id_numbers_in_text(str(text or "").replace("\x00", "")).strip()
    if not text:
        return None
    message = HandoffMessage(
        handoff_id=handoff.id,
        at=naive_utc(at),
        sender=sender if sender in ("user", "bot", "staff") else "user",
        author=author,
        text=text[:MESSAGE_MAX_LENGTH],
    )
    session.add(message)
    session.flush()
    return message


def leave_queue(session: Session, handoff: Handoff, *, now: dt.datetime | None = None) -> bool:
    """用户等不及、让机器人办别的事：退出排队（只限还没人接手的）。"""
    if handoff.taken_by is not None:
        return False
    return _close(session, handoff, USER_LEFT_BY, naive_utc(now))


def waiting_message(
    policy: HandoffPolicy, handoff: Handoff, now: dt.datetime, *, just_requested: bool = False
) -> str:
    """等人工时机器人说的话：在排队、值班时间、电话、怎么退出。"""
    phone = policy_for(handoff.region_code).hotline or "12333"
    if policy.hours.on_duty(now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now):
        when = "现在是工作时间，工作人员接手后会在这里回复您，请稍等。"
    else:
        when = (
            f"现在不是工作时间（工作人员值班时间：{policy.hours.describe()}），"
            "上班后会尽快在这里回复您。"
        )
    minutes = int(policy.wait.total_seconds() // 60)
    return (
        f"{'已为您转接人工服务。' if just_requested else '您正在等待人工服务。'}{when}"
        f"等不及可以拨打{phone}。"
        f"如果{minutes}分钟内没有工作人员接手，会由我继续为您服务；"
        "想让我现在就帮您办，直接说要办的事，比如“我要认证”。"
    )


def timeout_message(policy: HandoffPolicy, handoff: Handoff) -> str:
    phone = policy_for(handoff.region_code).hotline or "12333"
    return (
        "很抱歉，刚才没有工作人员能接手您的人工服务请求。"
        f"工作人员值班时间：{policy.hours.describe()}，您也可以拨打{phone}。"
        "现在由我继续为您服务，有什么需要请直接说。"
    )


def expire_waiting(
    session: Session, policy: HandoffPolicy, *, now: dt.datetime | None = None
) -> list[Notice]:
    """关闭等待超时、没人接手的请求；返回要发给这些用户的消息。"""
    now = naive_utc(now)
    stale = session.scalars(
        select(Handoff).where(
            Handoff.released_at.is_(None),
            Handoff.taken_by.is_(None),
            Handoff.requested_at <= now - policy.wait,
        )
    ).all()
    notices = []
    for handoff in stale:
        if _close(session, handoff, TIMEOUT_BY, now):
            text = timeout_message(policy, handoff)
            add_message(session, handoff, "bot", text, at=now)
            notices.append(
                Notice(messages=(BotMessage(text=text),), conversation_id=handoff.conversation_id)
            )
    return notices


# --- the console (staff side) -----------------------------------------------------------


def staff_queue(
    session: Session, staff: StaffUser, policy: HandoffPolicy, *, now: dt.datetime | None = None
) -> list[Handoff]:
    """工作台的转人工队列：等待中的和已接手的，先请求的在前。

    Requests with no known region (the user never said who they are) are visible to every staff
    user: somebody must answer them.
    """
    now = naive_utc(now)
    return list(
        session.scalars(
            select(Handoff)
            .where(
                Handoff.released_at.is_(None),
                Handoff.requested_at > now - HANDOFF_TTL,
                or_(Handoff.taken_by.is_not(None), Handoff.requested_at > now - policy.wait),
                or_(Handoff.region_code.is_(None), region_clause(staff, Handoff.region_code)),
            )
            .order_by(Handoff.requested_at, Handoff.id)
        )
    )


def find_for_staff(session: Session, staff: StaffUser, public_id: str) -> Handoff:
    handoff = session.scalars(
        select(Handoff).where(Handoff.public_id == (public_id or "")[:32])
    ).one_or_none()
    if handoff is None or (handoff.region_code and not covers(staff, handoff.region_code)):
        raise HandoffNotFound(public_id)
    return handoff


def take(
    session: Session, staff: StaffUser, public_id: str, *, now: dt.datetime | None = None
) -> Handoff:
    """接手：只有一个工作人员能接手（条件更新）。"""
    now = naive_utc(now)
    handoff = find_for_staff(session, staff, public_id)
    if handoff.released_at is not None:
        raise HandoffClosed(public_id)
    result = session.execute(
        update(Handoff)
        .where(
            Handoff.id == handoff.id,
            Handoff.released_at.is_(None),
            or_(Handoff.taken_by.is_(None), Handoff.taken_by == staff.username),
        )
        .values(taken_by=staff.username, taken_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(handoff)
    if not result.rowcount:
        if handoff.released_at is not None:
            raise HandoffClosed(public_id)
        raise AlreadyTaken(handoff)
    audit.record(session, staff.username, "handoff.taken", "handoff", handoff.public_id, at=now)
    return handoff


def staff_reply(
    session: Session,
    staff: StaffUser,
    public_id: str,
    text: str,
    *,
    now: dt.datetime | None = None,
) -> Notice:
    """工作人员回复：记下来，返回发往用户所在渠道的消息。"""
    now = naive_utc(now)
    handoff = find_for_staff(session, staff, public_id)
    if handoff.released_at is not None:
        raise HandoffClosed(public_id)
    if handoff.taken_by != staff.username:
        raise AlreadyTaken(handoff)
    text = str(text or "").strip()
    if not text:
        raise ValueError("回复内容是空的")
    message = add_message(
        session, handoff, "staff", text[:MESSAGE_MAX_LENGTH], author=staff.username, at=now
    )
    audit.record(session, staff.username, "handoff.answered", "handoff", handoff.public_id, at=now)
    return Notice(
        messages=(BotMessage(text=f"【人工客服】{message.text}"),),
        conversation_id=handoff.conversation_id,
    )


def staff_release(
    session: Session, staff: StaffUser, public_id: str, *, now: dt.datetime | None = None
) -> Notice | None:
    """交还机器人，并告诉用户。"""
    now = naive_utc(now)
    handoff = find_for_staff(session, staff, public_id)
    if handoff.taken_by not in (None, staff.username) and staff.role != "admin":
        raise AlreadyTaken(handoff)
    if not _close(session, handoff, staff.username, now):
        return None
    text = "本次人工服务已结束，谢谢您的耐心。之后有问题可以继续问我。"
    add_message(session, handoff, "bot", text, at=now)
    return Notice(messages=(BotMessage(text=text),), conversation_id=handoff.conversation_id)


def expire_waiting_handoffs(runtime) -> int:
    """Job: time out untaken requests and tell each user (cron / the console's queue page)."""
    from services.notifications import enqueue_notice, tell_conversation

    policy = HandoffPolicy.from_settings(runtime.config)
    with runtime.database.session() as session:
        notices = expire_waiting(session, policy, now=runtime.clock.utcnow())
    for notice in notices:
        if runtime.jobs is not None:
            enqueue_notice(runtime, notice)
        else:
            tell_conversation(runtime, notice.conversation_id, list(notice.messages))
    return len(notices)


def _conversation_id(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 128:
        raise ValueError("conversation_id must be 1–128 characters")
    return value


def _reason(text: str | None) -> str | None:
    if text is None:
        return None
    text = mask_personal_numbers(str(text).replace("\x00", "")).strip()
    if len(text) > REASON_MAX_LENGTH:
        text = text[: REASON_MAX_LENGTH - 1] + "…"
    return text or None
