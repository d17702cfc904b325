"""Whom a WeChat conversation is about, and answers that are not answers (issue 9 items 4, 5,
7, 8, 9): signed messages → /wechat → the embedded engine over the demo roster → the passive
reply, buttons shown as numbered lines."""

from __future__ import annotations

import re

from sqlalchemy import select
from wechat_fixtures import WeChatUser

from services.models import AuditLog, Binding, HomeVisitRequest, Person
from tests.support import ident

pytest_plugins = ["wechat_fixtures"]


def relations(app) -> dict[str, str]:
    with app.extensions["db"].session() as session:
        rows = session.execute(
            select(Person.name, Binding.relation).join(Binding, Binding.person_id == Person.id)
        ).all()
    return dict(rows)


def test_a_typed_name_and_id_at_the_numbered_who_list_adds_the_person_and_asks_the_relation(
    roster_app, platform, standin
):
    user = WeChatUser(roster_app, platform, standin)
    mother, mother_id = ident("DEMO0005")
    user.say("帮家人认证")
    user.say("妈妈")
    user.say(mother)
    assert mother in user.say(mother_id)
    assert "为谁认证" in user.say("我要认证")
    name, id_number = ident("DEMO0007")
    asked = user.say(f"{name} {id_number}")
    assert "哪位家人" in asked and "1. 本人" in asked
    assert name in user.say("1")  # the numbered 本人
    assert relations(roster_app)[mother] == "妈妈" and relations(roster_app)[name] == "self"


def test_not_me_but_my_mother_on_wechat(roster_app, platform, standin):
    user = WeChatUser(roster_app, platform, standin)
    user.say("我要认证")
    assert "取消" not in user.say("不是我，是给我妈认证")
    name, id_number = ident("DEMO0012")
    user.say(name)
    assert f"{name}（妈妈）" in user.say(id_number)


def test_seventeen_digits_are_called_seventeen_on_wechat(roster_app, platform, standin):
    user = WeChatUser(roster_app, platform, standin)
    name, id_number = ident("DEMO0002")
    user.say("我要认证")
    user.say(name)
    reply = user.say(id_number[:17])
    assert "您输入了17位，身份证号码是18位" in reply and "旧身份证" not in reply


def test_a_home_visit_nobody_can_name_is_filed_unverified_on_wechat(roster_app, platform, standin):
    user = WeChatUser(roster_app, platform, standin)
    assert "说不清" in user.say("我爸瘫痪在床能上门认证吗")
    assert "地址" in user.say("不知道他身份证号")
    user.say("太原市迎泽区桃园北路12号3单元")
    user.say("13912345678")
    assert re.search(r"SM\d{8}-\d{4}", user.say("卧床不起"))
    with roster_app.extensions["db"].session() as session:
        visit = session.scalars(
            select(HomeVisitRequest).order_by(HomeVisitRequest.id.desc()).limit(1)
        ).one()
        assert visit.person_id is None and visit.address.startswith("太原市")


def test_the_next_certification_window_on_wechat(roster_app, platform, standin):
    user = WeChatUser(roster_app, platform, standin)
    name, id_number = ident("DEMO0001")
    assert "2027年1月1日至2027年12月1日" in user.say(f"我叫{name}身份证{id_number}我要认证")


def test_misses_on_one_id_number_from_new_openids_are_limited_and_logged(
    roster_app, platform, standin
):
    _name, id_number = ident("DEMO0004")  # 周志强
    for guess in ("周志刚", "周志明", "周志国", "周志华", "周志勇"):
        WeChatUser(roster_app, platform, standin).say(f"我叫{guess} 身份证号{id_number} 认证")
    reply = WeChatUser(roster_app, platform, standin).say(f"我叫周志强 身份证号{id_number} 认证")
    assert "次数太多" in reply and "周志强" not in reply
    with roster_app.extensions["db"].session() as session:
        [blocked] = session.scalars(
            select(AuditLog).where(
                AuditLog.action == "identity.probe_blocked",
                AuditLog.target_id == "6101**********009X",
            )
        ).all()
        assert blocked.actor.startswith("wechat#") and id_number not in str(blocked.detail)
    assert "周志强" not in relations(roster_app)
