from __future__ import annotations

import pytest

from nlu.normalize import normalize, to_halfwidth, to_simplified


def test_traditional_becomes_simplified_with_the_same_length():
    assert to_simplified("我媽媽要認證養老金") == "我妈妈要认证养老金"
    result = normalize("幫我爸認證")
    assert result.text == "帮我爸认证"
    assert result.index == tuple(range(5))


def test_fullwidth_becomes_halfwidth():
    assert to_halfwidth("１３９１２３４５６７８") == "13912345678"
    assert to_halfwidth("ＡＢＣ：ｘ\u3000") == "ABC:x "
    assert normalize("６１０１０２１９５２０３１５００２０").text == "610102195203150020"


@pytest.mark.parametrize(
    "raw",
    [
        "6101 0219 5203 1500 20",
        "610102-19520315-0020",
        "610102 19520315 0020",
        "６１０１０２ １９５２ ０３１５ ００２０",
        "610102\u30001952\u30000315\u30000020",
    ],
)
def test_separators_inside_id_numbers_are_removed(raw):
    result = normalize(f"身份证{raw}好的")
    assert result.text == "身份证610102195203150020好的"
    start = result.text.index("6")
    assert result.span(start, start + 18) == (3, 3 + len(raw))


@pytest.mark.parametrize("raw", ["139 1234 5678", "139-1234-5678", "139－1234－5678"])
def test_separators_inside_mobile_numbers_are_removed(raw):
    assert normalize(f"电话{raw}").text == "电话13912345678"


def test_lowercase_x_at_the_end_of_an_id_becomes_uppercase():
    assert normalize("45010319470927708x").text == "45010319470927708X"
    assert normalize("4501 0319 4709 2770 8x").text == "45010319470927708X"


@pytest.mark.parametrize("text", ["0771-5887824", "2021-05-31", "12333", "12 3", "x光"])
def test_other_numbers_are_left_alone(text):
    assert normalize(text).text == text


def test_span_maps_back_to_the_original_text():
    original = "我的電話是 139 1234 5678 謝謝"
    result = normalize(original)
    start = result.text.index("139")
    begin, end = result.span(start, start + 11)
    assert original[begin:end] == "139 1234 5678"


def test_empty_text():
    result = normalize("")
    assert result.text == ""
    assert result.index == ()
