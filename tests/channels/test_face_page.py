"""The face page /face/<link> the chat sends: consent first, then the clip, the result in the chat.

The whole app on SQLite (tests/channels/conftest.py), real dlib in the job, real Chromium for
the page: once through the file-upload fallback, once with Chromium's fake camera playing a
.y4m made at test time from the fixture faces.
"""

from __future__ import annotations

import io
import itertools
import re
import uuid

import pytest
from sqlalchemy import select
from stdnum.cn import ric

from services import face_checks, faces
from services.accounts import account_for, bind_person
from services.models import CertificationRecord, FaceCheck, FaceConsent, Person
from tests import face_videos as fv
from tests.support import CHROMIUM_ARGS, find_chromium, make_person

TIMEOUT_MS = 30_000
# What the test videos show (a frontal face, then turned to his left, then to his right);
# the check's random actions are set to these (the page reads them from the check).
SHOWN = ["turn_left", "turn_right"]
SERIALS = itertools.count(301)  # ID numbers nobody else in the session's roster has


def obama_turning() -> list:
    turned_right = fv.photo("obama2.jpg")
    return [fv.photo("obama.jpg")] * 3 + [fv.mirrored(turned_right)] * 3 + [turned_right] * 3


def new_person(app, *, reference: bool = True) -> Person:
    """A roster person of Shaanxi, due, with a reference face from another photo of him."""
    runtime = app.extensions["runtime"]
    serial = next(SERIALS)
    body = f"61010219520315{serial:03d}"  # born 1952-03-15 in Xi'an Xincheng, as make_person
    with runtime.database.session() as session:
        person = make_person(
            session,
            "王建国",
            person_no=f"F{serial:04d}",
            id_number=body + ric.calc_check_digit(body + "0"),
            gender="M" if serial % 2 else "F",
        )
        if reference:
            encoding = faces.encode_face(faces.load_image(fv.FACES / "obama3.jpg"))
            faces.save_reference(session, person, encoding, "roster_photo")
        session.expunge(person)
    return person


def offered_link(app, person: Person, sender: str) -> str:
    """What the chat's 刷脸认证 creates, with the actions the test videos show."""
    runtime = app.extensions["runtime"]
    with runtime.database.session() as session:
        account = account_for(session, "web", sender)
        bind_person(session, account, session.get(Person, person.id), "self")
        offer = face_checks.offer_check(
            session,
            session.get(Person, person.id),
            account,
            now=runtime.clock.utcnow(),
            actions=SHOWN,
        )
        return offer.messages[0].link


