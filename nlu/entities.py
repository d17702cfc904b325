"""Rule-based entity extraction for the embedded NLU.

Entities (the names are part of the `/model/parse` contract, see shared/spec/interfaces.md):

* ``id_number`` — an 18-character resident ID number (GB 11643). Only numbers whose ISO 7064
  Mod 11-2 check character is right are extracted; the value is 18 characters with an
  uppercase ``X``. Spaces or dashes inside the number are accepted (see :mod:`nlu.normalize`).
* ``phone`` — a mainland mobile number ``1[3-9]`` + 9 digits, not part of a longer number.
* ``relation`` — a family member, normalised (妈 / 老妈 / 母亲 / 俺娘 → 妈妈, 姥姥 → 外婆…);
  see :data:`RELATIONS` for the canonical values.
* ``region`` — a province, city, district or a province's certification app, mapped to its
  6-digit administrative code (陕西 / 陕西养老保险 → 610000, 民生山西 → 140000, 赣服通 →
  360000, 老来网 / 广西人社12333 → 450000, 西安新城区 → 610102, 寻乌 → 360734…).
* ``person_name`` — a Chinese name after 我叫 / 名字是 / 姓名 / 叫, right after a relation word
  (我妈王秀兰), next to an ID number, or sent on its own.

Every entity carries ``start``/``end`` offsets into the ORIGINAL text and its surface form in
``text``; ``value`` is the normalised value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from nlu.normalize import Normalized, normalize
from services.regions import place_codes

__all__ = [
    "EXTRACTOR",
    "RELATIONS",
    "RELATION_SYNONYMS",
    "extract_entities",
    "find_invalid_id_numbers",
    "id_checksum_ok",
    "region_codes",
]

EXTRACTOR = "EmbeddedEntityExtractor"

# --------------------------------------------------------------------------- ID numbers

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def id_checksum_ok(number: str) -> bool:
    """True when ``number`` is 17 digits plus the right GB 11643 check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number, _ID_WEIGHTS, strict=False))
    return _ID_CHECK[total % 11] == number[17].upper()


# --------------------------------------------------------------------------- relations

# canonical value → the ways people say it (the canonical word itself included)
RELATIONS: dict[str, tuple[str, ...]] = {
    "妈妈": ("妈妈", "老妈", "母亲", "老母亲", "老娘", "妈咪", "妈", "娘"),
    "爸爸": ("爸爸", "老爸", "父亲", "老父亲", "老爹", "爹爹", "爸", "爹"),
    "岳母": ("岳母", "丈母娘"),
    "岳父": ("岳父", "老丈人", "丈人"),
    "婆婆": ("婆婆",),
    "公公": ("公公",),
    "奶奶": ("奶奶", "祖母"),
    "爷爷": ("爷爷", "祖父"),
    "外婆": ("外婆", "姥姥", "外祖母"),
    "外公": ("外公", "姥爷", "外祖父"),
    "老伴": ("老伴儿", "老伴", "爱人"),
    "丈夫": ("丈夫", "老公", "老头子"),
    "妻子": ("妻子", "老婆", "媳妇儿", "媳妇", "老太婆"),
    "儿子": ("儿子",),
    "女儿": ("女儿", "闺女"),
    "儿媳": ("儿媳妇", "儿媳"),
    "女婿": ("女婿",),
    "孙子": ("孙子",),
    "孙女": ("孙女",),
    "哥哥": ("哥哥", "大哥"),
    "姐姐": ("姐姐", "大姐"),
    "弟弟": ("弟弟",),
    "妹妹": ("妹妹",),
    "姐夫": ("姐夫",),
    "叔叔": ("叔叔",),
    "伯伯": ("伯伯", "大伯"),
    "姑姑": ("姑姑", "姑妈"),
    "舅舅": ("舅舅",),
    "姨妈": ("姨妈",),
}
RELATION_SYNONYMS: dict[str, str] = {
    surface: canonical for canonical, surfaces in RELATIONS.items() for surface in surfaces
}
# Single characters that are relations only when someone's: 我妈, 俺娘, 帮他爸, 给她爹.
_OWNER = "我俺咱他她你帮给替为"
_SINGLE_CHAR_RELATIONS = {s for s in RELATION_SYNONYMS if len(s) == 1}
_MULTI_CHAR_RELATIONS = sorted(
    (s for s in RELATION_SYNONYMS if len(s) > 1), key=lambda s: (-len(s), s)
)
_RELATION_RE = re.compile(
    "|".join(re.escape(s) for s in _MULTI_CHAR_RELATIONS)
    + "|"
    + rf"(?<=[{_OWNER}])(?:家的|家|的)?(?P<single>[{''.join(sorted(_SINGLE_CHAR_RELATIONS))}])"
)
# "老娘" is a relation, but "姑娘" (a girl) and "新娘" are not; "他妈的" is a curse.
_NOT_RELATION_AFTER = {"妈": "的", "娘": "们"}

# --------------------------------------------------------------------------- regions

# surface → 6-digit administrative code (GB/T 2260); apps count as their province. The names
# live in the region data file (services/data/regions.yaml), so a new province needs no code.


