"""The relation in the user's own words (bot/actions/kinship.py): who the words name, and how."""

from __future__ import annotations

import pytest

from bot.actions.kinship import SELF, read_said, same_relation


@pytest.mark.parametrize(
    ("typed", "relation"),
    [
        ("给我妈", "妈妈"),
        ("不是我，是给我妈认证", "妈妈"),
        ("我是王秀兰的女儿", "母亲/父亲"),  # settled by her ID number's gender, never 女儿
        ("我是她儿子", "母亲/父亲"),
        ("我是赵建国的女婿", "岳母/岳父"),
        ("本人", SELF),
        ("给我自己认证", SELF),
        ("我叫王秀兰", SELF),
        ("王秀兰 610102195203150020", None),  # nobody said whose: asked, not assumed
        ("帮家人认证", None),
    ],
)
def test_the_relation_comes_from_the_words(typed, relation):
    assert read_said(typed).relation == relation


def test_a_grandchild_leaves_the_grandparent_to_be_asked():
    said = read_said("我是黄秀英的孙女")
    assert said.relation is None and said.ambiguous_relation and said.name == "黄秀英"


def test_a_name_beside_a_mistyped_number_is_still_the_name():
    assert read_said("赵建国 61010219500708005").name == "赵建国"


def test_the_same_relation_in_other_words():
    assert same_relation("妈妈", "母亲") and same_relation("母亲", "母亲/父亲")
    assert not same_relation("爸爸", "妈妈")
