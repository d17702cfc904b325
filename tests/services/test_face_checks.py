"""刷脸认证 in the chat, end to end below the web page: the offer, consent, the upload, the
worker's check with real faces, and what the person is told. Real PostgreSQL, real dlib."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from pension import cli
from services import face_checks, faces
from services.accounts import account_for, bind_person
from services.models import (
    CertificationRecord,
    FaceCheck,
    FaceConsent,
    PaymentStatus,
    Person,
    ReferenceFace,
)
from services.outbound import Recipient
from tests import face_videos as fv
from tests.support import frozen_clock, make_person, make_runtime

NOW = frozen_clock().utcnow()
JIANGXI = "360734"  # methods: face, photo_review


@pytest.fixture(scope="module")
def turning_clip(tmp_path_factory):
    """Kit Harington turning his head to his left."""
    path = tmp_path_factory.mktemp("clips") / "turn.mp4"
    return fv.write_mp4(path, fv.head_turn("kit_harington2.jpg")).read_bytes()


@pytest.fixture
def runtime(db, tmp_path):
    runtime = make_runtime(db)
    runtime.config = {"FACE_VIDEO_DIR": str(tmp_path / "videos"), "FACE_MATCH_THRESHOLD": 0.6}
    return runtime


def kit(session, *, reference: str | None = "kit_harington_johnsnow.jpg", **person):
    someone = make_person(session, "王建国", **person)
    account = account_for(session, "web", "kit-phone")
    bind_person(session, account, someone, "self")
    if reference:
        encoding = faces.encode_face(faces.load_image(fv.FACES / reference))
        faces.save_reference(session, someone, encoding, "roster_photo")
    return someone, account


def upload(runtime, person_id, clip, actions):
    """The chat's offer, the page's consent and upload, then the worker's job."""
    with runtime.database.session() as session:
        person = session.get(Person, person_id)
        account = account_for(session, "web", "kit-phone")
        offer = face_checks.offer_check(session, person, account, now=NOW, actions=actions)
        face_checks.record_consent(session, offer.check, now=NOW)
        check, path = face_checks.accept_video(
            session, offer.check.public_id, clip, Path(runtime.config["FACE_VIDEO_DIR"]), now=NOW
        )
        check_id = check.id
    status = face_checks.run_check(runtime, check_id, str(path))
    return status, path


def told(runtime):
    collected = runtime.extensions["collected"]
    return collected.texts_for(Recipient("web", "kit-phone"))


def test_a_pass_certifies_resumes_payment_and_says_so(runtime, turning_clip):
    with runtime.database.session() as session:
        person, _ = kit(
            session, status=PaymentStatus.suspended, last_certified_on=dt.date(2025, 6, 1)
        )
        person_id = person.id
    status, path = upload(runtime, person_id, turning_clip, ["turn_left"])
    assert status == "passed"
    assert not path.exists()  # the clip is deleted after the check
    with runtime.database.session() as session:
        record = session.scalar(select(CertificationRecord))
        assert record.method == "face"
        assert record.evidence["actions"] == ["turn_left"]
        assert record.evidence["distance"] < 0.6
        assert session.get(Person, person_id).status == PaymentStatus.normal
    text = told(runtime)[-1]
    assert "刷脸认证通过" in text and "恢复发放" in text


def test_failures_say_why_and_after_three_offer_other_ways(runtime, turning_clip):
    with runtime.database.session() as session:
        person, _ = kit(session, region_code=JIANGXI)
        person_id = person.id
    for _ in range(face_checks.MAX_FAILURES):
        status, _ = upload(runtime, person_id, turning_clip, ["turn_right"])
        assert status == "failed"
    texts = told(runtime)
    assert "没有看到您按提示做的动作（慢慢向右转头）" in texts[0]
    assert "光线明亮" in texts[0]  # the seeds' tips
    assert "拍照认证" not in texts[0]
    assert "已经试了3次" in texts[-1] and "拍照认证" in texts[-1]
    with runtime.database.session() as session:
        assert session.scalar(select(CertificationRecord)) is None


def test_someone_else_fails_the_match(runtime, turning_clip):
    with runtime.database.session() as session:
        person, _ = kit(session, reference="biden.jpg")
        person_id = person.id
    status, _ = upload(runtime, person_id, turning_clip, ["turn_left"])
    assert status == "failed"
    assert "不太像" in told(runtime)[-1]
    with runtime.database.session() as session:
        assert session.scalar(select(FaceCheck)).reason == "not_same_person"