def region_codes() -> dict[str, str]:
    return place_codes()


@lru_cache(maxsize=4)
def _region_pattern(surfaces: frozenset[str]) -> re.Pattern:
    # Longest first: "西安市新城区" before "西安".
    return re.compile("|".join(re.escape(s) for s in sorted(surfaces, key=lambda s: (-len(s), s))))


# --------------------------------------------------------------------------- person names

# Common surnames. Characters that are far more often ordinary words in this domain
# (和, 向, 能, 时, 成, 都, 从, 全, 安, 明, 文, 常, 车, 东, 南, 关, 万, 老, 家…) are left out.
_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "令狐",
    "慕容",
    "司徒",
    "夏侯",
    "长孙",
)
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余"
    "杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范廖石金韦贾夏付傅方邹熊孟秦邱侯江尹薛闫段雷"
    "龙黎史陶贺顾毛郝龚邵万钱严覃武戴莫孔汤易常温康施牛樊葛邢安齐庞颜倪殷柴翟"
    "蒙覃黎卿甘凌谷骆靳鲁祝焦左聂耿岳梅申霍柯欧缪"
    "蓝农阮麦冼盘"  # common in Guangxi
)
# Characters that end a name: particles, verbs and words that follow names in these texts.
_NAME_STOP = set(
    "的了吗呢吧啊呀嘛哦是在要想不没有和跟给帮替去来说也都就还我你他她它们身电手号认证刷"
    "今年岁这那哪啥咋怎么什能会可已过到让把被对从向等及与或并住家人叫名姓男女上下里查办弄"
    "做看问请谢打拍照用申一二三四五六七八九十百千昨个位得"
)
_HAN = r"\u4e00-\u9fff"
_NOT_NAMES = {
    # words that start with a surname character but are not names here
    "张嘴",
    "高龄",
    "高血压",
    "江西",
    "广西",
    "陕西",
    "山西",
    "黄色",
    "金额",
    "马上",
    "方便",
    "方式",
    "方法",
    "孙子",
    "孙女",
    "毛病",
    "段时间",
    "林业",
    "史上",
    "周末",
    "周岁",
    "周一",
    "钱包",
    "余额",
    "雷锋",
    "龙头",
    "许多",
    "曾经",
    "任何",
    "于是",
    "何时",
    "何必",
    "梁上",
    "甘肃",
    "贾汪",
    "江苏",
    "秦岭",
    "苏州",
    "温州",
    "康复",
    "施工",
    "牛奶",
    "齐全",
    "严重",
    "易于",
    "戴眼镜",
    "戴帽子",
    "邓小平",
    "谢谢",
    "刘德华",
}
_NAME_TRIGGERS = (
    "我叫",
    "我是",
    "名叫",
    "名字叫",
    "名字是",
    "姓名是",
    "姓名叫",
    "姓名",
    "名字",
    "叫做",
    "叫",
)
_FIRM_TRIGGERS = {"我叫", "名叫", "名字叫", "名字是", "姓名是", "姓名叫", "姓名", "叫做"}
_NAME_TRIGGER_RE = re.compile(
    "(?:" + "|".join(re.escape(t) for t in _NAME_TRIGGERS) + r")[:：\s]*(?=[" + _HAN + "])"
)


def _name_at(text: str, start: int, *, announced: bool = False) -> int:
    """End of a plausible name starting at ``start`` (0 when there is none).

    ``announced``: right after 我叫 / 姓名 …, where any surname is believed, not just common ones.
    """
    surname_length = 2 if text[start : start + 2] in _COMPOUND_SURNAMES else 1
    first = text[start : start + 1]
    believable = announced and "\u4e00" <= first <= "\u9fff" and first not in _NAME_STOP
    if surname_length == 1 and first not in _SURNAMES and not believable:
        return 0
    end = start + surname_length
    given = 0
    while given < (3 if announced else 2) and end < len(text):
        char = text[end]
        if not ("\u4e00" <= char <= "\u9fff") or char in _NAME_STOP:
            break
        end += 1
        given += 1
    if given == 0:
        return 0
    candidate = text[start:end]
    for length in range(len(candidate), 1, -1):
        if candidate[:length] in _NOT_NAMES:
            return 0
    if candidate in RELATION_SYNONYMS or candidate in region_codes():
        return 0
    return end


# --------------------------------------------------------------------------- extraction


def _entity(normalized: Normalized, kind: str, value: str, start: int, end: int, **extra) -> dict:
    original_start, original_end = normalized.span(start, end)
    entity = {
        "entity": kind,
        "start": original_start,
        "end": original_end,
        "value": value,
        "extractor": EXTRACTOR,
        "text": normalized.original[original_start:original_end],
    }
    entity.update(extra)
    return entity


