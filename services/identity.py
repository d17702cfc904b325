"""“查无此人”诊断：按身份证号和姓名查名册，查不到时说清楚是哪里对不上。

The answer never reveals the registered name. For a name that does not match it only says
*where* the typed name differs — "第3个字读音相同但字不同", "第2个字不同", "姓名字数不同" —
which is what a person needs to correct a homophone typo (兰/蓝) without letting someone
who only knows an ID number read the name off the roster. Callers should still rate-limit
attempts per account: each hint narrows the name down a little.

Names typed in traditional characters (王秀蘭) are converted to simplified ones first; a
match after conversion counts as a match and is reported so the dialogue can say
"已按简体字「王秀兰」查询".
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from opencc import OpenCC
from pypinyin import Style, lazy_pinyin
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.idcard import (
    InvalidIdNumber,
    mask_id_number,
    normalise_id_number,
    parse_id_number,
)
from services.models import Person
from services.regions import policy_for

__all__ = [
    "CheckLimits",
    "DifferenceKind",
    "IdentityCheck",
    "NameDifference",
    "Outcome",
    "check_identity",
    "normalise_name",
]

NAME_MAX_LENGTH = 64  # Person.name

# Middle dots people type in minority names (买买提·艾力): all mean "·".
_DOTS = re.compile(r"[·•‧・∙⋅.．。]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CheckLimits:
    """How many identity checks are allowed (settings ``IDENTITY_CHECKS_PER_ACCOUNT``,
    ``IDENTITY_MISSES_PER_ID``).

    Each miss tells a little about a registered name, and a sender id is the client's choice,
    so the checks are counted per account *and* the misses per ID number across all senders.
    """

    per_account: int = 10
    account_window: dt.timedelta = dt.timedelta(hours=1)
    misses_per_id: int = 5
    id_window: dt.timedelta = dt.timedelta(days=1)

    @classmethod
    def from_settings(cls, config: Mapping) -> CheckLimits:
        default = cls()
        per_account = config.get("IDENTITY_CHECKS_PER_ACCOUNT")
        per_id = config.get("IDENTITY_MISSES_PER_ID")
        return cls(
            per_account=int(per_account) if per_account else default.per_account,
            misses_per_id=int(per_id) if per_id else default.misses_per_id,
        )


class Outcome(enum.StrEnum):
    matched = "matched"
    invalid_id = "invalid_id"  # not a well-formed ID number and not in the roster
    invalid_name = "invalid_name"  # empty or absurdly long
    id_not_found = "id_not_found"
    name_mismatch = "name_mismatch"


class DifferenceKind(enum.StrEnum):
    same_sound = "same_sound"  # 读音相同但字不同 (同音字)
    similar_sound = "similar_sound"  # 读音相近但字不同 (same pinyin, other tone)
    different = "different"  # 字不同


@dataclass(frozen=True)
class NameDifference:
    position: int  # 1-based
    kind: DifferenceKind

    def describe(self) -> str:
        if self.kind is DifferenceKind.same_sound:
            return f"第{self.position}个字读音相同但字不同"
        if self.kind is DifferenceKind.similar_sound:
            return f"第{self.position}个字读音相近但字不同"
        return f"第{self.position}个字不同"


@dataclass(frozen=True)
class IdentityCheck:
    """Outcome of :func:`check_identity`.

    ``people`` is filled only when ``matched`` — a mismatch carries no roster data at all, so
    no caller can show the registered name by accident.
    """

    outcome: Outcome
    masked_id: str = ""
    people: tuple[Person, ...] = ()
    typed_name: str = ""  # after whitespace/dot normalisation
    converted_from_traditional: bool = False
    converted_name: str | None = None  # the simplified form we looked up
    length_differs: bool = False
    differences: tuple[NameDifference, ...] = ()
    reason: str | None = None  # for invalid_id / invalid_name
    checks: tuple[str, ...] = field(default=())  # things to verify, for a bulleted list

    @property
    def matched(self) -> bool:
        return self.outcome is Outcome.matched

    @property
    def person(self) -> Person | None:
        return self.people[0] if self.people else None

    def difference_text(self) -> str:
        """'第3个字读音相同但字不同' / '姓名字数不同' / '' — never the registered name."""
        if self.length_differs:
            return "姓名字数不同"
        return "，".join(d.describe() for d in self.differences)

    def explain(self, *, coarse: bool = False) -> str:
        """一句给老年人看的大白话，以下一步怎么做结尾。

        ``coarse``: after an earlier miss on the same ID number, a wrong name gets no hint
        *where* it differs — guess after guess would otherwise spell the registered name.
        """
        converted = (
            f"已按简体字「{self.converted_name}」查询，"
            if self.converted_from_traditional and self.converted_name
            else ""
        )
        if self.outcome is Outcome.matched:
            return f"{converted}已经查到您的信息，接下来就可以开始认证了。"
        if self.outcome is Outcome.invalid_name:
            return f"{self.reason}，请按身份证上的姓名重新输入。"
        if self.outcome is Outcome.invalid_id:
            return f"{self.reason}，请对照身份证重新输入号码。"
        if self.outcome is Outcome.id_not_found:
            return (
                f"没有查到身份证号{self.masked_id}的待遇领取记录，请对照身份证把18位号码"
                f"再核对一遍，号码没错的话请拨打{policy_for(None).hotline}问一下是不是在本地领取养老金。"
            )
        if coarse:
            return (
                f"{converted}身份证号和姓名对不上，请对照身份证逐字核对姓名；"
                f"如果是替家人认证，请填写家人身份证上的姓名。"
            )
        if (
            len(self.differences) > 1
            and all(d.kind is DifferenceKind.different for d in self.differences)
            and len(self.differences) == len(self.typed_name)
        ):
            return (
                f"{converted}身份证号查到了，但姓名和登记的完全不同，"
                "如果是替家人认证，请填写家人身份证上的姓名。"
            )
        return (
            f"{converted}身份证号查到了，但姓名对不上：{self.difference_text()}，"
            "请对照身份证上的写法重新输入姓名。"
        )


def normalise_name(text: object) -> str:
    """Full-width → half-width, no spaces, one kind of middle dot."""
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text))
    value = _SPACES.sub("", value)
    return _DOTS.sub("·", value).strip("·")


def check_identity(session: Session, name: str, id_number: str) -> IdentityCheck:
    """按身份证号和姓名查名册；查不到时给出原因（不泄露登记的姓名）。"""
    typed = normalise_name(name)
    number = normalise_id_number(id_number)
    masked = mask_id_number(number)
    if not typed:
        return IdentityCheck(Outcome.invalid_name, masked, reason="姓名还没有填写")
    if len(typed) > NAME_MAX_LENGTH:
        return IdentityCheck(
            Outcome.invalid_name, masked, typed_name=typed[:NAME_MAX_LENGTH], reason="姓名太长了"
        )

    candidates = list(
        session.scalars(select(Person).where(Person.id_number == number).order_by(Person.id))
    )
    if not candidates:
        try:
            parse_id_number(number)
        except InvalidIdNumber as error:
            return IdentityCheck(Outcome.invalid_id, masked, typed_name=typed, reason=error.reason)
        return IdentityCheck(
            Outcome.id_not_found,
            masked,
            typed_name=typed,
            checks=(
                "身份证号码是不是18位",
                "号码是否和身份证上的一致（可以逐位对照）",
                "是否在本地领取养老金",
            ),
        )

    simplified = _t2s(typed)
    converted = simplified != typed

    exact = tuple(p for p in candidates if normalise_name(p.name) == typed)
    if exact:
        return IdentityCheck(Outcome.matched, masked, exact, typed)
    if converted:
        after = tuple(p for p in candidates if normalise_name(p.name) == simplified)
        if after:
            return IdentityCheck(Outcome.matched, masked, after, typed, True, simplified)
    # A roster name kept in traditional characters (rare, old data entry) still matches.
    loose = tuple(p for p in candidates if _t2s(normalise_name(p.name)) == simplified)
    if loose:
        return IdentityCheck(Outcome.matched, masked, loose, typed)

    # Compare with the closest registered name (several rows share an ID number only when a
    # person draws two kinds of benefit; their names should agree anyway).
    compared = simplified if len(simplified) == len(typed) else typed
    best: tuple[bool, tuple[NameDifference, ...]] | None = None
    for person in candidates:
        diff = _differences(compared, _t2s(normalise_name(person.name)))
        if best is None or _rank(diff) < _rank(best):
            best = diff
    length_differs, differences = best
    return IdentityCheck(
        Outcome.name_mismatch,
        masked,
        (),
        typed,
        converted,
        simplified if converted else None,
        length_differs,
        differences,
    )


def _rank(diff: tuple[bool, tuple[NameDifference, ...]]) -> tuple[int, int]:
    length_differs, differences = diff
    return (int(length_differs), len(differences))


def _differences(typed: str, registered: str) -> tuple[bool, tuple[NameDifference, ...]]:
    if len(typed) != len(registered):
        return True, ()
    found = []
    for position, (mine, theirs) in enumerate(zip(typed, registered, strict=True), start=1):
        if mine != theirs:
            found.append(NameDifference(position, _sound_kind(mine, theirs)))
    return False, tuple(found)


def _sound_kind(mine: str, theirs: str) -> DifferenceKind:
    """Compare the usual reading of two characters (pypinyin, no context)."""
    mine_tone, theirs_tone = _reading(mine), _reading(theirs)
    if mine_tone is None or theirs_tone is None:
        return DifferenceKind.different
    if mine_tone == theirs_tone:
        return DifferenceKind.same_sound
    if mine_tone.rstrip("012345") == theirs_tone.rstrip("012345"):
        return DifferenceKind.similar_sound
    return DifferenceKind.different


@lru_cache(maxsize=4096)
def _reading(char: str) -> str | None:
    """'兰' → 'lan2'; None for anything that is not a Chinese character."""
    reading = lazy_pinyin(char, style=Style.TONE3, errors=lambda _chars: [None])[0]
    return reading or None


@lru_cache(maxsize=1)
def _converter() -> OpenCC:
    return OpenCC("t2s")


def _t2s(text: str) -> str:
    return _converter().convert(text) if text else text
