from __future__ import annotations

import pytest

from nlu.entities import (
    RELATION_SYNONYMS,
    extract_entities,
    find_invalid_id_numbers,
    id_checksum_ok,
    region_codes,
)

VALID_ID = "610102195203150020"
VALID_ID_X = "45010319470927708X"


def entities_of(text: str, kind: str) -> list[dict]:
    return [entity for entity in extract_entities(text) if entity["entity"] == kind]


def test_checksum():
    assert id_checksum_ok(VALID_ID)
    assert id_checksum_ok(VALID_ID_X)
    assert id_checksum_ok(VALID_ID_X.lower())
    assert not id_checksum_ok("610102195203150021")
    assert not id_checksum_ok("61010219520315002")


def test_valid_id_number_is_extracted_with_offsets():
    text = f"我的身份证是{VALID_ID}谢谢"
    [entity] = entities_of(text, "id_number")
    assert entity["value"] == VALID_ID
    assert text[entity["start"] : entity["end"]] == VALID_ID
    assert entity["extractor"]


@pytest.mark.parametrize(
    "wrong", ["610102195203150021", "610102195203150029", "45010319470927708Y"]
)
def test_checksum_invalid_id_numbers_are_not_extracted(wrong):
    assert entities_of(f"身份证{wrong}", "id_number") == []
    assert not [e for e in extract_entities(f"身份证{wrong}") if e["value"] == wrong]


def test_invalid_id_numbers_can_be_reported():
    assert find_invalid_id_numbers("身份证610102195203150021") == ["610102195203150021"]
    assert find_invalid_id_numbers(f"身份证{VALID_ID}") == []


def test_spaced_fullwidth_lowercase_id_number():
    text = "身份證４５０１ ０３１９ ４７０９ ２７７０ ８ｘ"
    [entity] = entities_of(text, "id_number")
    assert entity["value"] == VALID_ID_X
    assert text[entity["start"] : entity["end"]] == "４５０１ ０３１９ ４７０９ ２７７０ ８ｘ"


def test_id_number_inside_a_longer_number_is_not_extracted():
    assert entities_of(f"1{VALID_ID}", "id_number") == []
    assert entities_of(f"{VALID_ID}5", "id_number") == []


def test_phone_numbers():
    text = "我的手机139-1234-5678，座机0771-5887824"
    [entity] = entities_of(text, "phone")
    assert entity["value"] == "13912345678"
    assert text[entity["start"] : entity["end"]] == "139-1234-5678"
    assert entities_of("12912345678", "phone") == []
    assert entities_of("139123456789", "phone") == []
    # the digits of an ID number are not a phone number
    assert entities_of(f"{VALID_ID}", "phone") == []


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("帮我妈认证", "妈", "妈妈"),
        ("我妈妈不会弄", "妈妈", "妈妈"),
        ("俺娘下不了床", "俺娘", "妈妈"),  # one word for jieba, so one entity for Rasa
        ("给我老娘认证", "老娘", "妈妈"),
        ("我母亲住院了", "母亲", "妈妈"),
        ("替我爸认证", "爸", "爸爸"),
        ("俺爹岁数大了", "爹", "爸爸"),
        ("我姥姥一百岁了", "姥姥", "外婆"),
        ("我老伴瘫了", "老伴", "老伴"),
        ("帮我丈母娘认证", "丈母娘", "岳母"),
        ("我岳母的认证", "岳母", "岳母"),
        ("我婆婆痴呆了", "婆婆", "婆婆"),
        ("我老公的认证", "老公", "丈夫"),
        ("我爷爷坐轮椅", "爷爷", "爷爷"),
        ("我妈的身份证输进去", "我妈", "妈妈"),
    ],
)
def test_relations_are_normalised(text, surface, value):
    [entity] = entities_of(text, "relation")
    assert entity["value"] == value
    assert text[entity["start"] : entity["end"]] == surface
    assert entity["text"] == surface


@pytest.mark.parametrize("text", ["姑娘你好在吗", "妹子你好", "妈的烦死了", "我要认证"])
def test_no_relation(text):
    assert entities_of(text, "relation") == []


@pytest.mark.parametrize(
    ("text", "surface", "code"),
    [
        ("我是陕西的", "陕西", "610000"),
        ("陕西省退休的", "陕西省", "610000"),
        ("怎么在陕西养老保险上认证", "陕西养老保险", "610000"),
        ("民生山西怎么登录", "民生山西", "140000"),
        ("山西的", "山西", "140000"),
        ("江西人社在哪下载", "江西人社", "360000"),
        ("赣服通上怎么认证", "赣服通", "360000"),
        ("老来网怎么注册", "老来网", "450000"),
        ("广西人社12333怎么认证", "广西人社12333", "450000"),
        ("我在西安新城区", "西安新城区", "610102"),
        ("我在西安市新城区", "西安市新城区", "610102"),
        ("寻乌县的", "寻乌县", "360734"),
        ("我是寻乌的", "寻乌", "360734"),
        ("广西壮族自治区", "广西壮族自治区", "450000"),
    ],
)
def test_regions_are_mapped_to_codes(text, surface, code):
    [entity] = entities_of(text, "region")
    assert entity["value"] == code
    assert text[entity["start"] : entity["end"]] == surface
    assert entity["text"] == surface


def test_every_region_code_is_six_digits():
    assert all(len(code) == 6 and code.isdigit() for code in region_codes().values())
    assert set(RELATION_SYNONYMS.values()) <= set(RELATION_SYNONYMS)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("我叫王秀兰", "王秀兰"),
        ("我叫王秀兰身份证610102195203150020我要认证", "王秀兰"),
        ("名字是张建国", "张建国"),
        ("姓名：刘淑珍", "刘淑珍"),
        ("我妈叫李桂英身份证610103196202126062", "李桂英"),
        ("我婆婆孙桂兰认证了没有", "孙桂兰"),
        ("陈玉梅 140105193009281462", "陈玉梅"),
        ("14010619540318130X杨德胜", "杨德胜"),
        ("王秀兰", "王秀兰"),
        ("欧阳秀英", "欧阳秀英"),
    ],
)
def test_person_names(text, name):
    [entity] = entities_of(text, "person_name")
    assert entity["value"] == name
    assert text[entity["start"] : entity["end"]] == name


@pytest.mark.parametrize(
    "text",
    [
        "张嘴眨眼怎么做",
        "谢谢",
        "莫得",
        "我爸高血压",
        "我是江西寻乌的",
        "叫你们领导来",
        "你好",
        "高龄老人",
    ],
)
def test_no_person_name(text):
    assert entities_of(text, "person_name") == []


def test_offsets_point_into_the_original_text():
    text = "幫我媽媽認證，她叫王秀蘭，身份證６１０１ ０２１９ ５２０３ １５００ ２０，電話139-1234-5678，陝西的"
    found = {entity["entity"]: entity for entity in extract_entities(text)}
    assert set(found) == {"relation", "person_name", "id_number", "phone", "region"}
    for entity in found.values():
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert found["person_name"]["value"] == "王秀兰"
    assert found["person_name"]["text"] == "王秀蘭"
    assert found["region"]["value"] == "610000"
    assert found["id_number"]["value"] == VALID_ID


def test_entities_are_sorted_and_do_not_overlap():
    entities = extract_entities("我妈李桂英610103196202126062电话13912345678在西安新城区")
    spans = [(e["start"], e["end"]) for e in entities]
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
