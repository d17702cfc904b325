"""The console over HTTP: sign-in, CSRF, roles and regions, photos, decisions, leaks."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services.accounts import account_for, bind_person
from services.handoffs import request_handoff
from services.home_visits import request_home_visit
from services.models import AuditLog, Person, PhotoReview
from services.outbound import Recipient
from services.reviews import checklist_for
from tests.console.helpers import csrf_token, post, sign_in
from tests.support import id_number, make_person, make_review, make_staff

PAGES = [
    "/console/reviews",
    "/console/handoffs",
    "/console/visits",
    "/console/people",
    "/console/reports",
    "/console/audit",
    "/console/staff",
]


@pytest.fixture
def roster(db_session, console_app):
    """Two regions, a reviewer for Xi'an, a photo from each region sent through WeChat."""
    photo_dir = console_app.config["PHOTO_DIR"]
    with db_session() as session:
        make_staff(session, "li", regions=["61"])
        make_staff(session, "boss", role="admin", regions=["all"])
        xian = make_person(session, name="王秀兰", seq=3, region_code="610102")
        nanning = make_person(session, name="韦秀英", seq=4, region_code="450103")
        account = account_for(session, "wechat", "o-wang-daughter")
        bind_person(session, account, xian, "妈妈")
        mine = make_review(session, photo_dir, xian, account)
        theirs = make_review(session, photo_dir, nanning)
        return {"mine": mine.public_id, "theirs": theirs.public_id, "person": xian.public_id}


