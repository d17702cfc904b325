"""聊天里的刷脸认证：发链接、先征得同意、收视频、在后台核验、把结果告诉本人。

The chat offers a check (:func:`offer_check`): a :class:`~services.models.FaceCheck` row bound
to the person and the account that asked, with 2–3 random actions, reached by the link
``/face/<public_id>`` — 128 random bits, good for 15 minutes and for one upload. Before any face
is processed the page asks for consent (PIPL art. 29), recorded with the wording's version.
The uploaded clip is checked by a worker job (:func:`run_check`): liveness and the match to the
reference face (services/liveness.py). A pass records a certification (method face) through
:func:`services.certification.record_certification`, which resumes a suspended payment with
back pay; a failure says why in plain words, with the seeds' tips, and after three failures
offers a photo review or a home visit. The clip is deleted after the check unless
``FACE_KEEP_VIDEOS`` is set. Wording: services/data/face_check.yaml.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import faces, liveness
from services.certification import CannotCertify, record_certification, what_follows
from services.clock import in_shanghai
from services.models import (
    CertificationMethod,
    ChannelAccount,
    FaceCheck,
    FaceConsent,
    Person,
    naive_utc,
)
from services.notifications import tell_account
from services.outbound import BotMessage, Button
from services.regions import policy_for
from services.runtime import Runtime

__all__ = [
    "LINK_TTL",
    "MAX_FAILURES",
    "CheckUnavailable",
    "accept_video",
    "consent_text",
    "failures",
    "link_for",
    "offer_check",
    "open_check",
    "record_consent",
    "run_check",
    "wording",
]

log = logging.getLogger(__name__)

DATA_FILE = Path(__file__).parent / "data" / "face_check.yaml"
LINK_TTL = dt.timedelta(minutes=15)
MAX_FAILURES = 3  # then the chat offers a photo review or a home visit, never a dead end
ISSUED, CONSENTED, UPLOADED, PASSED, FAILED = "issued", "consented", "uploaded", "passed", "failed"
DEFAULT_THRESHOLD = 0.6
RETRY = Button("重新刷脸", '/choose_method{"method":"face"}')
PHOTO = Button("拍照认证", "/manual_review")
VISIT = Button("申请上门认证", "/request_home_visit")


class CheckUnavailable(LookupError):
    """The link is unknown, expired or used: the page says so and points back to the chat."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why  # 'unknown' / 'expired' / 'used'


