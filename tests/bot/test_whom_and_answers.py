"""Whom a conversation is about, and answers that are not answers — through the REST channel,
on both engines (issue 9 items 4, 5, 7, 8, 9): typed answers at the '为谁认证？' buttons, the
relation in the user's own words, each rejected form answer saying what is wrong, home
visits for a named person or marked unverified, the window of the next certification, and
limits on identity checks that a new sender id does not reset."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from services.models import AuditLog, Binding, HomeVisitRequest, Person
from tests.bot import test_conversations as suite
from tests.bot.test_conversations import (
    Chat,
    buttons_of,
    ident,
    rasa_differs,
    text_of,
)
from tests.console.helpers import sign_in
from tests.support import make_staff

# the conversation suite's fixtures: both engines, the REST channel, one user
engine, app, chat = suite.engine, suite.app, suite.chat


def bindings(app) -> dict[str, str]:
    """person name → relation, for every binding in the database."""
    with app.extensions["db"].session() as session:
        rows = session.execute(
            select(Person.name, Binding.relation).join(Binding, Binding.person_id == Person.id)
        ).all()
    return dict(rows)


def console_page(app, path: str) -> str:
    """A page of the staff console as an administrator sees it."""
    with app.extensions["db"].session() as session:
        make_staff(session, "boss", role="admin", regions=["all"])
    client = app.test_client()
    sign_in(client, "boss")
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def bind_relative(chat, relation: str, person_no: str) -> None:
    name, id_number = ident(person_no)
    if "为谁认证" in text_of(chat.say("帮家人认证")):
        chat.say("添加家人")
    chat.say(relation)
    chat.say(name)
    assert name in text_of(chat.say(id_number))


# --------------------------------------------------------------------------- whom (item 4)


def test_a_name_and_id_typed_alone_are_not_assumed_to_be_the_users_own(app, chat):
    name, id_number = ident("DEMO0002")
    assert "本人" in buttons_of(chat.say(f"{name} {id_number}"))  # whose? asked, not assumed
    assert "认证方式" in text_of(chat.say("爸爸"))
    assert bindings(app) == {name: "爸爸"}

    other = Chat(chat.client)
    name, id_number = ident("DEMO0009")
    other.say(f"{name}，{id_number}")
    assert "认证" in text_of(other.say("本人"))
    assert bindings(app)[name] == "self"


def test_a_name_and_id_typed_at_the_who_buttons_adds_that_person_and_asks_the_relation(app, chat):
    bind_relative(chat, "妈妈", "DEMO0005")
    assert "为谁认证" in text_of(chat.say("我要认证"))
    name, id_number = ident("DEMO0006")
    asked = text_of(chat.say(f"{name} {id_number}"))
    assert "哪位家人" in asked  # the relation is asked, never assumed
    reply = text_of(chat.say("父亲"))
    assert name in reply and "为谁认证" not in reply
    assert bindings(app)[name] == "爸爸"  # 父亲, in the extractor's one word for it


def test_a_bound_persons_name_and_id_typed_at_the_who_buttons_picks_them(chat):
    bind_relative(chat, "妈妈", "DEMO0005")
    bind_relative(chat, "爸爸", "DEMO0007")
    assert "为谁认证" in text_of(chat.say("我要认证"))
    name, id_number = ident("DEMO0007")
    reply = text_of(chat.say(f"{name}{id_number}"))
    assert f"{name}（爸爸）" in reply and "为谁认证" not in reply


def test_my_mother_typed_at_the_who_buttons_is_the_bound_mother(chat):
    bind_relative(chat, "母亲", "DEMO0005")
    bind_relative(chat, "父亲", "DEMO0007")
    chat.say("我要认证")
    reply = text_of(chat.say("给我妈"))
    assert "李桂英" in reply and "刘福生" not in reply


def test_my_mother_not_yet_bound_is_asked_for_by_name_and_id(app, chat):
    bind_relative(chat, "父亲", "DEMO0007")
    chat.say("我要认证")
    assert "姓名" in text_of(chat.say("我妈"))
    name, id_number = ident("DEMO0012")
    chat.say(name)
    assert name in text_of(chat.say(id_number))
    assert bindings(app)[name] == "妈妈"


def test_a_relative_mentioned_in_a_question_is_not_bound_later_under_that_relation(app, chat):
    chat.say("我奶奶在国外怎么认证")
    name, id_number = ident("DEMO0002")
    chat.say("我要认证")
    chat.say(name)
    assert name in text_of(chat.say(id_number))
    assert bindings(app)[name] == "self"


def test_not_me_but_my_mother_certifies_the_mother(app, chat):
    assert "姓名" in text_of(chat.say("我要认证"))
    reply = text_of(chat.say("不是我，是给我妈认证"))
    assert "取消" not in reply and "姓名" in reply
    name, id_number = ident("DEMO0012")
    chat.say(name)
    assert f"{name}（妈妈）" in text_of(chat.say(id_number))
    assert bindings(app)[name] == "妈妈"


def test_i_am_xs_daughter_binds_x_as_the_mother_not_as_a_daughter(app, chat):
    name, id_number = ident("DEMO0012")  # 黄秀英, a woman by her ID number
    chat.say("帮家人认证")
    reply = text_of(chat.say(f"我是{name}的女儿"))
    assert "身份证" in reply
    assert name in text_of(chat.say(id_number))
    assert bindings(app)[name] == "母亲"


def test_i_am_xs_grandchild_is_asked_which_grandparent(app, chat):
    name, id_number = ident("DEMO0012")
    chat.say("帮家人认证")
    asked = text_of(chat.say(f"我是{name}的孙女"))
    assert "奶奶" in asked and "外婆" in asked
    chat.say("外婆")
    chat.say(name)
    chat.say(id_number)
    assert bindings(app)[name] == "外婆"


def test_the_fifth_person_typed_at_the_who_buttons_is_refused_with_the_limit(app, chat):
    for relation, person_no in (
        ("妈妈", "DEMO0005"),
        ("爸爸", "DEMO0002"),
        ("岳母", "DEMO0009"),
        ("奶奶", "DEMO0012"),
    ):
        bind_relative(chat, relation, person_no)
    chat.say("我要认证")
    name, id_number = ident("DEMO0013")
    reply = text_of(chat.say(f"{name} {id_number}"))
    assert "最多" in reply and "4位" in reply
    assert name not in bindings(app)


# --------------------------------------------------------------------------- answers (item 5)


def test_a_question_at_the_name_prompt_is_answered_and_the_name_asked_again(chat):
    chat.say("我要认证")
    reply = text_of(chat.say("写谁的名字啊"))
    assert "身份证上的姓名" in reply and "查无" not in reply and "没有查到" not in reply
    name, id_number = ident("DEMO0002")
    assert "身份证" in text_of(chat.say(name))
    assert "认证方式" in text_of(chat.say(id_number))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (lambda number: number[:17], "您输入了17位，身份证号码是18位"),
        (lambda number: number[:16], "您输入了16位，身份证号码是18位"),
        (lambda number: number[:6] + number[8:17], "15位的旧身份证"),
        (
            lambda number: number[:17] + ("1" if number[-1] != "1" else "2"),
            "校验位不对，请逐位核对",
        ),
        (lambda number: "13912345678", "手机号"),
    ],
    ids=["17-digits", "16-digits", "15-digits", "checksum", "mobile"],
)
def test_each_wrong_id_number_is_told_exactly_what_is_wrong(chat, typed, expected):
    name, id_number = ident("DEMO0002")
    chat.say("我要认证")
    chat.say(name)
    reply = text_of(chat.say(typed(id_number)))
    assert expected in reply and "身份证" in reply
    if expected != "15位的旧身份证":
        assert "旧身份证" not in reply
    assert "认证方式" in text_of(chat.say(id_number))


def test_a_wrong_checksum_next_to_a_name_given_on_its_own_is_named(chat):
    name, id_number = ident("DEMO0002")
    wrong = id_number[:17] + ("1" if id_number[-1] != "1" else "2")
    reply = text_of(chat.say(f"{name} {wrong}"))
    assert "校验位不对" in reply
    assert "哪位家人" in text_of(chat.say(id_number))  # the right number is kept; whose is it?
    assert "认证方式" in text_of(chat.say("本人"))


@rasa_differs(
    "DIET takes a bare name (谢观秀) for thanks and extracts no name, so the form asks again"
)
def test_a_phone_number_is_not_a_home_visit_reason(app, chat):
    start_visit_for(chat, "DEMO0011")
    chat.say("赣州市寻乌县长宁镇南桥路8号")
    chat.say("13912345678")
    reply = text_of(chat.say("13912345678"))
    assert "不是原因" in reply
    reply = text_of(chat.say("卧床不起"))
    assert re.search(r"SM\d{8}-\d{4}", reply)


@rasa_differs(
    "DIET takes a bare name (谢观秀) for thanks and extracts no name, so the form asks again"
)
def test_a_second_phone_number_does_not_silently_replace_the_first(app, chat):
    start_visit_for(chat, "DEMO0011")
    chat.say("赣州市寻乌县长宁镇南桥路8号")
    chat.say("13912345678")
    reply = text_of(chat.say("13800001111"))
    assert "139****5678" in reply and "138****1111" in reply and "再发一次" in reply
    chat.say("13800001111")
    reply = text_of(chat.say("卧床不起"))
    assert "138****1111" in reply
    with app.extensions["db"].session() as session:
        assert session.scalars(select(HomeVisitRequest.contact_phone)).one() == "13800001111"


# --------------------------------------------------------------------------- home visits (item 7)


def start_visit_for(chat, person_no: str) -> None:
    name, id_number = ident(person_no)
    asked = text_of(chat.say("老人瘫痪在床能上门认证吗"))
    assert "给谁" in asked and "姓名" in asked or "哪位家人" in asked
    chat.say("本人")
    chat.say(name)
    assert "地址" in text_of(chat.say(id_number))


@rasa_differs(
    "DIET takes a bare name (谢观秀) for thanks and extracts no name, so the form asks again"
)
def test_a_home_visit_asks_whose_visit_and_stores_that_person(app, chat):
    name, _id_number = ident("DEMO0011")
    start_visit_for(chat, "DEMO0011")
    chat.say("赣州市寻乌县长宁镇南桥路8号")
    chat.say("13912345678")
    reply = text_of(chat.say("卧床不起"))
    assert re.search(r"SM\d{8}-\d{4}", reply) and "未核实" not in reply
    with app.extensions["db"].session() as session:
        visit = session.scalars(select(HomeVisitRequest)).one()
        assert session.get(Person, visit.person_id).name == name


@rasa_differs(
    "DIET takes a bare name (谢观秀) for thanks and extracts no name, so the form asks again"
)
def test_a_bound_relatives_home_visit_is_theirs_without_asking_again(app, chat):
    bind_relative(chat, "妈妈", "DEMO0011")
    reply = text_of(chat.say("我妈瘫痪在床能上门认证吗"))
    assert "谢观秀" in reply and "地址" in reply


def test_a_home_visit_for_someone_unnamed_is_stored_unverified_for_staff(app, chat):
    asked = chat.say("老人瘫痪在床能上门认证吗")
    assert "说不清，先登记" in buttons_of(asked)
    assert "地址" in text_of(chat.say("说不清，先登记"))
    chat.say("太原市迎泽区桃园北路12号3单元")
    chat.say("13912345678")
    reply = text_of(chat.say("卧床不起"))
    assert re.search(r"SM\d{8}-\d{4}", reply) and "核实" in reply
    with app.extensions["db"].session() as session:
        assert session.scalars(select(HomeVisitRequest.person_id)).one() is None
    assert "未核实身份" in console_page(app, "/console/visits")


# --------------------------------------------------------------------------- dates (item 8)


def test_the_next_certification_is_given_as_a_window_from_and_until(chat):
    name, id_number = ident("DEMO0001")  # Shaanxi, certified today: next from 1 January
    reply = text_of(chat.say(f"我叫{name}身份证{id_number}我要认证"))
    assert "下次请在2027年1月1日至2027年12月1日之间认证" in reply
    status = text_of(chat.say("我认证过了没有"))
    assert "2027年1月1日至2027年12月1日" in status


# --------------------------------------------------------------------------- probing (item 9)


def test_after_a_first_miss_a_wrong_name_gets_no_hint_where_it_differs(client):
    _name, id_number = ident("DEMO0001")  # 王秀兰
    first = text_of(Chat(client).say(f"我叫王秀蓝 身份证号{id_number} 认证"))
    assert "第3个字" in first
    second = text_of(Chat(client).say(f"我叫王秀岚 身份证号{id_number} 认证"))
    assert "对不上" in second and "第" not in second and "字不同" not in second


def test_misses_on_one_id_number_are_limited_across_new_senders_and_logged(app, client):
    _name, id_number = ident("DEMO0002")  # 赵建国
    for guess in ("赵建华", "赵建民", "赵建军", "赵建新", "赵建平"):
        Chat(client).say(f"我叫{guess} 身份证号{id_number} 认证")
    name, _ = ident("DEMO0002")
    reply = text_of(Chat(client).say(f"我叫{name} 身份证号{id_number} 认证"))
    assert "次数太多" in reply and name not in reply and "认证方式" not in reply
    with app.extensions["db"].session() as session:
        blocked = session.scalars(
            select(AuditLog).where(AuditLog.action == "identity.probe_blocked")
        ).one()
        assert blocked.target_id == "6101**********0053"
        assert id_number not in str(blocked.detail)
    assert not bindings(app)
    audit_page = console_page(app, "/console/audit?action=identity.probe_blocked")
    assert "identity.probe_blocked" in audit_page and "6101**********0053" in audit_page
    assert id_number not in audit_page


def test_checks_of_one_account_are_limited(chat):
    for _ in range(10):
        chat.say("我叫王小明 身份证号110101194001010012 认证")
    reply = text_of(chat.say("我叫王小明 身份证号110101194001010012 认证"))
    assert "次数太多" in reply and "一小时" in reply


@rasa_differs(
    "DIET takes a bare name (谢观秀) for thanks and extracts no name, so the form asks again"
)
def test_a_reason_that_sounds_negative_is_a_reason_and_one_beside_a_phone_is_kept(app, chat):
    start_visit_for(chat, "DEMO0011")
    chat.say("赣州市寻乌县长宁镇南桥路8号")
    chat.say("13912345678")
    reply = text_of(chat.say("走不了路"))  # not "好的，已经取消"
    assert re.search(r"SM\d{8}-\d{4}", reply)
    assert "谢观秀" in text_of(chat.say("再申请一次上门认证"))  # bound now: not asked again
    chat.say("赣州市寻乌县长宁镇南桥路8号")
    chat.say("13912345678")
    reply = text_of(chat.say("她瘫痪了 电话13912345678"))
    assert re.search(r"SM\d{8}-\d{4}", reply)
    with app.extensions["db"].session() as session:
        reasons = set(session.scalars(select(HomeVisitRequest.reason)))
    assert reasons == {"走不了路", "她瘫痪了"}


@rasa_differs("DIET answers 身份证号是多少位 with the FAQ 查无此人 instead of the form")
def test_a_question_about_the_number_at_the_name_prompt_is_answered(chat):
    chat.say("我要认证")
    reply = text_of(chat.say("身份证号是多少位"))
    assert "18位" in reply and "姓名" in reply
    name, id_number = ident("DEMO0002")
    chat.say(name)
    assert "认证方式" in text_of(chat.say(id_number))
