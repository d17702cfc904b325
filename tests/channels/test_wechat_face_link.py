"""刷脸认证 on WeChat: the link to the face page is one a phone can open (PUBLIC_BASE_URL)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from stdnum.cn import ric
from wechat_fixtures import WeChatUser

from services import faces
from tests.support import FACES, frozen_clock, make_person

pytest_plugins = ["wechat_fixtures"]


@pytest.fixture
def face_app(wx_make_app):
    return wx_make_app(
        CLOCK=frozen_clock(), WECHAT_REPLY_WAIT=4.0, PUBLIC_BASE_URL="https://rz.example.cn/"
    )


def due_person_with_a_reference_face(app) -> tuple[str, str]:
    """A Shaanxi pensioner last certified in 2025 (due now) whose 人脸建模 is done."""
    body = "61010219520315771"
    id_number = body + ric.calc_check_digit(body + "0")  # the digit over the first 17
    with app.extensions["db"].session() as session:
        person = make_person(
            session,
            "马秀珍",
            person_no="FL0001",
            id_number=id_number,
            last_certified_on=dt.date(2025, 12, 31),
        )
        encoding = faces.encode_face(faces.load_image(FACES / "obama.jpg"))
        faces.save_reference(session, person, encoding, "roster_photo")
    return "马秀珍", id_number


def test_the_face_page_link_on_wechat_is_a_full_address(face_app, platform, standin):
    name, id_number = due_person_with_a_reference_face(face_app)
    user = WeChatUser(face_app, platform, standin)
    offered = user.say(f"我叫{name}身份证{id_number}我要认证")
    assert "刷脸认证" in offered, offered
    reply = user.say("刷脸认证")
    assert re.search(r"https://rz\.example\.cn/face/[A-Za-z0-9_-]{16,}", reply), reply
