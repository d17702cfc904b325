"""Pre-checks of review photos on real pictures: RapidOCR reading the newspaper's date and the
ID number on a card, face_recognition counting faces and measuring the distance to the
reference face, the sharpness — stored by the worker job, shown to the reviewer in Chinese."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from sqlalchemy import select

from services import faces
from services.models import PhotoReview
from services.photo_prechecks import (
    PrecheckInput,
    compute_prechecks,
    newspaper_date,
    precheck_lines,
    precheck_review,
    read_text,
    reviews_to_precheck,
)
from services.photos import store_review_photo
from tests.support import FACES, TODAY, make_person, make_runtime

PAPER = FACES / "photo_with_paper.jpg"


def picture(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


def with_id_card(image: Image.Image, number: str) -> Image.Image:
    """The photo with a card held up: a white card and its 18-digit number in large print."""
    card = image.copy()
    draw = ImageDraw.Draw(card)
    width, height = card.size
    box = (width // 20, height * 3 // 4, width * 19 // 20, height * 3 // 4 + 110)
    draw.rectangle(box, fill="white", outline="black", width=3)
    font = ImageFont.load_default(size=56)
    draw.text((box[0] + 30, box[1] + 25), number, fill="black", font=font)
    return card


def jpeg(image: Image.Image) -> bytes:
    output = io.BytesIO()
    image.save(output, "JPEG", quality=92)
    return output.getvalue()


def checks_of(image: Image.Image, **given) -> dict:
    values = dict(image=image, uploaded_on=TODAY, newspaper_max_age_days=15) | given
    return compute_prechecks(PrecheckInput(**values))


@pytest.fixture(scope="module")
def reference() -> list[float]:
    return list(faces.encode_face(faces.load_image(FACES / "obama.jpg")))


# --------------------------------------------------------------------------- OCR


@pytest.mark.parametrize("name", ["date_noto.png", "photo_with_paper.jpg"])
def test_ocr_reads_the_newspapers_date_exactly(name):
    lines = read_text(picture(name))
    assert any("2026年11月20日" in line for line in lines)
    assert newspaper_date(lines, TODAY) == dt.date(2026, 11, 20)


def test_ocr_works_without_any_network(tmp_path):
    """RapidOCR's models are inside the wheel: in a network namespace of its own (no interface
    but a down loopback), with an empty home folder, the date is still read."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a process without network")
    code = (
        "from PIL import Image; from services.photo_prechecks import read_text; "
        f"print('|'.join(read_text(Image.open({str(FACES / 'date_noto.png')!r}))))"
    )
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": "."},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2026年11月20日" in run.stdout


def test_the_newspaper_date_is_the_masthead_not_a_birth_date_nor_the_cards_validity():
    lines = [
        "出生1950年1月1日",
        "人民日报",
        "2026年11月20日星期五",
        "有效期限2016.05.12-2036.05.12",
    ]
    assert newspaper_date(lines, TODAY) == dt.date(2026, 11, 20)
    assert newspaper_date(["有效期限2024.05.12-2044.05.12"], TODAY) == dt.date(2024, 5, 12)
    assert newspaper_date(["有效期限2016.05.12-2036.05.12"], TODAY) is None  # years old
    assert newspaper_date(["2026年13月40日", "无日期"], TODAY) is None
    assert newspaper_date(["2026年12月30日"], TODAY) is None  # after the upload: a misread


# --------------------------------------------------------------------------- faces


@pytest.mark.parametrize(
    ("name", "count"),
    [("two_people.jpg", 2), ("no_face_suit.jpg", 0), ("no_face_bodies.jpg", 0)],
)
def test_faces_are_counted(name, count, reference):
    result = checks_of(picture(name), reference=reference)
    assert result["faces"] == count
    assert result["face_distance"] is None  # not exactly one person: nothing to compare
    assert precheck_lines(result)[0].startswith(f"人脸 {count} 张（")


def test_the_same_person_is_near_the_reference_another_is_far(reference):
    same = checks_of(picture("obama2.jpg"), reference=reference)
    other = checks_of(picture("biden.jpg"), reference=reference)
    assert same["faces"] == other["faces"] == 1
    assert same["face_distance"] < 0.5 < 0.6 < other["face_distance"]
    assert any(line.endswith("（相似）") for line in precheck_lines(same))
    assert any(line.endswith("（不像同一人）") for line in precheck_lines(other))


# --------------------------------------------------------------------------- sharpness


def test_a_blurred_photo_is_flagged():
    sharp = checks_of(picture("obama.jpg"))["sharpness"]
    blurred = checks_of(picture("obama.jpg").filter(ImageFilter.GaussianBlur(4)))
    assert blurred["sharpness"] < 20 < sharp
    assert any("可能模糊" in line for line in precheck_lines(blurred))


# --------------------------------------------------------------------------- the job