def test_no_reference_face_explains_and_offers_a_first_photo_review(db):
    with db.session() as session:
        person, account = kit(session, reference=None, region_code=JIANGXI)
        offer = face_checks.offer_check(session, person, account, now=NOW)
    assert offer.check is None
    (message,) = offer.messages
    assert "人脸建模" in message.text
    assert [b.title for b in message.buttons] == ["拍照认证"]


def test_the_link_is_single_use_and_lasts_fifteen_minutes(db, tmp_path):
    with db.session() as session:
        person, account = kit(session, reference="kit_harington_johnsnow.jpg")
        offer = face_checks.offer_check(session, person, account, now=NOW)
        public_id = offer.check.public_id
        assert offer.messages[0].link == f"/face/{public_id}"
        assert 2 <= len(offer.check.actions) <= 3
        with pytest.raises(face_checks.CheckUnavailable) as late:
            face_checks.open_check(session, public_id, now=NOW + dt.timedelta(minutes=16))
        assert late.value.why == "expired"
        with pytest.raises(face_checks.CheckUnavailable) as early:
            face_checks.accept_video(session, public_id, b"x" * 2000, tmp_path, now=NOW)
        assert early.value.why == "no_consent"  # no face is processed before consent
        face_checks.record_consent(session, offer.check, now=NOW)
        face_checks.accept_video(session, public_id, b"x" * 2000, tmp_path, now=NOW)
        with pytest.raises(face_checks.CheckUnavailable) as used:
            face_checks.open_check(session, public_id, now=NOW)
        assert used.value.why == "used"
        consent = session.scalar(select(FaceConsent))
        assert consent.wording_version == face_checks.consent_text()["version"]
        assert consent.consented_at == NOW


def test_a_video_that_is_not_one_fails_in_plain_words(runtime):
    with runtime.database.session() as session:
        person, _ = kit(session)
        person_id = person.id
    status, _ = upload(runtime, person_id, b"not a video" * 500, ["blink", "turn_left"])
    assert status == "failed"
    assert "打不开" in told(runtime)[-1]


def test_import_reference_faces_reports_files_to_check(postgres_url, db, tmp_path, monkeypatch):
    with db.session() as session:
        for seq in (1, 2, 3):
            make_person(session, seq=seq)
    for name, photo in {
        "P0001.jpg": "obama.jpg",
        "P0002.jpg": "two_people.jpg",
        "P0003.jpg": "no_face_suit.jpg",
        "P9999.jpg": "biden.jpg",
    }.items():
        (tmp_path / name).write_bytes((fv.FACES / photo).read_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    monkeypatch.setenv("DATABASE_URL", postgres_url)

    result = CliRunner().invoke(cli.main, ["import-reference-faces", str(tmp_path)])

    assert result.exit_code == 1, result.output
    assert "导入参照人脸 1 张" in result.output
    assert "没有找到人脸（1）：P0003.jpg" in result.output
    assert "有多张人脸（1）：P0002.jpg" in result.output
    assert "名册里没有这个人员编号（1）：P9999.jpg" in result.output
    with db.session() as session:
        (reference,) = session.scalars(select(ReferenceFace)).all()
        assert reference.source == "roster_photo" and len(reference.encoding) == 128


def test_an_approved_review_photo_becomes_the_reference_face(runtime, tmp_path):
    from services import reviews
    from tests.support import make_review, make_staff

    photo_dir = tmp_path / "photos"
    runtime.config = {**runtime.config, "PHOTO_DIR": str(photo_dir)}
    with runtime.database.session() as session:
        person, account = kit(session, reference=None, region_code=JIANGXI)
        review = make_review(session, photo_dir, person, account)
        staff = make_staff(session, regions=("36",))
        items = [item.code for item in reviews.checklist_for(JIANGXI)]
        reviews.decide(session, staff, review.public_id, approve=True, checklist=items, now=NOW)
        review_id, person_id = review.id, person.id
    reference = faces.reference_from_review(runtime, review_id)
    assert reference is not None and reference.source == "photo_review"
    with runtime.database.session() as session:
        assert faces.reference_for(session, session.get(Person, person_id)) is not None
    assert faces.reference_from_review(runtime, review_id) is None  # one already: kept