def _overlaps(span: tuple[int, int], taken: Iterable[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def find_invalid_id_numbers(text: str) -> list[str]:
    """18-character ID-number shapes in ``text`` whose check character is wrong.

    The dialogue can use this to say "the number you typed does not look right".
    """
    normalized = normalize(text)
    return [
        match.group().upper()
        for match in _ID_RE.finditer(normalized.text)
        if not id_checksum_ok(match.group())
    ]


def extract_entities(text: str | Normalized) -> list[dict]:
    """All entities in ``text`` (a raw string or an already normalised one), by position."""
    normalized = text if isinstance(text, Normalized) else normalize(text)
    norm = normalized.text
    found: list[tuple[int, int, dict]] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, value: str, start: int, end: int, **extra) -> None:
        found.append((start, end, _entity(normalized, kind, value, start, end, **extra)))
        taken.append((start, end))

    id_spans = []
    for match in _ID_RE.finditer(norm):
        if id_checksum_ok(match.group()):
            add("id_number", match.group().upper(), match.start(), match.end())
            id_spans.append((match.start(), match.end()))
    for match in _PHONE_RE.finditer(norm):
        if not _overlaps(match.span(), taken):
            add("phone", match.group(), match.start(), match.end())
    codes = region_codes()
    for match in _region_pattern(frozenset(codes)).finditer(norm):
        if not _overlaps(match.span(), taken):
            surface = match.group()
            add("region", codes[surface], match.start(), match.end())
    relation_spans = []
    for match in _RELATION_RE.finditer(norm):
        start, end = match.span("single") if match.group("single") else match.span()
        surface = norm[start:end]
        following = _NOT_RELATION_AFTER.get(surface)
        if (
            following
            and norm[end : end + len(following)] == following
            and (surface != "妈" or norm[start - 1 : start] in ("他", "你"))
        ):
            continue
        if _overlaps((start, end), taken):
            continue
        add("relation", RELATION_SYNONYMS[surface], start, end)
        relation_spans.append((start, end))

    # person names: after a trigger word, right after a relation word, next to an ID number,
    # or a whole message that is only a name.
    # After "我叫 / 姓名" any surname is believed; after "我是 / 名字" only common ones
    # ("我是退休职工", "名字输进去查不到").
    announced = {
        m.end()
        for m in _NAME_TRIGGER_RE.finditer(norm)
        if m.group(0).rstrip(" :：") in _FIRM_TRIGGERS
    }
    candidates = [m.end() for m in _NAME_TRIGGER_RE.finditer(norm)]
    candidates += [end for _, end in relation_spans]
    for id_start, id_end in id_spans:
        before = norm[:id_start].rstrip(" ,，:：")
        for label in ("身份证号码是", "身份证号码", "身份证号是", "身份证号", "身份证是", "身份证"):
            if before.endswith(label):
                before = before[: -len(label)].rstrip(" ,，:：")
                break
        for length in (4, 3, 2):
            start = len(before) - length
            if start >= 0 and _name_at(norm, start) == len(before):
                candidates.append(start)
                break
        after = id_end
        while after < len(norm) and norm[after] in " ,，:：":
            after += 1
        candidates.append(after)
    stripped = norm.strip(" ,，。.!！?？")
    if 2 <= len(stripped) <= 4:
        offset = norm.index(stripped)
        if _name_at(norm, offset) == offset + len(stripped):
            candidates.append(offset)
    for start in sorted(set(candidates)):
        end = _name_at(norm, start, announced=start in announced)
        if end and not _overlaps((start, end), taken):
            add("person_name", norm[start:end], start, end)

    found.sort(key=lambda item: (item[0], item[1]))
    return _on_word_boundaries([entity for _, _, entity in found], normalized.original)


# Kinds whose value comes from a table (relation, region): their span may grow to whole words
# without changing the value. Names, ID numbers and phones keep their exact span.
_SNAPPED_KINDS = {"relation", "region"}


def _on_word_boundaries(entities: list[dict], text: str) -> list[dict]:
    """Grow relation and region spans to whole words, as Rasa's tokens see them.

    Rasa's entity extractors label whole tokens: "妈" inside the word "我妈" cannot be an
    entity of its own, so the entity is "我妈" (still 妈妈), and "山西大同" is one region (the
    most specific code of the places in it). Rasa's validator rejects annotations that cut a
    word; the same spans here keep the training annotations and this extractor in agreement.
    """
    if not any(e["entity"] in _SNAPPED_KINDS for e in entities):
        return entities
    from nlu.jieba_dictionary import word_spans

    words = word_spans(text)
    kept: list[dict] = []
    for entity in entities:
        if entity["entity"] in _SNAPPED_KINDS:
            start = max(s for s, e in words if s <= entity["start"])
            end = min(e for s, e in words if e >= entity["end"])
            others = [o for o in entities if o is not entity and o["entity"] != entity["entity"]]
            if not _overlaps((start, end), [(o["start"], o["end"]) for o in others]):
                entity = entity | {"start": start, "end": end, "text": text[start:end]}
        same = next(
            (
                k
                for k in kept
                if (k["entity"], k["start"], k["end"])
                == (entity["entity"], entity["start"], entity["end"])
            ),
            None,
        )
        if same is None:
            kept.append(entity)
        elif _specificity(entity["value"]) > _specificity(same["value"]):
            kept[kept.index(same)] = entity
    return kept


def _specificity(value: str) -> int:
    """610102 (a district) > 610100 (a city) > 610000 (a province)."""
    return len(value.rstrip("0"))