def test_the_job_stores_every_precheck_and_never_the_full_id_number(db, tmp_path, caplog):
    runtime = make_runtime(db)
    runtime.config = {"PHOTO_DIR": str(tmp_path)}
    with db.session() as session:
        person = make_person(session, region_code="360734")  # Jiangxi: photos reviewed
        faces.save_reference(
            session,
            person,
            faces.encode_face(faces.load_image(FACES / "obama.jpg")),
            "roster_photo",
        )
        number = person.id_number
        photo = jpeg(with_id_card(picture("photo_with_paper.jpg"), number))
        review = store_review_photo(
            session, tmp_path, photo, person=person, account=None, now=dt.datetime(2026, 12, 1, 2)
        )
    with caplog.at_level(logging.DEBUG):
        stored = precheck_review(runtime, review.id)
    with db.session() as session:
        assert session.get(PhotoReview, review.id).prechecks == stored
        assert reviews_to_precheck(session) == []
    assert stored["faces"] == 1 and stored["face_distance"] < 0.2  # the reference's own photo
    assert (stored["newspaper_date"], stored["newspaper_recent"]) == ("2026-11-20", True)
    assert stored["id_number_matches"] is True
    assert stored["id_number"] == number[:4] + "*" * 10 + number[-4:]
    assert number not in str(stored) and number not in caplog.text
    lines = precheck_lines(stored)
    assert lines[:3] == [
        "人脸 1 张",
        f"与参照人脸距离 {stored['face_distance']:.2f}（相似）",
        "报纸日期 2026-11-20（15天内）",
    ]
    assert lines[3] == f"身份证号 {stored['id_number']}（与本人一致）"


def test_another_persons_card_an_old_paper_and_no_reference(db, tmp_path):
    with db.session() as session:
        person = make_person(session, region_code="360734")
        stranger = make_person(session, name="李桂兰", seq=7)
        image = with_id_card(picture("photo_with_paper.jpg"), stranger.id_number)
        result = checks_of(
            image, uploaded_on=dt.date(2026, 12, 20), id_number=person.id_number, reference=None
        )
    assert result["newspaper_recent"] is False and result["id_number_matches"] is False
    assert result["face_distance"] is None and result["has_reference"] is False
    lines = precheck_lines(result)
    assert "与参照人脸距离：无参照人脸" in lines
    assert "报纸日期 2026-11-20（超过15天）" in lines
    assert any(line.endswith("（与本人不一致）") for line in lines)


def test_reviews_waiting_for_prechecks_are_the_pending_ones_without(db, tmp_path):
    with db.session() as session:
        waiting = store_review_photo(
            session, tmp_path, PAPER.read_bytes(), person=None, account=None
        )
        done = store_review_photo(session, tmp_path, PAPER.read_bytes(), person=None, account=None)
        done.prechecks = {"faces": 1}
        decided = store_review_photo(
            session, tmp_path, PAPER.read_bytes(), person=None, account=None
        )
        decided.status = "rejected"
    with db.session() as session:
        assert reviews_to_precheck(session) == [waiting.id]
        assert session.scalars(select(PhotoReview.id)).all()


def test_lines_of_older_or_partial_results():
    assert precheck_lines(None) == [] and precheck_lines({}) == []
    assert precheck_lines(
        {"faces": 1, "newspaper_date": "2026-11-20", "newspaper_recent": "是"}
    ) == [
        "人脸 1 张",
        "报纸日期 2026-11-20",
    ]
    assert precheck_lines({"newspaper_date": None, "id_number": None}) == [
        "报纸日期：未识别",
        "身份证号：未识别",
    ]


def test_pension_precheck_photos_fills_in_what_no_job_computed(db, postgres_url, tmp_path):
    """A Rasa action server has no job queue: the command catches up on its photos."""
    from click.testing import CliRunner

    from pension.cli import main as cli

    with db.session() as session:
        person = make_person(session, region_code="360734")
        review = store_review_photo(
            session, tmp_path, PAPER.read_bytes(), person=person, account=None
        )
    env = {
        "DATABASE_URL": postgres_url,
        "AUTO_MIGRATE": "0",
        "LOAD_DEMO_ROSTER": "0",
        "REDIS_URL": "",
        "PHOTO_DIR": str(tmp_path),
        "CLOCK": "2026-12-01 10:00",
    }
    result = CliRunner().invoke(cli, ["precheck-photos"], env=env)
    assert result.exit_code == 0, result.output
    assert "预检完成：1 张照片" in result.output
    with db.session() as session:
        prechecks = session.get(PhotoReview, review.id).prechecks
    assert prechecks["faces"] == 1 and prechecks["newspaper_date"] == "2026-11-20"
    again = CliRunner().invoke(cli, ["precheck-photos"], env=env)
    assert "预检完成：0 张照片" in again.output
