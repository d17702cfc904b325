"""Resident ID numbers: normalising, validating, reading birth date and gender, masking."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent

from services.idcard import (
    IdCard,
    InvalidIdNumber,
    mask_id_number,
    mask_id_numbers_in_text,
    mask_phone,
    normalise_id_number,
    parse_id_number,
)

XINCHENG_1952 = "610102195203150020"  # 西安新城区: the code dates from 1983, she from 1952


def make_id(prefix: str, birth: dt.date, sequence: int) -> str:
    body = f"{prefix}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def with_wrong_check_digit(number: str) -> str:
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


def test_a_retiree_with_a_later_region_code_is_accepted():
    with pytest.raises(InvalidComponent):  # why we do not call stdnum's validate() as is
        ric.validate(XINCHENG_1952)

    card = parse_id_number(XINCHENG_1952)

    assert card == IdCard(
        number=XINCHENG_1952,
        birth_date=dt.date(1952, 3, 15),
        gender="F",
        birth_place="陕西省新城区",
        warnings=(),
    )
    assert card.masked == "6101**********0020"
    assert card.age_on(dt.date(2024, 3, 14)) == 71
    assert card.age_on(dt.date(2024, 3, 15)) == 72


def test_gender_comes_from_the_17th_digit():
    man = make_id("140105", dt.date(1950, 1, 1), 13)
    woman = make_id("140105", dt.date(1950, 1, 1), 12)
    assert parse_id_number(man).gender == "M"
    assert parse_id_number(woman).gender == "F"


@pytest.mark.parametrize(
    "typed",
    [
        " 610102195203150020 ",
        "6101 0219 5203 1500 20",
        "610102-19520315-0020",
        "６１０１０２１９５２０３１５００２０",  # full-width digits from a phone keyboard
        "\u3000610102195203150020\u200b",
    ],
)
def test_numbers_are_normalised(typed):
    assert parse_id_number(typed).number == XINCHENG_1952


def test_lower_case_x_becomes_upper_case():
    number = "11010119500101005X"
    assert ric.calc_check_digit(number) == "X"
    assert normalise_id_number("11010119500101005x") == number
    assert normalise_id_number("11010119500101005ｘ") == number
    assert parse_id_number("11010119500101005x").number == number


@pytest.mark.parametrize(
    ("typed", "code", "words"),
    [
        ("", "empty", "为空"),
        (None, "empty", "为空"),
        ("61010219520315002", "length", "您输入了17位，身份证号码是18位"),
        ("6101021952031500200", "length", "您输入了19位"),
        ("610102520315002", "old_15_digit", "15位的旧身份证号码"),
        ("61010219520315002A", "format", "只能是数字"),
        ("6101021952X3150020", "format", "只能是数字"),
        (with_wrong_check_digit(XINCHENG_1952), "checksum", "校验位不对"),
    ],
)
def test_invalid_numbers_are_rejected_with_a_reason_in_chinese(typed, code, words):
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(typed)
    assert caught.value.code == code
    assert words in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_a_birth_date_that_does_not_exist_is_named():
    body = "61010219520230002"  # 30 February
    number = body + ric.calc_check_digit(body + "0")  # a correct check digit
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(number)
    assert caught.value.code == "birth_date"
    assert "1952-02-30 不存在" in caught.value.reason


def test_a_birth_date_in_the_future_is_rejected():
    number = make_id("610102", dt.date(2030, 1, 1), 2)
    with pytest.raises(InvalidIdNumber, match="晚于今天"):
        parse_id_number(number, today=dt.date(2026, 1, 1))
    assert parse_id_number(number, today=dt.date(2030, 1, 1)).birth_date == dt.date(2030, 1, 1)


def test_the_checksum_message_does_not_give_away_the_expected_digit():
    wrong = with_wrong_check_digit(XINCHENG_1952)
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(wrong)
    assert not any(ch.isdigit() for ch in caught.value.reason)


def test_an_unknown_region_prefix_is_only_a_warning():
    card = parse_id_number(make_id("990102", dt.date(1950, 6, 1), 21))
    assert card.birth_place is None
    assert card.warnings == ("身份证号码前6位 990102 不是已知的行政区划代码，请核对",)

    county_unknown = parse_id_number(make_id("610199", dt.date(1950, 6, 1), 21))
    assert county_unknown.birth_place == "陕西省"
    assert "不是已知的区县代码" in county_unknown.warnings[0]


def test_masking_shows_only_the_first_and_last_four():
    assert mask_id_number(XINCHENG_1952) == "6101**********0020"
    assert mask_id_number("11010119500101005x") == "1101**********005X"
    assert mask_id_number(" 6101 0219 5203 1500 20") == "6101**********0020"
    assert mask_id_number("12345678") == "********"
    assert mask_id_number("") == ""
    assert mask_id_number(None) == ""


def test_masking_phones():
    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("139 1234 5678") == "139****5678"
    assert mask_phone("0771-5887824") == "*******7824"
    assert mask_phone("1234") == "****"
    assert mask_phone(None) == ""


def test_masking_id_numbers_inside_text():
    text = f"我的身份证是{XINCHENG_1952}，手机13912345678，编号1234567890123456789012"
    masked = mask_id_numbers_in_text(text)
    assert XINCHENG_1952 not in masked
    assert "6101**********0020" in masked
    assert "13912345678" in masked  # phones are not ID numbers
    assert "1234567890123456789012" in masked  # a longer digit run is not an ID number


@given(
    prefix=st.sampled_from(["610102", "140105", "360734", "450103", "110101", "990102"]),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
)
def test_every_valid_number_round_trips(prefix, birth, sequence):
    number = make_id(prefix, birth, sequence)
    card = parse_id_number(number.lower())
    assert card.number == number
    assert card.birth_date == birth
    assert card.gender == ("M" if sequence % 2 else "F")
    masked = mask_id_number(number)
    assert masked[:4] == number[:4] and masked[-4:] == number[-4:]
    assert masked[4:-4] == "*" * 10


@given(
    prefix=st.sampled_from(["610102", "140105"]),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
    position=st.integers(min_value=0, max_value=16),
    delta=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_typo_is_caught(prefix, birth, sequence, position, delta):
    number = make_id(prefix, birth, sequence)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    with pytest.raises(InvalidIdNumber):
        parse_id_number(typo)
