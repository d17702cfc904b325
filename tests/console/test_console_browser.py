"""The console in a real browser (Debian's headless Chromium, Playwright) with WeChat's stand-in.

A retiree's photo arrives through the WeChat channel (the stand-in serves the media, the app's
own job downloads it and the dialogue files it for review). A reviewer signs in on an office-PC
sized window, reviews with the keyboard, and the stand-in receives the customer-service message
the decision sends. Screenshots of the queue and the review screen go to /tmp/console-shots/.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from werkzeug.serving import make_server

from services.accounts import account_for, bind_person
from services.handoffs import request_handoff
from services.models import Person, PhotoReview
from tests.channels.wechat_standin import (
    TEST_APPID,
    TEST_SECRET,
    TEST_TEMPLATE_ID,
    TEST_TOKEN,
    WeChatAPIStandIn,
    WeChatPlatform,
    wait_for,
    wait_for_threads,
)
from tests.support import (
    PASSWORD,
    empty_tables,
    fixture_bytes,
    make_person,
    make_review,
    make_staff,
)

SHOTS = Path("/tmp/console-shots")
OFFICE_PC = {"viewport": {"width": 1440, "height": 900}, "locale": "zh-CN"}
TIMEOUT_MS = 20_000
MORNING = dt.datetime(2026, 12, 1, 0, 30)  # 08:30 in Beijing


@pytest.fixture
def standin():
    with WeChatAPIStandIn() as server:
        yield server


@pytest.fixture
def wechat_app(postgres_url, postgres_database, standin, tmp_path):
    """The whole app on PostgreSQL with the WeChat channel pointed at the stand-in."""
    from pension import create_app

    app = create_app(
        {
            "DATABASE_URL": postgres_url,
            "AUTO_MIGRATE": False,
            "LOAD_DEMO_ROSTER": False,
            "REDIS_URL": None,  # in-process stores and the thread-pool job queue
            "SECRET_KEY": "browser-test",
            "PHOTO_DIR": str(tmp_path / "photos"),
            "WECHAT_TOKEN": TEST_TOKEN,
            "WECHAT_APPID": TEST_APPID,
            "WECHAT_SECRET": TEST_SECRET,
            "WECHAT_TEMPLATE_ID": TEST_TEMPLATE_ID,
            "WECHAT_API_BASE_URL": standin.base_url,
            "WECHAT_REPLY_WAIT": 3.0,
            "STAFF_HOURS": "1-7 00:00-23:59",
        }
    )
    yield app
    wait_for_threads()
    app.extensions["jobs"].pool.shutdown(wait=True)
    app.extensions["db"].dispose()
    empty_tables(postgres_database)


@pytest.fixture
def server(wechat_app):
    http = make_server("127.0.0.1", 0, wechat_app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="console-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(browser, server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=server, accept_downloads=True, **OFFICE_PC)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    yield page
    context.close()


@pytest.fixture
def retiree(wechat_app):
    """王秀兰 of Xunwu county, Jiangxi (the seed whose region takes photos for review), bound to
    her own WeChat account; a reviewer for Jiangxi."""
    openid = "o" + uuid.uuid4().hex[:27]
    with wechat_app.extensions["db"].session() as session:
        make_staff(session, "li", regions=["36"])
        person = make_person(session, name="王秀兰", seq=3, region_code="360734")
        bind_person(session, account_for(session, "wechat", openid), person, "self")
    return openid


def send_photo(app, standin, openid: str, name: str = "faces/photo_with_paper.jpg") -> None:
    """The retiree sends a photo in WeChat; wait until it is filed for review."""
    platform = WeChatPlatform()
    media_id = standin.add_media(fixture_bytes(name))
    client = app.test_client()
    with app.extensions["db"].session() as session:
        before = len(session.scalars(select(PhotoReview.id)).all())
    assert platform.post(client, platform.image(openid, media_id)).get_data(as_text=True) == (
        "success"
    )

    def filed() -> bool:
        with app.extensions["db"].session() as session:
            return len(session.scalars(select(PhotoReview.id)).all()) > before

    assert wait_for(filed, timeout=20), (
        f"not filed for review; the bot said {standin.sent_texts(openid)}"
    )
    assert wait_for(lambda: any("照片收到了" in t for t in standin.sent_texts(openid)), 10)


def sign_in(page, username: str = "li", password: str = PASSWORD) -> None:
    page.goto("/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_approve_a_wechat_photo_and_wechat_receives_the_message(page, wechat_app, standin, retiree):
    from playwright.sync_api import expect

    send_photo(wechat_app, standin, retiree)
    sign_in(page)
    expect(page.get_by_role("heading", name=re.compile("待审核照片"))).to_contain_text("1")
    row = page.locator("table.list tbody tr").first
    expect(row).to_contain_text("王秀兰")
    expect(row).to_contain_text("6101**********")

    page.get_by_role("link", name=re.compile("开始审核")).click()
    expect(page.get_by_role("heading", name=re.compile("王秀兰"))).to_be_visible()
    photo = page.locator("#photo")
    expect(photo).to_be_visible()
    assert page.evaluate("() => document.getElementById('photo').naturalWidth") == 910
    page.keyboard.press("+")  # zoom and rotate change only the view
    page.keyboard.press("]")
    assert "rotate(90deg)" in photo.evaluate("e => e.style.transform")
    page.keyboard.press("0")
    page.keyboard.press("y")  # tick every checklist item
    expect(page.locator("input[name=checklist]:checked")).to_have_count(5)
    page.keyboard.press("a")
    expect(page.locator(".flash.ok")).to_contain_text("已通过")
    expect(page.get_by_text("没有待审核的照片了")).to_be_visible()
    assert wait_for(lambda: any("审核通过" in t for t in standin.sent_texts(retiree)), 15), (
        standin.sent_texts(retiree)
    )


def test_reject_with_a_reason_and_the_reason_reaches_the_user(page, wechat_app, standin, retiree):
    from playwright.sync_api import expect

    send_photo(wechat_app, standin, retiree)
    sign_in(page)
    page.goto("/console/reviews/next")
    page.keyboard.press("r")
    expect(page.locator("#reasons")).to_be_visible()
    page.keyboard.press("3")  # 没拿身份证
    expect(page.locator("input[name=reason][value=no_id_card]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator(".flash.ok")).to_contain_text("未通过")
    assert wait_for(lambda: any("没有看到身份证" in t for t in standin.sent_texts(retiree)), 15)


def test_three_wrong_passwords_lock_the_account(page, retiree):
    from playwright.sync_api import expect

    for _ in range(3):
        sign_in(page, password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("已锁定")
    sign_in(page)  # the right password no longer opens it
    expect(page.get_by_role("alert")).to_contain_text("已锁定")
    expect(page).to_have_url(re.compile("/console/login"))


def test_take_a_handed_off_conversation_answer_and_release(page, wechat_app, standin, retiree):
    from playwright.sync_api import expect

    platform = WeChatPlatform()
    client = wechat_app.test_client()
    asked = platform.reply(platform.post(client, platform.text(retiree, "转人工")))["Content"]
    assert "已为您转接人工服务" in asked
    sign_in(page)
    page.goto("/console/handoffs")
    page.get_by_role("link", name="打开").first.click()
    expect(page.locator("#transcript")).to_contain_text("转人工")
    page.get_by_role("button", name="接手这个会话").click()
    platform.post(client, platform.text(retiree, "我的认证怎么一直不通过"))
    page.reload()
    expect(page.locator("#transcript")).to_contain_text("我的认证怎么一直不通过")
    page.get_by_label(re.compile("回复用户")).fill("您好，我是社保中心的小李，我帮您查一下。")
    page.get_by_role("button", name="发送").click()
    assert wait_for(
        lambda: (
            "【人工客服】您好，我是社保中心的小李，我帮您查一下。" in standin.sent_texts(retiree)
        ),
        10,
    )
    page.get_by_role("button", name=re.compile("交还机器人")).click()
    expect(page.locator(".flash.ok")).to_contain_text("已交还机器人")
    assert wait_for(lambda: any("人工服务已结束" in t for t in standin.sent_texts(retiree)), 10)
    again = platform.reply(platform.post(client, platform.text(retiree, "你好")))["Content"]
    assert again  # the bot answers again


def test_export_the_roster_sheet(page, wechat_app, retiree):
    from playwright.sync_api import expect

    sign_in(page)
    page.goto("/console/reports")
    expect(page.locator("svg.chart")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="导出 XLSX").click()
    data = Path(download.value.path()).read_bytes()
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A1"].value == "领取社会保险待遇资格核查确认花名册"
    assert sheet.cell(row=4, column=5).value == "身份证号码"


def test_a_staff_reply_outside_the_48_hour_window_goes_as_a_template(wechat_app, standin, retiree):
    """WeChat refuses customer-service messages 48 hours after the user last wrote (45015):
    the staff reply then reaches the user as a template message."""
    from tests.console.helpers import post
    from tests.console.helpers import sign_in as sign_in_http

    with wechat_app.extensions["db"].session() as session:
        handoff = request_handoff(
            session, f"wechat:{retiree}", "wechat", "人工", region_code="360734"
        )
        public_id = handoff.public_id
    client = wechat_app.test_client()
    assert sign_in_http(client).status_code == 302
    post(client, f"/console/handoffs/{public_id}/take", token_from="/console/handoffs")
    standin.fail_next(45015, endpoint="message/custom/send")
    post(client, f"/console/handoffs/{public_id}/reply", {"text": "您好，您的认证已经办好了"})
    assert wait_for(lambda: len(standin.templates) == 1, 10), standin.calls
    assert standin.templates[0]["touser"] == retiree
    assert "您好" in str(standin.templates[0]["data"])


def test_screens_of_the_queue_and_the_review(page, wechat_app, retiree):
    """A morning's queue (one photo held by a colleague) and a review screen with a reference
    photo and pre-check results: what a reviewer sees, saved for the closing note."""
    from playwright.sync_api import expect

    from services.photos import store_review_photo

    database = wechat_app.extensions["db"]
    photo_dir = wechat_app.config["PHOTO_DIR"]
    with database.session() as session:
        wang = session.scalars(select(Person).where(Person.name == "王秀兰")).one()
        earlier = store_review_photo(
            session, photo_dir, fixture_bytes("faces/obama_small.jpg"), person=wang, account=None
        )
        earlier.status, earlier.reviewer = "approved", "li"
        earlier.reviewed_at = earlier.submitted_at - dt.timedelta(days=365)
        first = make_review(session, photo_dir, wang, submitted_at=MORNING)
        first.prechecks = {"faces": 1, "newspaper_date": "2026-11-20", "newspaper_recent": "是"}
        for seq, name in enumerate(["李桂兰", "张建国", "刘淑珍", "陈德福"], start=11):
            other = make_person(session, name=name, seq=seq, region_code="360734")
            review = make_review(
                session, photo_dir, other, submitted_at=MORNING + dt.timedelta(minutes=7 * seq)
            )
            if seq == 12:
                review.claimed_by, review.claimed_at = (
                    "zhao",
                    dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
        make_staff(session, "zhao", regions=["36"])
    sign_in(page)
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("王秀兰")  # oldest first
    expect(rows.nth(2)).to_contain_text("zhao 审核中")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "queue.png"), full_page=True)

    page.get_by_role("link", name=re.compile("开始审核")).click()
    expect(page.locator(".reference img")).to_be_visible()
    assert page.evaluate("() => document.querySelector('.reference img').naturalWidth") == 320
    expect(page.locator(".prechecks")).to_contain_text("2026-11-20")
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("3")
    expect(page.locator("input[name=checklist]:checked")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "review.png"))