@cache
def wording() -> dict:
    with open(DATA_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def consent_text() -> dict:
    return wording()["consent"]


def link_for(check: FaceCheck, public_url: str = "") -> str:
    """The page's address: absolute under ``public_url`` (PUBLIC_BASE_URL), which WeChat and
    Alipay need to open it; a bare path otherwise (the web chat opens it on its own host)."""
    return f"{public_url.rstrip('/')}/face/{check.public_id}"


# --- the chat's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What the chat answers to 刷脸认证: a link, or why not (and what instead)."""

    check: FaceCheck | None
    messages: tuple[BotMessage, ...]


def offer_check(
    session: Session,
    person: Person,
    account: ChannelAccount,
    *,
    now: dt.datetime,
    actions: Sequence[str] | None = None,
    public_url: str = "",
) -> Offer:
    """A new check for ``person`` asked by ``account``, or the explanation when none can run.

    ``actions`` default to 2–3 random ones (:func:`services.liveness.choose_actions`).
    """
    if faces.reference_for(session, person) is None:
        return Offer(None, tuple(_no_reference(person)))
    check = FaceCheck(
        person_id=person.id,
        account_id=account.id,
        actions=list(actions or liveness.choose_actions()),
        status=ISSUED,
        created_at=naive_utc(now),
    )
    session.add(check)
    session.flush()
    text = (
        f"请点下面的链接，给{person.name}刷脸认证（15分钟内有效，只能用一次）。"
        f"打开后先看说明、点同意，再跟着提示做{len(check.actions)}个动作。{wording()['tips']}"
        + _in_the_app(person)
    )
    return Offer(check, (BotMessage(text=text, link=link_for(check, public_url)),))


def _no_reference(person: Person) -> list[BotMessage]:
    """人脸建模 explained, and the first photo review that makes it (where the region has one)."""
    text = wording()["no_reference"]
    if policy_for(person.region_code).accepts("photo_review"):
        text += wording()["first_photo"]
    return [BotMessage(text=text + _in_the_app(person), buttons=tuple(_others(person)))]


def _in_the_app(person: Person) -> str:
    apps = "”或“".join(policy_for(person.region_code).apps)
    return f"也可以打开“{apps}”刷脸认证。" if apps else ""


def _others(person: Person) -> list[Button]:
    policy = policy_for(person.region_code)
    buttons = [PHOTO] if policy.accepts("photo_review") else []
    if policy.accepts("home_visit"):
        buttons.append(VISIT)
    return buttons


def failures(session: Session, person_id: int) -> int:
    """Failed checks since the person's last passed one."""
    last_pass = session.scalar(
        select(func.max(FaceCheck.finished_at)).where(
            FaceCheck.person_id == person_id, FaceCheck.status == PASSED
        )
    )
    query = select(func.count()).where(FaceCheck.person_id == person_id, FaceCheck.status == FAILED)
    if last_pass is not None:
        query = query.where(FaceCheck.finished_at > last_pass)
    return session.scalar(query) or 0


# --- the page's side ------------------------------------------------------------------------


def open_check(session: Session, public_id: str, *, now: dt.datetime) -> FaceCheck:
    """The check a link names, while it may still be used."""
    check = session.scalar(select(FaceCheck).where(FaceCheck.public_id == public_id))
    if check is None:
        raise CheckUnavailable("unknown")
    if check.status not in (ISSUED, CONSENTED):
        raise CheckUnavailable("used")
    if naive_utc(now) - check.created_at > LINK_TTL:
        raise CheckUnavailable("expired")
    return check


def record_consent(session: Session, check: FaceCheck, *, now: dt.datetime) -> FaceConsent:
    """同意书: the person agreed to this wording's version, now."""
    consent = FaceConsent(
        person_id=check.person_id,
        account_id=check.account_id,
        check_id=check.id,
        wording_version=str(consent_text()["version"]),
        consented_at=naive_utc(now),
    )
    session.add(consent)
    check.status = CONSENTED
    session.flush()
    return consent


def accept_video(
    session: Session, public_id: str, data: bytes, video_dir: Path, *, now: dt.datetime
) -> tuple[FaceCheck, Path]:
    """Store the uploaded clip (0600, random name) and use the link up; the job checks it."""
    check = open_check(session, public_id, now=now)
    if check.status != CONSENTED:
        raise CheckUnavailable("no_consent")
    video_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = video_dir / f"{secrets.token_hex(16)}.video"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    check.status = UPLOADED
    check.uploaded_at = naive_utc(now)
    session.flush()
    return check, path


# --- the worker's side ----------------------------------------------------------------------


def run_check(runtime: Runtime, check_id: int, video: str) -> str:
    """Job: check the clip, act on the result, tell the account that asked; returns the status."""
    path = Path(video)
    try:
        result = _liveness(runtime, check_id, path)
    finally:
        if not runtime.config.get("FACE_KEEP_VIDEOS"):
            path.unlink(missing_ok=True)
    with runtime.database.session() as session:
        check = session.get(FaceCheck, check_id)
        person = session.get(Person, check.person_id)
        account = session.get(ChannelAccount, check.account_id)
        messages = _act_on(session, check, person, account, result, runtime.clock.now())
        account_id, status = check.account_id, check.status
    tell_account(runtime, account_id, messages)
    return status


def _liveness(runtime: Runtime, check_id: int, path: Path) -> liveness.LivenessResult:
    with runtime.database.session() as session:
        check = session.get(FaceCheck, check_id)
        reference = faces.reference_for(session, session.get(Person, check.person_id))
        asked = list(check.actions)
        encoding = list(reference.encoding) if reference else None
    try:
        frames = liveness.frames_from_video(path)
    except liveness.VideoRejected as rejected:
        return liveness.LivenessResult(False, "bad_video", [], detail=str(rejected))
    threshold = float(runtime.config.get("FACE_MATCH_THRESHOLD") or DEFAULT_THRESHOLD)
    return liveness.check_frames(frames, asked, encoding, threshold=threshold)


def _act_on(
    session: Session,
    check: FaceCheck,
    person: Person,
    account: ChannelAccount | None,
    result: liveness.LivenessResult,
    now: dt.datetime,
) -> list[BotMessage]:
    check.finished_at = naive_utc(now)
    check.evidence = result.evidence()
    if result.passed:
        try:
            outcome = record_certification(
                session,
                person,
                CertificationMethod.face,
                channel=account.channel if account else None,
                evidence={**result.evidence(), "face_check": check.public_id},
                at=now,
            )
        except CannotCertify as stopped:
            check.status, check.reason = FAILED, "stopped"
            return [BotMessage(text=str(stopped))]
        check.status = PASSED
        day = in_shanghai(now).date()
        return [BotMessage(text=wording()["passed"] + what_follows(person, day, outcome.resumed))]
    check.status, check.reason = FAILED, result.reason
    session.flush()
    return _failure_messages(session, person, result)


def _failure_messages(
    session: Session, person: Person, result: liveness.LivenessResult
) -> list[BotMessage]:
    if result.reason == "no_reference":
        return _no_reference(person)
    action = wording()["prompts"].get(result.detail, "")
    why = wording()["reasons"].get(result.reason, "").format(action=action.removeprefix("请"))
    lines = [f"这次刷脸没有通过：{why}", wording()["tips"]]
    count = failures(session, person.id)
    if count >= MAX_FAILURES:
        lines.append(wording()["after_failures"].format(count=count))
        return [BotMessage(text="\n".join(lines), buttons=(RETRY, *_others(person)))]
    return [BotMessage(text="\n".join(lines), buttons=(RETRY,))]