def token_of(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


# --- the HTTP surface -------------------------------------------------------------------------


def test_consent_comes_first_and_is_recorded(client, chat_app):
    link = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for words in ("收集什么", "为什么", "保存多久", "拍照认证", "上门认证"):
        assert words in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"

    answer = client.post(f"{link}/consent", data={"token": token_of(html), "answer": "agree"})
    assert answer.status_code == 303
    check_page = client.get(link).get_data(as_text=True)
    assert "慢慢向左转头" in check_page and 'capture="user"' in check_page
    with chat_app.extensions["runtime"].database.session() as session:
        check = session.scalar(select(FaceCheck).where(FaceCheck.public_id == link.split("/")[-1]))
        consent = session.scalar(select(FaceConsent).where(FaceConsent.check_id == check.id))
        assert consent.wording_version == face_checks.consent_text()["version"]


def test_declining_stores_nothing_and_points_to_the_other_ways(client, chat_app):
    link = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    token = token_of(client.get(link).get_data(as_text=True))
    answer = client.post(f"{link}/consent", data={"token": token, "answer": "decline"})
    assert "拍照认证" in answer.get_data(as_text=True)
    assert "收集什么" in client.get(link).get_data(as_text=True)  # still asks, nothing recorded


def test_a_post_without_the_pages_token_or_from_elsewhere_is_refused(client, chat_app):
    link = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    token = token_of(client.get(link).get_data(as_text=True))
    assert client.post(f"{link}/consent", data={"answer": "agree"}).status_code == 400
    other = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    assert (
        client.post(f"{other}/consent", data={"token": token, "answer": "agree"}).status_code == 400
    )
    cross_site = client.post(
        f"{link}/consent",
        data={"token": token, "answer": "agree"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 400


def test_unknown_and_used_links_say_so(client, chat_app):
    assert client.get("/face/not-a-real-link").status_code == 410
    link = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    token = token_of(client.get(link).get_data(as_text=True))
    client.post(f"{link}/consent", data={"token": token, "answer": "agree"})
    empty = client.post(f"{link}/video", data={"token": token})
    assert empty.status_code == 400  # no clip: a plain 4xx, the link still works
    assert client.get(link).status_code == 200


# --- in Chromium ----------------------------------------------------------------------------


def chat_until_face_link(page, app) -> tuple[Person, str]:
    """Open the chat, say who you are, tap 刷脸认证: the bot's link."""
    from playwright.sync_api import expect

    person = new_person(app)
    page.goto("/chat")
    expect(page.locator(".choice", has_text="常见问题")).to_be_visible()
    page.locator("#text").fill(f"我叫{person.name}身份证{id_number_of(app, person)}我要认证")
    page.locator("#text").press("Enter")
    page.locator(".choice", has_text="刷脸认证").last.click()
    link = page.locator(".msg.bot a", has_text="点这里打开").last
    expect(link).to_be_visible()
    return person, link.get_attribute("href")


def id_number_of(app, person: Person) -> str:
    with app.extensions["runtime"].database.session() as session:
        return session.get(Person, person.id).id_number


def show_the_test_actions(app, href: str) -> None:
    with app.extensions["runtime"].database.session() as session:
        check = session.scalar(select(FaceCheck).where(FaceCheck.public_id == href.split("/")[-1]))
        check.actions = SHOWN


def consent_in(page, href: str) -> None:
    from playwright.sync_api import expect

    page.goto(href)
    expect(page.locator("#consent-title")).to_be_visible()
    page.locator("#agree").click()
    expect(page.locator("#instruction")).to_be_visible()


def expect_result_in_chat(page, app, person: Person) -> None:
    from playwright.sync_api import expect

    page.bring_to_front()
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    passed = page.locator(".msg.bot", has_text="刷脸认证通过")
    for _ in range(10):  # the job takes a few seconds; the page checks its inbox when shown
        if passed.count():
            break
        page.wait_for_timeout(3000)
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(passed).to_be_visible()
    with app.extensions["runtime"].database.session() as session:
        record = session.scalar(
            select(CertificationRecord).where(CertificationRecord.person_id == person.id)
        )
        assert record.method == "face" and record.evidence["actions"] == SHOWN


@pytest.fixture
def phone(browser, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(
        base_url=live_server,
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def test_in_the_browser_consent_then_a_recorded_clip_then_the_result_in_the_chat(
    phone, chat_app, tmp_path
):
    chat = phone.new_page()
    person, href = chat_until_face_link(chat, chat_app)
    show_the_test_actions(chat_app, href)
    face = phone.new_page()
    consent_in(face, href)
    clip = fv.write_mp4(tmp_path / "clip.mp4", obama_turning())
    face.locator("#video-file").set_input_files(str(clip))
    face.locator("#send-file").click()
    assert "正在核验" in face.locator("#message").inner_text()
    expect_result_in_chat(chat, chat_app, person)


def test_with_the_camera_the_page_records_one_action_at_a_time(
    browser, chat_app, live_server, tmp_path
):
    """Chromium's fake camera plays a .y4m of the same turning face; MediaRecorder records it."""
    from playwright.sync_api import expect

    # ~2 s frontal, 3 s turned left, 4 s turned right at 10 fps: the page's own timing.
    frames = obama_turning()
    y4m = fv.write_y4m(
        tmp_path / "camera.y4m", [frames[0]] * 20 + [frames[3]] * 30 + [frames[6]] * 40
    )
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    # A browser of its own: the camera file is a launch argument (same Playwright driver).
    chromium = browser.browser_type.launch(executable_path=find_chromium(), args=args)
    try:
        context = chromium.new_context(base_url=live_server, locale="zh-CN")
        context.grant_permissions(["camera"], origin=live_server)
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        chat = context.new_page()
        person, href = chat_until_face_link(chat, chat_app)
        show_the_test_actions(chat_app, href)
        face = context.new_page()
        consent_in(face, href)
        face.locator("#start").click()
        expect(face.locator("#steps li.now")).to_have_text("请慢慢向左转头")
        expect(face.locator("#instruction")).to_contain_text("正在核验", timeout=40_000)
        expect_result_in_chat(chat, chat_app, person)
    finally:
        chromium.close()


def test_an_oversize_clip_is_refused_before_it_is_stored(client, chat_app, monkeypatch):
    monkeypatch.setitem(chat_app.config, "FACE_VIDEO_MAX_BYTES", 50_000)
    link = offered_link(chat_app, new_person(chat_app), f"web-{uuid.uuid4().hex}")
    token = token_of(client.get(link).get_data(as_text=True))
    client.post(f"{link}/consent", data={"token": token, "answer": "agree"})
    big = {"token": token, "video": (io.BytesIO(b"\0" * 60_000), "clip.mp4")}
    assert client.post(f"{link}/video", data=big).status_code == 413
    assert client.get(link).status_code == 200  # the link was not used up
