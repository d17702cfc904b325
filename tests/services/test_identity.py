"""The “查无此人” diagnosis: what to tell someone whose name or ID number does not match."""

from __future__ import annotations

import pytest

from services.identity import DifferenceKind, Outcome, check_identity, normalise_name
from tests.support import id_number, make_person

REGISTERED = "王秀兰"


@pytest.fixture
def roster(db):
    with db.session() as session:
        make_person(session, REGISTERED, 2)
        make_person(session, "买买提·艾力", 3)
    return db


def test_works_on_sqlite_too(sqlite_db):
    with sqlite_db.session() as session:
        make_person(session, REGISTERED, 2)
    assert check(sqlite_db, "王秀蘭", id_number(2)).matched
    assert check(sqlite_db, "王秀蓝", id_number(2)).difference_text() == "第3个字读音相同但字不同"


def check(db, name, number):
    with db.session() as session:
        return check_identity(session, name, number)


def assert_plain_sentence(text: str) -> None:
    assert text.endswith("。")
    assert text.count("。") == 1
    assert id_number(2) not in text


def test_exact_match(roster):
    result = check(roster, "王秀兰", id_number(2))
    assert result.outcome is Outcome.matched and result.matched
    assert result.person.name == "王秀兰"
    assert not result.converted_from_traditional
    assert result.explain() == "已经查到您的信息，接下来就可以开始认证了。"


def test_typing_noise_is_ignored(roster):
    spaced = " ".join(id_number(2)[i : i + 6] for i in range(0, 18, 6))
    assert check(roster, " 王 秀兰 ", spaced).matched
    assert check(
        roster, "王秀兰", id_number(2).translate(str.maketrans("0123", "０１２３"))
    ).matched
    assert check(roster, "买买提.艾力", id_number(3)).matched
    assert check(roster, "买买提•艾力", id_number(3)).matched
    assert normalise_name("买买提 · 艾力") == "买买提·艾力"


def test_homophone_is_explained_without_revealing_the_name(roster):
    result = check(roster, "王秀蓝", id_number(2))
    assert result.outcome is Outcome.name_mismatch
    assert result.person is None and result.people == ()
    assert [(d.position, d.kind) for d in result.differences] == [(3, DifferenceKind.same_sound)]
    text = result.explain()
    assert "第3个字读音相同但字不同" in text
    assert "王秀兰" not in text and "兰" not in text
    assert "兰" not in repr(result)
    assert text.endswith("请对照身份证上的写法重新输入姓名。")
    assert_plain_sentence(text)


def test_same_pinyin_other_tone_sounds_similar(roster):
    result = check(roster, "汪秀兰", id_number(2))  # wāng vs wáng
    assert result.difference_text() == "第1个字读音相近但字不同"


def test_different_character(roster):
    result = check(roster, "王丽兰", id_number(2))
    assert result.difference_text() == "第2个字不同"
    assert "秀" not in result.explain()


def test_several_differences_are_listed(roster):
    result = check(roster, "王绣蓝", id_number(2))
    assert result.difference_text() == "第2个字读音相同但字不同，第3个字读音相同但字不同"


@pytest.mark.parametrize("typed", ["王兰", "王秀兰兰", "欧阳秀兰"])
def test_length_difference(roster, typed):
    result = check(roster, typed, id_number(2))
    assert result.length_differs
    assert result.difference_text() == "姓名字数不同"
    text = result.explain()
    assert "姓名字数不同" in text and "王秀兰" not in text and "3" not in text
    assert_plain_sentence(text)


def test_a_completely_different_name_hints_at_relatives(roster):
    result = check(roster, "李建国", id_number(2))  # the son typed his own name
    text = result.explain()
    assert "完全不同" in text and "家人" in text
    assert "王秀兰" not in text
    assert_plain_sentence(text)


def test_traditional_characters_match_after_conversion(roster):
    result = check(roster, "王秀蘭", id_number(2))
    assert result.matched
    assert result.converted_from_traditional
    assert result.converted_name == "王秀兰"
    assert result.explain().startswith("已按简体字「王秀兰」查询，")
    assert_plain_sentence(result.explain())


def test_traditional_name_that_still_differs(roster):
    result = check(roster, "王秀藍", id_number(2))  # 藍 → 蓝, a homophone of 兰
    assert result.outcome is Outcome.name_mismatch
    assert result.converted_from_traditional and result.converted_name == "王秀蓝"
    assert result.difference_text() == "第3个字读音相同但字不同"
    assert result.explain().startswith("已按简体字「王秀蓝」查询，")


def test_roster_name_kept_in_traditional_characters_still_matches(db):
    with db.session() as session:
        make_person(session, "陳淑華", 5)
    result = check(db, "陈淑华", id_number(5))
    assert result.matched and not result.converted_from_traditional


def test_unknown_id_number(roster):
    result = check(roster, "王秀兰", id_number(7))
    assert result.outcome is Outcome.id_not_found
    assert result.masked_id == id_number(7)[:4] + "*" * 10 + id_number(7)[-4:]
    text = result.explain()
    assert result.masked_id in text and id_number(7) not in text
    assert "18位" in text and "12333" in text and "本地领取养老金" in text
    assert_plain_sentence(text)
    assert len(result.checks) == 3


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        (id_number(7)[:17], "您输入了17位，身份证号码是18位"),
        (id_number(7)[:15], "15位的旧身份证"),
        (id_number(7)[:17] + ("1" if id_number(7)[-1] != "1" else "2"), "校验位"),
        ("", "为空"),
    ],
)
def test_malformed_id_number(roster, number, hint):
    result = check(roster, "王秀兰", number)
    assert result.outcome is Outcome.invalid_id
    assert hint in result.reason
    assert result.explain().endswith("请对照身份证重新输入号码。")


def test_empty_name(roster):
    result = check(roster, "  ", id_number(2))
    assert result.outcome is Outcome.invalid_name
    assert result.explain() == "姓名还没有填写，请按身份证上的姓名重新输入。"


def test_two_benefit_rows_for_one_id_number(db):
    with db.session() as session:
        make_person(session, "王秀兰", 2)
        second = make_person(session, "王秀兰", 9)
        second.id_number = id_number(2)
    result = check(db, "王秀兰", id_number(2))
    assert result.matched and len(result.people) == 2


def test_limits_come_from_the_settings():
    from services.identity import CheckLimits

    limits = CheckLimits.from_settings({"IDENTITY_CHECKS_PER_ACCOUNT": "3"})
    assert (limits.per_account, limits.misses_per_id) == (3, CheckLimits().misses_per_id)
