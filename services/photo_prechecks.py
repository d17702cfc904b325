"""审核照片的自动预检：人脸、与参照人脸的距离、报纸日期、身份证号、清晰度。

Computed by a worker job (:func:`precheck_review`) as soon as a photo review is filed, and
stored in ``PhotoReview.prechecks`` for the console's review screen. They inform the reviewer
and never decide alone: nothing here approves or rejects a photo.

What is stored (JSON, every value may be None when the check could not tell)::

    faces               how many faces the HOG detector found (exactly one person?)
    face_distance       distance of that one face to the reference face (人脸建模); None
                        without a reference or without exactly one face
    has_reference       whether the person has a reference face at all
    newspaper_date      the date printed on the newspaper, read by OCR, "YYYY-MM-DD"
    newspaper_recent    that date within ``newspaper_max_age_days`` (the region's rule,
                        services/data/regions.yaml) before the upload day (the app's clock)
    newspaper_max_age_days  that rule, as it was applied
    id_number           the ID number read from the card, masked (never the full number)
    id_number_matches   whether it is the person's
    sharpness           variance of the Laplacian of the grey picture at 1024 px

OCR is RapidOCR on onnxruntime: its Chinese detection and recognition models ship inside the
wheel, so nothing is downloaded at run time and it works offline.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import faces
from services.clock import in_shanghai
from services.idcard import InvalidIdNumber, mask_id_number, parse_id_number
from services.models import Person, PhotoReview
from services.photos import open_stored_photo
from services.regions import policy_for
from services.runtime import Runtime

__all__ = [
    "CHECKS",
    "PrecheckInput",
    "compute_prechecks",
    "precheck_lines",
    "precheck_review",
    "read_text",
    "reviews_to_precheck",
]

log = logging.getLogger(__name__)

SIMILAR_BELOW = 0.5  # same person measured 0.33–0.41 here, different people 0.79–1.01
DIFFERENT_ABOVE = 0.6  # face_recognition's own threshold; between the two: unclear
BLURRED_BELOW = 20.0  # sharp phone photos measure 80–900 at 1024 px, a 3 px blur under 10
SHARPNESS_SIDE = 1024
OCR_SIDE = 1600  # px: a masthead's date stays readable, the detector stays fast

_CHINESE_DATE = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_NUMERIC_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-./](\d{1,2})[-./](\d{1,2})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9])(\d{17}[\dXx])(?![0-9Xx])")


@dataclass(frozen=True)
class PrecheckInput:
    """What the checks look at: the stored picture, whose it should be, when it came."""

    image: Image.Image
    uploaded_on: dt.date
    newspaper_max_age_days: int
    id_number: str | None = None  # the person's
    reference: list[float] | None = None  # the person's reference face encoding


def precheck_review(runtime: Runtime, review_id: int) -> dict | None:
    """Job: compute the pre-checks of one photo review and store them on the row."""
    with runtime.database.session() as session:
        review = session.get(PhotoReview, review_id)
        if review is None:
            log.warning("photo review #%s is gone; no pre-checks", review_id)
            return None
        person = session.get(Person, review.person_id) if review.person_id else None
        reference = faces.reference_for(session, person) if person else None
        try:
            image = open_stored_photo(Path(runtime.config["PHOTO_DIR"]), review)
        except (OSError, ValueError) as error:
            log.warning("photo review #%s: photo unreadable (%s)", review_id, type(error).__name__)
            return None
        checks = PrecheckInput(
            image=image,
            uploaded_on=in_shanghai(review.submitted_at.replace(tzinfo=dt.UTC)).date(),
            newspaper_max_age_days=_newspaper_max_age(person),
            id_number=person.id_number if person else None,
            reference=list(reference.encoding) if reference else None,
        )
        review.prechecks = compute_prechecks(checks)
        log.info("photo review #%s pre-checked", review_id)
        return review.prechecks


def reviews_to_precheck(session: Session) -> list[int]:
    """Pending reviews with no pre-checks yet, oldest first (``pension precheck-photos``)."""
    query = (
        select(PhotoReview.id)
        .where(PhotoReview.status == "pending", PhotoReview.prechecks.is_(None))
        .order_by(PhotoReview.submitted_at)
    )
    return list(session.scalars(query))


def _newspaper_max_age(person: Person | None) -> int:
    policy = policy_for(person.region_code if person else None)
    return int(policy.extra["newspaper_max_age_days"])


def compute_prechecks(checks: PrecheckInput) -> dict:
    """Every pre-check; one that fails is logged and left None, the others still count."""
    result: dict = {}
    for check in CHECKS:
        try:
            result.update(check(checks))
        except Exception:  # noqa: BLE001 — a pre-check must never lose the review
            log.exception("pre-check %s failed", check.__name__)
    return result


# --------------------------------------------------------------------------- faces


def face_checks(checks: PrecheckInput) -> dict:
    picture = faces.rgb_array(checks.image)
    found = faces.face_locations(picture)
    distance = None
    if checks.reference is not None and len(found) == 1:
        encoding = faces.encode_face(picture, found)
        distance = round(faces.face_distance(encoding, checks.reference), 3)
    return {
        "faces": len(found),
        "has_reference": checks.reference is not None,
        "face_distance": distance,
    }


# --------------------------------------------------------------------------- text (OCR)


@functools.cache
def _ocr_engine():
    # Loaded once per worker process (~2 s): the web app never needs it.
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def read_text(image: Image.Image) -> list[str]:
    """The lines of text RapidOCR reads in the picture, top to bottom."""
    picture = image.convert("RGB")
    if max(picture.size) > OCR_SIDE:
        picture = picture.copy()
        picture.thumbnail((OCR_SIDE, OCR_SIDE), Image.Resampling.LANCZOS)
    found, _ = _ocr_engine()(np.asarray(picture)[:, :, ::-1])  # it wants BGR, like OpenCV
    return [text for _box, text, _score in found or []]


def text_checks(checks: PrecheckInput) -> dict:
    lines = read_text(checks.image)
    paper = newspaper_date(lines, checks.uploaded_on)
    card = _id_number_on_card(lines)
    age = None if paper is None else (checks.uploaded_on - paper).days
    return {
        "newspaper_date": paper.isoformat() if paper else None,
        "newspaper_recent": None if age is None else 0 <= age <= checks.newspaper_max_age_days,
        "newspaper_max_age_days": checks.newspaper_max_age_days,
        "id_number": mask_id_number(card) if card else None,
        "id_number_matches": (
            None if card is None or not checks.id_number else card == checks.id_number.upper()
        ),
    }


def newspaper_date(lines: list[str], uploaded_on: dt.date) -> dt.date | None:
    """The date printed on the newspaper: a 年月日 date first (mastheads print it so; the ID
    card's validity uses dots), the latest one not after the upload day, birth dates aside."""
    text = "\n".join(lines)
    for pattern in (_CHINESE_DATE, _NUMERIC_DATE):
        dates = [d for d in _dates(pattern, text) if d <= uploaded_on + dt.timedelta(days=1)]
        recent = [d for d in dates if (uploaded_on - d).days <= 366 * 5]
        if recent:
            return max(recent)
    return None


def _dates(pattern: re.Pattern, text: str) -> list[dt.date]:
    found = []
    for year, month, day in pattern.findall(text):
        try:
            found.append(dt.date(int(year), int(month), int(day)))
        except ValueError:
            continue  # 2026年13月40日: a misread
    return found


def _id_number_on_card(lines: list[str]) -> str | None:
    """The first valid 18-character ID number in the text (check digit right), upper-case X."""
    compact = re.sub(r"\s+", "", "".join(lines))
    for candidate in _ID_NUMBER.findall(compact):
        try:
            return parse_id_number(candidate).number
        except InvalidIdNumber:
            continue
    return None


# --------------------------------------------------------------------------- sharpness


def sharpness_check(checks: PrecheckInput) -> dict:
    return {"sharpness": round(sharpness(checks.image), 1)}


def sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian of the grey picture at :data:`SHARPNESS_SIDE` px (blur: low)."""
    grey = image.convert("L")
    if max(grey.size) > SHARPNESS_SIDE:
        grey = grey.copy()
        grey.thumbnail((SHARPNESS_SIDE, SHARPNESS_SIDE), Image.Resampling.LANCZOS)
    a = np.asarray(grey, dtype=np.float32)
    laplacian = a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] - 4 * a[1:-1, 1:-1]
    return float(laplacian.var())


CHECKS: tuple[Callable[[PrecheckInput], dict], ...] = (face_checks, text_checks, sharpness_check)


# --------------------------------------------------------------------------- the console


def precheck_lines(prechecks: dict | None) -> list[str]:
    """The pre-checks as the reviewer reads them, in Chinese, one line each."""
    if not prechecks:
        return []
    lines = (describe(prechecks) for describe in _DESCRIPTIONS)
    return [line for line in lines if line]


def _faces_line(p: dict) -> str | None:
    count = p.get("faces")
    if not isinstance(count, int):
        return None
    if count == 1:
        return "人脸 1 张"
    return f"人脸 {count} 张（应为本人一人）" if count else "人脸 0 张（未找到人脸）"


def _distance_line(p: dict) -> str | None:
    distance = p.get("face_distance")
    if p.get("has_reference") is False:
        return "与参照人脸距离：无参照人脸"
    if not isinstance(distance, int | float):
        return None if "face_distance" not in p else "与参照人脸距离：未比对（须恰好一张人脸）"
    if distance < SIMILAR_BELOW:
        verdict = "相似"
    elif distance > DIFFERENT_ABOVE:
        verdict = "不像同一人"
    else:
        verdict = "难以判断"
    return f"与参照人脸距离 {distance:.2f}（{verdict}）"


def _newspaper_line(p: dict) -> str | None:
    if "newspaper_date" not in p:
        return None
    date = p.get("newspaper_date")
    if not date:
        return "报纸日期：未识别"
    recent, days = p.get("newspaper_recent"), p.get("newspaper_max_age_days")
    if recent is True:
        return f"报纸日期 {date}（{days}天内）" if days else f"报纸日期 {date}（在期限内）"
    if recent is False:
        return f"报纸日期 {date}（超过{days}天）" if days else f"报纸日期 {date}（已过期限）"
    return f"报纸日期 {date}"


def _id_number_line(p: dict) -> str | None:
    if "id_number" not in p and "id_number_matches" not in p:
        return None
    number = p.get("id_number")
    if not number:
        return "身份证号：未识别"
    matches = p.get("id_number_matches")
    verdict = {True: "与本人一致", False: "与本人不一致"}.get(matches, "无法核对")
    return f"身份证号 {mask_id_number(number)}（{verdict}）"


def _sharpness_line(p: dict) -> str | None:
    value = p.get("sharpness")
    if not isinstance(value, int | float):
        return None
    return f"清晰度 {value:.0f}（{'可能模糊' if value < BLURRED_BELOW else '清晰'}）"


_DESCRIPTIONS: tuple[Callable[[dict], str | None], ...] = (
    _faces_line,
    _distance_line,
    _newspaper_line,
    _id_number_line,
    _sharpness_line,
)
