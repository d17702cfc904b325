"""Region-aware FAQ answers, read from ``faq/knowledge.yml``.

Every entry answers one FAQ intent (``faq/<name>``) with a general answer and, where the seed
documents differ by province, one answer per province keyed by region-code prefix ("61",
"14", "36", "45"). Placeholders such as ``{app}`` or ``{phone}`` are filled from the region
policy of ``services.regions`` (its ``default`` policy when the region is unknown).

``answer("faq/cycle", "610102")`` gives Shaanxi's answer; ``answer("cycle")`` gives the general
one with ``region_specific=True`` (and ``needs_region``), so the dialogue can ask for the
province.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.regions import RegionPolicy, policy_for

KNOWLEDGE_FILE = Path(__file__).with_name("knowledge.yml")
INTENT_PREFIX = "faq/"
SHORT_LIMIT = 150  # characters of the first part of an answer
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLACEHOLDERS = frozenset({"province", "app", "apps", "phone", "contacts", "contact_advice"})
COMMON_SOURCE_PREFIX = "common:"


class KnowledgeError(ValueError):
    """knowledge.yml is malformed: raised at load time so a bad edit fails the tests."""


class UnknownIntent(KeyError):
    """No FAQ entry answers this intent."""


@dataclass(frozen=True)
class FaqAnswer:
    intent: str  # the entry name, without "faq/"
    short: str  # ≤ 150 characters, ends with a next step
    more: str | None  # the rest, shown on request
    sources: tuple[str, ...]  # "<seed file> <section>" or "common: …"
    province: str | None  # province name (陕西 …) the answer was made for; None if unknown
    region_specific: bool  # the answer to this question differs by province

    @property
    def needs_region(self) -> bool:
        """The question depends on the province and the province is not known yet."""
        return self.region_specific and self.province is None

    @property
    def text(self) -> str:
        """Short and more together, for channels that show one message."""
        return f"{self.short}\n{self.more}" if self.more else self.short


@dataclass(frozen=True)
class _Variant:
    short: str
    more: str | None
    sources: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    name: str
    question: str
    catalogue: bool
    general: _Variant
    provinces: Mapping[str, _Variant]


def intents() -> list[str]:
    """Names of every FAQ entry (without "faq/"), in file order."""
    return list(_entries())


def catalogue_intents() -> list[str]:
    """Names of the entries that answer an intent of the contract catalogue."""
    return [name for name, entry in _entries().items() if entry.catalogue]


def question(intent: str) -> str:
    """The question an entry answers, in plain words (for menus)."""
    return _entry(intent).question


def answer(intent: str, region_code: str | None = None) -> FaqAnswer:
    """The answer to ``intent`` ("faq/grey_button" or "grey_button") for a region code."""
    entry = _entry(intent)
    code = str(region_code).strip() if region_code is not None else ""
    policy = policy_for(code or None)
    known = policy.code_prefix != "default"
    variant = entry.general
    if known:
        keys = [key for key in entry.provinces if code.startswith(key)]
        if keys:
            variant = entry.provinces[max(keys, key=len)]
    values = _values(policy)
    return FaqAnswer(
        intent=entry.name,
        short=_fill(variant.short, values),
        more=_fill(variant.more, values) if variant.more else None,
        sources=variant.sources,
        province=policy.province if known else None,
        region_specific=bool(entry.provinces),
    )


def province_keys() -> list[str]:
    """Every region prefix that has a province-specific answer somewhere."""
    keys = {key for entry in _entries().values() for key in entry.provinces}
    return sorted(keys)


def reload() -> None:
    """Forget the cached file (after editing knowledge.yml in a running process)."""
    _entries.cache_clear()


def load_entries(path: Path = KNOWLEDGE_FILE) -> dict[str, _Entry]:
    """Read and check a knowledge file."""
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict) or not raw:
        raise KnowledgeError(f"{path}: a mapping of FAQ entries is required")
    entries: dict[str, _Entry] = {}
    for name, data in raw.items():
        if not isinstance(data, dict):
            raise KnowledgeError(f"{name}: an entry must be a mapping")
        sources = _sources(name, data.get("source"))
        if not sources:
            raise KnowledgeError(f"{name}: no source")
        if "answer" not in data:
            raise KnowledgeError(f"{name}: no answer")
        general = _variant(name, data["answer"], sources)
        provinces: dict[str, _Variant] = {}
        for key, province_data in (data.get("provinces") or {}).items():
            key = str(key)
            if not key.isdigit():
                raise KnowledgeError(f"{name}: province key {key!r} is not a region prefix")
            own = _sources(f"{name}.{key}", province_data.get("source"))
            provinces[key] = _variant(f"{name}.{key}", province_data, own or sources)
        entries[str(name)] = _Entry(
            name=str(name),
            question=str(data.get("question") or name),
            catalogue=bool(data.get("catalogue", False)),
            general=general,
            provinces=provinces,
        )
    return entries


@cache
def _entries() -> dict[str, _Entry]:
    return load_entries(KNOWLEDGE_FILE)


def _entry(intent: str) -> _Entry:
    name = intent.removeprefix(INTENT_PREFIX)
    try:
        return _entries()[name]
    except KeyError:
        raise UnknownIntent(intent) from None


def _sources(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s.strip() for s in items):
        raise KnowledgeError(f"{where}: source must be a string or a list of strings")
    return tuple(s.strip() for s in items)


def _variant(where: str, data: Any, sources: tuple[str, ...]) -> _Variant:
    if not isinstance(data, dict) or not isinstance(data.get("short"), str):
        raise KnowledgeError(f"{where}: an answer needs a 'short' text")
    more = data.get("more")
    if more is not None and not isinstance(more, str):
        raise KnowledgeError(f"{where}: 'more' must be a text")
    for text in (data["short"], more or ""):
        unknown = set(PLACEHOLDER.findall(text)) - PLACEHOLDERS
        if unknown:
            raise KnowledgeError(f"{where}: unknown placeholder(s) {sorted(unknown)}")
    return _Variant(
        short=data["short"].strip(), more=more.strip() if more else None, sources=sources
    )


def _values(policy: RegionPolicy) -> dict[str, str]:
    phones: dict[str, list[str]] = {}
    for contact in policy.contacts:
        phones.setdefault(contact.name, []).append(contact.phone)
    return {
        "province": policy.province,
        "app": policy.apps[0] if policy.apps else "",
        "apps": "、".join(policy.apps),
        "phone": policy.hotline or policy_for(None).hotline,
        "contacts": "；".join(f"{name}：{'、'.join(nums)}" for name, nums in phones.items()),
        "contact_advice": policy.contact_advice,
    }


def _fill(text: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