def audit_actions(db_session) -> list[str]:
    with db_session() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_every_page_needs_a_signed_in_user(console_app, roster):
    client = console_app.test_client()
    for path in [*PAGES, f"/console/reviews/{roster['mine']}", f"/console/photos/{roster['mine']}"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/login")


def test_forms_without_or_with_a_forged_csrf_token_are_refused(console_app, roster):
    client = console_app.test_client()
    missing = client.post("/console/login", data={"username": "li", "password": "x"})
    assert missing.status_code == 400 and "CSRF" in missing.get_data(as_text=True)
    csrf_token(client)
    forged = client.post(
        "/console/login", data={"username": "li", "password": "x", "csrf_token": "forged"}
    )
    assert forged.status_code == 400
    assert sign_in(client).status_code == 302
    decision = client.post(
        f"/console/reviews/{roster['mine']}/decision", data={"decision": "approve"}
    )
    assert decision.status_code == 400


def test_three_wrong_passwords_lock_the_account(console_app, roster, db_session):
    client = console_app.test_client()
    first = sign_in(client, password="wrong")
    assert first.status_code == 401 and "再错2次" in first.get_data(as_text=True)
    sign_in(client, password="wrong")
    third = sign_in(client, password="wrong")
    assert "已锁定" in third.get_data(as_text=True)
    refused = sign_in(client)  # the right password, too late
    assert refused.status_code == 401 and "已锁定" in refused.get_data(as_text=True)
    assert "staff.locked" in audit_actions(db_session)
    # an admin unlocks from the staff page
    admin = console_app.test_client()
    sign_in(admin, "boss")
    assert "锁定至" in admin.get("/console/staff").get_data(as_text=True)
    post(admin, "/console/staff/li/unlock", token_from="/console/staff")
    assert sign_in(client).status_code == 302


def test_session_cookie_flags_and_no_store(console_app, roster):
    client = console_app.test_client()
    response = sign_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    for path in PAGES[:5]:
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    secure = console_app.test_client()
    token = csrf_token(secure, "https://localhost/console/login")
    over_https = secure.post(
        "https://localhost/console/login",
        data={"username": "li", "password": "correct horse battery", "csrf_token": token},
    )
    assert "Secure" in over_https.headers["Set-Cookie"]
    behind_nginx = console_app.test_client()
    token = csrf_token(behind_nginx)
    proxied = behind_nginx.post(
        "/console/login",
        data={"username": "li", "password": "correct horse battery", "csrf_token": token},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" in proxied.headers["Set-Cookie"]


def test_idle_sessions_end(console_app, roster, clock):
    client = console_app.test_client()
    sign_in(client)
    assert client.get("/console/reviews").status_code == 200
    clock.advance(minutes=29)
    assert client.get("/console/reviews").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/console/reviews")
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert client.get("/console/reviews").status_code == 302  # signed out for good


def test_a_reviewer_is_not_an_admin(console_app, roster, db_session):
    client = console_app.test_client()
    sign_in(client)
    assert client.get("/console/audit").status_code == 403
    assert client.get("/console/staff").status_code == 403
    assert client.get("/console/reports?region=45").status_code == 403
    assert audit_actions(db_session).count("access.denied") == 3


def test_queue_and_photos_only_for_the_reviewers_region(console_app, roster, db_session):
    client = console_app.test_client()
    sign_in(client)
    queue = client.get("/console/reviews").get_data(as_text=True)
    assert "王秀兰" in queue and "韦秀英" not in queue
    assert client.get(f"/console/reviews/{roster['theirs']}").status_code == 404
    assert client.get(f"/console/photos/{roster['theirs']}").status_code == 404
    assert client.get("/console/photos/not-a-real-id").status_code == 404
    photo = client.get(f"/console/photos/{roster['mine']}")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.headers["Cache-Control"] == "no-store"
    assert photo.data.startswith(b"\xff\xd8")
    assert "photo.viewed" in audit_actions(db_session)


def test_approve_through_the_form_tells_the_relative_once(console_app, roster, db_session):
    client = console_app.test_client()
    sign_in(client)
    page = client.get(f"/console/reviews/{roster['mine']}").get_data(as_text=True)
    assert "6101**********" in page and "手持身份证" in page
    form = {"decision": "approve", "checklist": [c.code for c in checklist_for("610102")]}
    path = f"/console/reviews/{roster['mine']}/decision"
    token = csrf_token(client, f"/console/reviews/{roster['mine']}")
    first = client.post(path, data={**form, "csrf_token": token})
    assert first.status_code == 303
    again = client.post(path, data={**form, "csrf_token": token}, follow_redirects=True)
    assert "您的操作没有生效" in again.get_data(as_text=True)
    sent = console_app.extensions["runtime"].extensions["collected"]
    told = sent.texts_for(Recipient("wechat", "o-wang-daughter"))
    assert len(told) == 1 and "审核通过" in told[0]
    with db_session() as session:
        review = session.scalars(
            select(PhotoReview).where(PhotoReview.public_id == roster["mine"])
        ).one()
        assert review.status == "approved" and review.reviewer == "li"


def test_reject_through_the_form_needs_a_reason(console_app, roster):
    client = console_app.test_client()
    sign_in(client)
    path = f"/console/reviews/{roster['mine']}/decision"
    vague = post(
        client, path, {"decision": "reject"}, token_from=f"/console/reviews/{roster['mine']}"
    )
    assert vague.status_code == 303
    assert "请选择不通过的原因" in client.get(f"/console/reviews/{roster['mine']}").get_data(
        as_text=True
    )
    post(client, path, {"decision": "reject", "reason": "face_covered"})
    told = (
        console_app.extensions["runtime"]
        .extensions["collected"]
        .texts_for(Recipient("wechat", "o-wang-daughter"))
    )
    assert "脸被挡住" in told[0]


def test_no_id_number_in_urls_pages_or_logs(console_app, roster, caplog):
    caplog.set_level(logging.DEBUG)
    client = console_app.test_client()
    sign_in(client, "boss")
    full = id_number(3)
    seen = []
    for path in [
        "/console/reviews",
        f"/console/reviews/{roster['mine']}",
        "/console/people?q=王",
        f"/console/people/{roster['person']}",
        f"/console/people?q={full[-4:]}",
        "/console/audit",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        assert full not in body, path
        seen += re.findall(r'href="([^"]+)"', body)
    assert "王秀兰" in client.get(f"/console/people?q={full[-4:]}").get_data(as_text=True)
    assert all(full not in link and full[-8:] not in link for link in seen)
    searched = post(client, "/console/people", {"q": full}, token_from="/console/people")
    refused = searched.get_data(as_text=True)
    assert searched.status_code == 200 and "后4到6位" in refused and full not in refused
    assert 'method="post"' in client.get("/console/people").get_data(as_text=True)
    assert full not in caplog.text


def test_handoff_take_answer_release_over_http(console_app, roster, db_session):
    with db_session() as session:
        handoff = request_handoff(
            session,
            "rest:visitor-1",
            "rest",
            "我要人工",
            region_code="610102",
            now=console_app.extensions["runtime"].clock.utcnow(),
        )
        public_id = handoff.public_id
    client = console_app.test_client()
    sign_in(client)
    assert "我要人工" in client.get("/console/handoffs").get_data(as_text=True)
    post(client, f"/console/handoffs/{public_id}/take", token_from="/console/handoffs")
    post(client, f"/console/handoffs/{public_id}/reply", {"text": "您好，请讲"})
    other = console_app.test_client()
    sign_in(other, "boss")
    post(other, f"/console/handoffs/{public_id}/reply", {"text": "插话"})  # not theirs
    post(client, f"/console/handoffs/{public_id}/release")
    told = (
        console_app.extensions["runtime"]
        .extensions["collected"]
        .texts_for(Recipient("rest", "visitor-1"))
    )
    assert told == [
        "【人工客服】您好，请讲",
        "本次人工服务已结束，谢谢您的耐心。之后有问题可以继续问我。",
    ]
    assert {"handoff.taken", "handoff.answered", "handoff.released"} <= set(
        audit_actions(db_session)
    )


def test_dashboard_and_export(console_app, roster, db_session):
    client = console_app.test_client()
    sign_in(client)
    page = client.get("/console/reports").get_data(as_text=True)
    assert "<svg" in page and "http" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    response = client.get("/console/reports/roster.xlsx?region=61&start=2026-01-01&end=2026-12-31")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet["A1"].value == "领取社会保险待遇资格核查确认花名册"
    assert (
        client.get("/console/reports/roster.xlsx?region=61&start=bad&end=2026-12-31").status_code
        == 400
    )
    assert "report.exported" in audit_actions(db_session)


def test_visit_workflow_over_http(console_app, roster, db_session, clock):
    with db_session() as session:
        account = account_for(session, "wechat", "o-wang-daughter")
        xian = session.scalars(select(Person).where(Person.public_id == roster["person"])).one()
        visit = request_home_visit(
            session,
            person=xian,
            account=account,
            address="长乐路1号",
            contact_phone="13912345678",
            reason="卧床",
            now=clock.utcnow(),
        )
        public_id = visit.public_id
    client = console_app.test_client()
    sign_in(client)
    assert visit.reference in client.get("/console/visits").get_data(as_text=True)
    day = (clock.today() + dt.timedelta(days=2)).isoformat()
    post(
        client, f"/console/visits/{public_id}/schedule", {"day": day}, token_from="/console/visits"
    )
    post(client, f"/console/visits/{public_id}/outcome", {"outcome": "alive", "note": "本人健在"})
    page = client.get(f"/console/visits/{public_id}").get_data(as_text=True)
    assert "已办结" in page and "健在" in page
    told = (
        console_app.extensions["runtime"]
        .extensions["collected"]
        .texts_for(Recipient("wechat", "o-wang-daughter"))
    )
    assert "上门" in told[0] and "认证通过" in told[1]


def test_the_review_screen_shows_the_prechecks_in_chinese(console_app, roster, db_session, clock):
    """The worker's pre-checks of the photo (a real run: faces, OCR, sharpness), as the
    reviewer reads them: informing, never deciding."""
    from services.photo_prechecks import precheck_review

    with db_session() as session:
        review = session.scalars(
            select(PhotoReview).where(PhotoReview.public_id == roster["mine"])
        ).one()
        review.submitted_at = clock.utcnow()  # filed this morning, by the app's clock
        review_id = review.id
    precheck_review(console_app.extensions["runtime"], review_id)
    client = console_app.test_client()
    sign_in(client)
    page = client.get(f"/console/reviews/{roster['mine']}").get_data(as_text=True)
    prechecks = page[page.index('class="prechecks"') :]
    for line in ["人脸 1 张", "与参照人脸距离：无参照人脸", "报纸日期 2026-11-20（15天内）"]:
        assert f"<li>{line}</li>" in prechecks
    assert re.search(r"<li>清晰度 \d+（清晰）</li>", prechecks)
    assert "预检结果仅供参考，由审核员决定" in prechecks
    assert "approve" in page  # the decision is still the reviewer's
