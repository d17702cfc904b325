"""谁是谁：从用户的话里读出姓名、身份证号和亲属关系，并对上账号已绑定的人。

The relation is always the bound person's relation *to the user*, in the user's own words:
"我妈" → 妈妈; "我是王秀兰的女儿" → 王秀兰 is the user's mother or father (the ID number's
gender decides), never 女儿; "我自己" / "本人" → self. Nothing here defaults a relation: a
word that says none leaves it None, and the form asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rasa_sdk import Tracker

from nlu.entities import RELATION_SYNONYMS, extract_entities
from services.models import Person

SELF = "self"
# "我是X的女儿": X's relation to the user, by X's gender (the ID number's 17th digit).
# None: the words do not tell (a grandchild's grandmother may be 奶奶 or 外婆) — ask.
_INVERSE = {
    "女儿": ("母亲", "父亲"),
    "儿子": ("母亲", "父亲"),
    "儿媳": ("婆婆", "公公"),
    "女婿": ("岳母", "岳父"),
    "妻子": ("丈夫", "丈夫"),
    "丈夫": ("妻子", "妻子"),
    "老伴": ("老伴", "老伴"),
    "孙子": None,
    "孙女": None,
}
# Kept until the person's gender is known (at the roster check): which pair to pick from.
PENDING_BY_GENDER = {
    f"{female}/{male}": (female, male) for female, male in filter(None, _INVERSE.values())
}
_CLAIM = re.compile(
    r"我是(?:(?P<name>[\u4e00-\u9fff·]{2,6}?)的|[他她]的?)(?P<word>"
    + "|".join(
        sorted((s for s, c in RELATION_SYNONYMS.items() if c in _INVERSE), key=len, reverse=True)
    )
    + ")"
)
_SELF_WORDS = re.compile(r"^(?:给|帮|为|替)?(?:我自己|自己|本人|我本人|我)(?:认证|查|办)?$")
# "I cannot tell you who": a home visit is then filed unverified for staff to call back.
_CANNOT_SAY = re.compile(
    r"说不清|不知道|不晓得|不清楚|记不得|不记得|记不清|记不住|没记住|忘了|没有身份证|找不到身份证|先登记"
)
_NOT_ME = re.compile(r"不是(?:我|本人|给我|帮我)(?!妈|爸|娘|爹)")


@dataclass(frozen=True)
class Said:
    """Who the latest message names: any of name, ID number and relation (None when not said)."""

    name: str | None = None
    id_number: str | None = None
    relation: str | None = None
    ambiguous_relation: bool = False  # "我是X的孙女": 奶奶 or 外婆? ask

    @property
    def anyone(self) -> bool:
        return bool(self.name or self.id_number or self.relation)


def latest_text(tracker: Tracker) -> str:
    text = str(tracker.latest_message.get("text") or "")
    return "" if text.startswith("/") else text


def read_said(text: str) -> Said:
    """姓名、身份证号、关系 as the project's own extractor reads them in ``text``."""
    entities = extract_entities(text) if text else []

    def last(kind: str) -> str | None:
        values = [e["value"] for e in entities if e["entity"] == kind]
        return values[-1] if values else None

    name, relation = last("person_name"), last("relation") or None
    name = name or _name_beside_a_number(text)
    claim = _CLAIM.search(text)
    if claim:
        pair = _INVERSE[RELATION_SYNONYMS[claim["word"]]]
        name = claim["name"] or name
        if pair is None:
            return Said(name, last("id_number"), None, ambiguous_relation=True)
        relation = pair[0] if pair[0] == pair[1] else f"{pair[0]}/{pair[1]}"
    elif relation is None and not _NOT_ME.search(text) and _speaks_of_self(text):
        relation = SELF
    return Said(name, last("id_number"), relation)


def _name_beside_a_number(text: str) -> str | None:
    """ "赵建国 61010219500708005": the extractor takes a name beside a *valid* ID number only;
    beside a mistyped one the name is still the name."""
    if not re.search(r"\d{6,}", text):
        return None
    rest = re.sub(r"[\dXx\s，。,.!！:：]+|身份证号?码?|姓名|我叫", "", text)
    return rest if re.fullmatch(r"[\u4e00-\u9fff·]{2,4}", rest) else None


def _speaks_of_self(text: str) -> bool:
    bare = re.sub(r"[\s，。,.!！的]", "", text)
    return bool(_SELF_WORDS.match(bare) or re.search(r"我叫|我的名字|名字是", text))


def said_in(tracker: Tracker) -> Said:
    return read_said(latest_text(tracker))


def cannot_say(tracker: Tracker) -> bool:
    return bool(_CANNOT_SAY.search(latest_text(tracker)))


def denies_self(tracker: Tracker) -> bool:
    """ "不是我，是给我妈认证": the user meant someone else, and said whom."""
    text = latest_text(tracker)
    return bool(_NOT_ME.search(text)) and bool(read_said(text).relation)


def settled_relation(relation: str, person: Person) -> str:
    """A relation kept as "母亲/父亲" becomes one of them by the person's gender."""
    pair = PENDING_BY_GENDER.get(relation)
    if pair is None:
        return relation
    return pair[0] if str(person.gender) == "F" else pair[1]


def same_relation(bound: str, said: str) -> bool:
    """妈妈 / 母亲 / 老妈 name the same person; "母亲/父亲" matches either."""
    wanted = set(PENDING_BY_GENDER.get(said, (said,)))
    canonical = {RELATION_SYNONYMS.get(word, word) for word in wanted}
    return bound in wanted or RELATION_SYNONYMS.get(bound, bound) in canonical


def match_bound(bound: list[tuple[Person, str]], said: Said) -> tuple[Person, str] | None:
    """The one bound person the words point at: by ID number (and name, if given), else by
    name, else by relation; None when nobody or several fit."""
    if said.id_number:
        hits = [
            (p, r)
            for p, r in bound
            if p.id_number == said.id_number and (not said.name or p.name == said.name)
        ]
    elif said.name:
        hits = [(p, r) for p, r in bound if p.name == said.name]
    elif said.relation:
        hits = [(p, r) for p, r in bound if same_relation(r, said.relation)]
    else:
        hits = []
    return hits[0] if len(hits) == 1 else None
