"""居民身份证号码（GB 11643）：规范化、校验、性别与出生日期、脱敏显示。

Resident ID numbers are checked for length, format, checksum (python-stdnum's
``stdnum.cn.ric`` helper) and a real, past birth date. The region prefix is *not* a
reason to reject a number: ``stdnum.cn.ric.validate('610102195203150020')`` fails because
Xi'an Xincheng's code 610102 dates from 1983, yet people born in 1952 were given that code
when their card was issued. An anachronistic prefix is normal for retirees and accepted
silently; a prefix that is no known region code at all only yields a warning.

Masking follows DESIGN.md: ``6101**********0020`` (first 4, last 4) and ``139****5678``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from stdnum.cn import ric

from services.clock import system_clock

__all__ = [
    "IdCard",
    "InvalidIdNumber",
    "mask_id_number",
    "mask_id_numbers_in_text",
    "mask_phone",
    "normalise_id_number",
    "parse_id_number",
]

# Spaces a clerk or a phone keyboard may put inside a number: ASCII, full-width, no-break,
# zero-width, and the separators people type between digit groups.
_SEPARATORS = re.compile(r"[\s\u3000\u00a0\u200b\u200c\u200d\ufeff\-_.·]+")
_ID_PATTERN = re.compile(r"\d{17}[\dX]")
EARLIEST_BIRTH_DATE = dt.date(1880, 1, 1)


class InvalidIdNumber(ValueError):
    """The text is not a valid resident ID number; ``reason`` is a sentence for a clerk."""

    def __init__(self, reason: str, code: str = "invalid"):
        super().__init__(reason)
        self.reason = reason
        self.code = code  # empty / length / old_15_digit / format / checksum / birth_date


@dataclass(frozen=True)
class IdCard:
    number: str  # 18 characters, upper-case X
    birth_date: dt.date
    gender: str  # 'M' / 'F' (the 17th digit: odd for men)
    birth_place: str | None = None  # e.g. '陕西省新城区' when the prefix is a known code
    warnings: tuple[str, ...] = field(default=())

    @property
    def region_prefix(self) -> str:
        return self.number[:6]

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)

    def age_on(self, day: dt.date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


def normalise_id_number(text: object) -> str:
    """Strip spaces and separators, full-width → half-width, lower-case x → X."""
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text))  # full-width digits and Ｘ → ASCII
    return _SEPARATORS.sub("", value).upper()


def parse_id_number(text: object, *, today: dt.date | None = None) -> IdCard:
    """Validate an 18-character resident ID number and read birth date and gender from it.

    Raises :class:`InvalidIdNumber` with a reason in Chinese.
    """
    number = normalise_id_number(text)
    if not number:
        raise InvalidIdNumber("身份证号码为空", "empty")
    if len(number) == 15 and number.isdigit():
        raise InvalidIdNumber("这是15位的旧身份证号码，请填写18位的新号码", "old_15_digit")
    if len(number) != 18:
        raise InvalidIdNumber(f"您输入了{len(number)}位，身份证号码是18位", "length")
    if not _ID_PATTERN.fullmatch(number):
        raise InvalidIdNumber("身份证号码只能是数字，最后一位可以是X", "format")
    try:
        birth_date = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            f"身份证号码中的出生日期 {number[6:10]}-{number[10:12]}-{number[12:14]} 不存在",
            "birth_date",
        ) from None
    today = today or system_clock.today()
    if birth_date > today:
        raise InvalidIdNumber(
            f"身份证号码中的出生日期 {birth_date.isoformat()} 晚于今天", "birth_date"
        )
    if birth_date < EARLIEST_BIRTH_DATE:
        raise InvalidIdNumber(
            f"身份证号码中的出生日期 {birth_date.isoformat()} 不合理", "birth_date"
        )
    expected = ric.calc_check_digit(number)
    if number[-1] != expected:
        # The expected digit is deliberately not shown: the typo is usually elsewhere, and
        # "fixing" the last digit would turn a wrong number into a valid-looking wrong one.
        raise InvalidIdNumber("身份证号码的校验位不对，请逐位核对：号码中有数字录错了", "checksum")
    gender = "M" if int(number[16]) % 2 else "F"
    birth_place, warnings = _birth_place(number[:6])
    return IdCard(number, birth_date, gender, birth_place, warnings)


@lru_cache(maxsize=8192)
def _birth_place(prefix: str) -> tuple[str | None, tuple[str, ...]]:
    """Place name for a 6-digit prefix, ignoring when the code was created (see module doc)."""
    from stdnum import numdb

    info: dict[str, str] = {}
    for _part, props in numdb.get("cn/loc").info(prefix):
        info.update(props)
    province = info.get("province")
    if not province:
        return None, (f"身份证号码前6位 {prefix} 不是已知的行政区划代码，请核对",)
    counties = [c.split("]", 1)[-1] for c in info.get("county", "").split(",") if c]
    if not counties:
        return province, (f"身份证号码前6位 {prefix} 不是已知的区县代码，请核对",)
    county = counties[-1]  # the newest name for the code
    return (province if county == province else province + county), ()


def mask_id_number(number: object) -> str:
    """``610102195203150020`` → ``6101**********0020`` (first 4 and last 4 shown)."""
    value = normalise_id_number(number)
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(phone: object) -> str:
    """Mobile ``13912345678`` → ``139****5678``; other numbers keep only their last 4 digits."""
    if phone is None:
        return ""
    value = _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(phone)))
    if len(value) == 11 and value.isdigit() and value.startswith("1"):  # a mobile number
        return value[:3] + "****" + value[-4:]
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_id_numbers_in_text(text: str) -> str:
    """Mask every 18-character ID number inside free text (log lines, chat messages)."""
    return _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group(0)), text)


_MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def mask_personal_numbers(text: str) -> str:
    """ID numbers and mobile numbers inside free text, masked: what every log line and every
    free-text field at rest (a handoff's reason, a home visit's address or note) goes through."""
    return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), mask_id_numbers_in_text(text))
