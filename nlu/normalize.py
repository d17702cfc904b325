"""Text normalisation for the embedded NLU, with a map back to the original offsets.

What it does, in order, and why:

* traditional → simplified Chinese (OpenCC ``t2s``): relatives abroad and people in Hong Kong
  type traditional characters (the Shaanxi guide warns about the 繁体 input method);
* full-width → half-width (``１３９``, ``Ｘ``, ``：``, the ideographic space): phone keyboards
  and voice input produce both;
* spaces and dashes *inside* an ID number or a mobile number are removed
  (``6101 0219 5203 1500 20``, ``139-1234-5678``) — only when what is left is exactly an
  18-character ID shape or an 11-digit mobile number, so dates and landlines stay as they are;
* a lowercase ``x`` as an ID number's check character becomes ``X``.

:func:`normalize` returns the normalised text and, for every normalised character, the index
of the original character it came from, so entity offsets can be reported against the text the
user actually sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Normalized", "normalize", "to_simplified", "to_halfwidth"]

_FULLWIDTH_OFFSET = 0xFEE0
# Separators people and voice input put inside long numbers.
_SEPARATORS = " \t\u00a0\u3000-‐‑‒–—―－_·.．"
_SEP_CLASS = "[" + re.escape(_SEPARATORS) + "]"
# A run of digits (and a trailing X/x) broken by single separators: "610102 1952 0315 002x".
_NUMBER_RUN = re.compile(rf"\d(?:{_SEP_CLASS}{{0,2}}[\dXx])+")
_ID_SHAPE = re.compile(r"\d{17}[\dXx]")
_MOBILE_SHAPE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True)
class Normalized:
    """A normalised text and the original index of each of its characters."""

    text: str
    original: str
    index: tuple[int, ...]  # index[i] = position in ``original`` of ``text[i]``

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of the normalised text onto the original text."""
        if start >= end:
            position = self.index[start] if start < len(self.index) else len(self.original)
            return position, position
        return self.index[start], self.index[end - 1] + 1


@lru_cache(maxsize=1)
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → simplified, one output character per input character.

    OpenCC converts phrases, which nearly always keeps the length; when it does not, the
    text is converted character by character so that offsets stay valid.
    """
    if not text or text.isascii():
        return text
    converter = _converter()
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    pieces = []
    for char in text:
        single = converter.convert(char)
        pieces.append(single if len(single) == 1 else char)
    return "".join(pieces)


def to_halfwidth(text: str) -> str:
    """Full-width ASCII variants and the ideographic space → their ASCII forms (same length)."""
    out = []
    for char in text:
        code = ord(char)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - _FULLWIDTH_OFFSET))
        elif code == 0x3000:
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _collapse_numbers(text: str, index: list[int]) -> tuple[str, list[int]]:
    """Remove separators inside ID-number and mobile-number shapes; uppercase the ID's x."""
    pieces: list[str] = []
    new_index: list[int] = []
    position = 0
    for match in _NUMBER_RUN.finditer(text):
        run = match.group()
        kept = [(i, c) for i, c in enumerate(run, match.start()) if c not in _SEPARATORS]
        compact = "".join(c for _, c in kept)
        if _ID_SHAPE.fullmatch(compact):
            compact = compact[:17] + compact[17].upper()
        elif not _MOBILE_SHAPE.fullmatch(compact) or compact == run:
            continue
        if compact == run:
            continue
        pieces.append(text[position : match.start()])
        new_index.extend(index[position : match.start()])
        pieces.append(compact)
        new_index.extend(index[i] for i, _ in kept)
        position = match.end()
    if not pieces:
        return text, index
    pieces.append(text[position:])
    new_index.extend(index[position:])
    return "".join(pieces), new_index


def normalize(text: str) -> Normalized:
    """Normalise ``text`` for entity extraction and classification (see the module doc)."""
    if not text:
        return Normalized("", text or "", ())
    converted = to_halfwidth(to_simplified(text))
    collapsed, index = _collapse_numbers(converted, list(range(len(converted))))
    return Normalized(collapsed, text, tuple(index))
