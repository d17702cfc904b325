"""地区认证政策：读取 ``services/data/regions.yaml``，按行政区划代码前缀取政策。

The YAML is the single place where a province's rules live; this module only loads,
checks and resolves it. Lookup: the longest key that prefixes the region code wins, a key
may ``inherit`` another, and every chain ends at ``default``. Merging is shallow: a region
that sets ``cycle`` replaces the whole inherited ``cycle``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

DATA_FILE = Path(__file__).parent / "data" / "regions.yaml"
DEFAULT_KEY = "default"
CYCLE_KINDS = frozenset({"rolling_months", "calendar_window", "birthday_month"})

# Keys turned into typed fields; everything else is kept in RegionPolicy.extra.
_TYPED_KEYS = frozenset(
    {
        "province",
        "district",
        "apps",
        "contacts",
        "contact_advice",
        "cycle",
        "first_cycle",
        "suspension",
        "benefit_overrides",
        "reminder_months_before_due",
        "inherit",
        "region_code",
        "names",
        "places",
        "methods",
        "bind_limit",
    }
)
# What the methods in the data file may name (services.models.CertificationMethod values).
METHODS = frozenset({"face", "photo_review", "home_visit", "info_comparison"})


class RegionDataError(ValueError):
    """regions.yaml is malformed: raised at load time so a bad edit fails the tests."""


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str


@dataclass(frozen=True)
class CycleRule:
    """认证周期规则。kind: rolling_months / calendar_window / birthday_month."""

    kind: str
    source: str
    months: int | None = None  # rolling_months
    open_months_before_due: int | None = None  # rolling_months
    once_per_calendar_year: bool = False
    start_month: int | None = None  # calendar_window
    end_month: int | None = None  # calendar_window


@dataclass(frozen=True)
class FirstCycle:
    """首个认证周期：从未认证过的人须在 deadline 前认证，否则从 suspended_from 起暂停。"""

    window_start: dt.date
    deadline: dt.date
    suspended_from: dt.date
    source: str
    benefit_types: tuple[str, ...] = ()  # empty: every benefit type

    def applies_to(self, benefit_type: str | None) -> bool:
        return not self.benefit_types or benefit_type in self.benefit_types


@dataclass(frozen=True)
class SuspensionRule:
    rule: str
    source: str


@dataclass(frozen=True)
class RegionPolicy:
    """One region's certification policy, resolved for one benefit type."""

    code_prefix: str  # the YAML key that matched ("default" when none did)
    province: str
    district: str | None
    apps: tuple[str, ...]
    contacts: tuple[Contact, ...]
    contact_advice: str
    cycle: CycleRule
    first_cycle: FirstCycle | None
    suspension: SuspensionRule
    reminder_months_before_due: int | None
    methods: tuple[str, ...]  # the certification methods the region accepts
    bind_limit: int
    extra: Mapping[str, Any]  # home_visit, manual_photo, overseas, … with sources

    @property
    def hotline(self) -> str | None:
        return self.contacts[0].phone if self.contacts else None

    def accepts(self, method: str) -> bool:
        return str(method) in self.methods


@dataclass(frozen=True)
class Province:
    """A province as people name it: buttons, the NLU's place names."""

    name: str
    region_code: str


def policy_for(region_code: str | None, benefit_type: str | None = None) -> RegionPolicy:
    """The policy for a 6-digit region code (longest prefix wins) and a benefit type."""
    return _policy_for(region_code, str(benefit_type) if benefit_type is not None else None)


@lru_cache(maxsize=4096)  # the daily run asks for the same few policies a million times
def _policy_for(region_code: str | None, benefit_type: str | None) -> RegionPolicy:
    table = _table()
    key = _match(table, region_code or "")
    merged = _resolve(table, key)
    benefit = str(benefit_type) if benefit_type is not None else None
    cycle = merged["cycle"]
    overrides = merged.get("benefit_overrides") or {}
    if benefit is not None and benefit in overrides:
        cycle = overrides[benefit]
    first = merged.get("first_cycle")
    return RegionPolicy(
        code_prefix=key,
        province=merged["province"],
        district=merged.get("district"),
        apps=tuple(merged.get("apps") or ()),
        contacts=tuple(
            Contact(str(c["name"]), str(c["phone"])) for c in merged.get("contacts", ())
        ),
        contact_advice=merged["contact_advice"],
        cycle=_cycle_rule(cycle),
        first_cycle=_first_cycle(first) if first else None,
        suspension=SuspensionRule(merged["suspension"]["rule"], merged["suspension"]["source"]),
        reminder_months_before_due=merged.get("reminder_months_before_due"),
        methods=tuple(merged["methods"]),
        bind_limit=int(merged["bind_limit"]),
        extra=MappingProxyType({k: v for k, v in merged.items() if k not in _TYPED_KEYS}),
    )


def region_keys() -> tuple[str, ...]:
    """Every key of the data file (region-code prefixes and "default")."""
    return tuple(_table())


def provinces() -> tuple[Province, ...]:
    """The provinces the data file covers, in file order (the "哪个省？" buttons)."""
    return tuple(
        Province(str(data["province"]), str(data["region_code"]))
        for data in _table().values()
        if data.get("region_code")
    )


def place_codes() -> dict[str, str]:
    """Every name of a province, its apps, cities and districts → its 6-digit region code."""
    codes: dict[str, str] = {}
    for data in _table().values():
        for name in data.get("names") or ():
            codes[str(name)] = str(data["region_code"])
        codes.update({str(k): str(v) for k, v in (data.get("places") or {}).items()})
    return codes


def use_data_file(path: Path | str | None) -> None:
    """Read the policies from another file (an operator's own, a test's fifth province);
    None goes back to the shipped one. Checked at once: a bad file fails here."""
    global _data_file
    table = load_table(Path(path) if path else DATA_FILE)
    _data_file = Path(path) if path else DATA_FILE
    _loaded["table"] = table
    _policy_for.cache_clear()


def load_table(path: Path = DATA_FILE) -> dict[str, dict[str, Any]]:
    """Read and check the data file; keys become strings (YAML reads 61 as an int)."""
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    if not isinstance(raw, dict) or DEFAULT_KEY not in raw:
        raise RegionDataError(f"{path}: a mapping with a '{DEFAULT_KEY}' entry is required")
    table = {str(key): value or {} for key, value in raw.items()}
    for key in table:
        if key != DEFAULT_KEY and not key.isdigit():
            raise RegionDataError(f"region key {key!r} is not a region-code prefix")
        merged = _resolve(table, key)  # also checks inherit targets and loops
        for field in ("province", "contact_advice", "cycle", "suspension", "methods", "bind_limit"):
            if field not in merged:
                raise RegionDataError(f"region {key!r}: '{field}' missing")
        unknown = set(merged["methods"]) - METHODS
        if unknown or not merged["methods"]:
            raise RegionDataError(f"region {key!r}: methods {sorted(unknown)} unknown or none")
        code = table[key].get("region_code")
        if code is not None and not (isinstance(code, str) and code.isdigit() and len(code) == 6):
            raise RegionDataError(f"region {key!r}: region_code must be 6 digits in quotes")
        _cycle_rule(merged["cycle"])
        for cycle in (merged.get("benefit_overrides") or {}).values():
            _cycle_rule(cycle)
        if merged.get("first_cycle"):
            _first_cycle(merged["first_cycle"])
        if not merged["suspension"].get("source"):
            raise RegionDataError(f"region {key!r}: suspension has no source")
    return table


_data_file = DATA_FILE
_loaded: dict[str, dict[str, dict[str, Any]]] = {}  # the table, read once per data file


def _table() -> dict[str, dict[str, Any]]:
    table = _loaded.get("table")
    if table is None:
        table = _loaded["table"] = load_table(_data_file)
    return table


def _match(table: Mapping[str, Any], region_code: str) -> str:
    candidates = [k for k in table if k != DEFAULT_KEY and region_code.startswith(k)]
    return max(candidates, key=len) if candidates else DEFAULT_KEY


def _resolve(table: Mapping[str, dict[str, Any]], key: str) -> dict[str, Any]:
    chain: list[str] = []
    current: str | None = key
    while current is not None:
        if current in chain:
            raise RegionDataError(f"inherit loop: {' → '.join([*chain, current])}")
        if current not in table:
            raise RegionDataError(f"{chain[-1]!r} inherits unknown region {current!r}")
        chain.append(current)
        parent = table[current].get("inherit")
        current = str(parent) if parent is not None else None
    if chain[-1] != DEFAULT_KEY:
        chain.append(DEFAULT_KEY)
    merged: dict[str, Any] = {}
    for name in reversed(chain):
        merged.update({k: v for k, v in table[name].items() if k != "inherit"})
    return merged


def _cycle_rule(data: Mapping[str, Any]) -> CycleRule:
    kind = data.get("kind")
    if kind not in CYCLE_KINDS:
        raise RegionDataError(f"unknown cycle kind {kind!r}")
    if not data.get("source"):
        raise RegionDataError(f"cycle {kind} has no source")
    rule = CycleRule(
        kind=kind,
        source=data["source"],
        months=data.get("months"),
        open_months_before_due=data.get("open_months_before_due"),
        once_per_calendar_year=bool(data.get("once_per_calendar_year", False)),
        start_month=data.get("start_month"),
        end_month=data.get("end_month"),
    )
    if kind == "rolling_months" and not (isinstance(rule.months, int) and rule.months > 0):
        raise RegionDataError("rolling_months needs a positive 'months'")
    if kind == "calendar_window" and not (
        isinstance(rule.start_month, int)
        and isinstance(rule.end_month, int)
        and 1 <= rule.start_month <= rule.end_month <= 12
    ):
        raise RegionDataError("calendar_window needs 1 <= start_month <= end_month <= 12")
    return rule


def _first_cycle(data: Mapping[str, Any]) -> FirstCycle:
    try:
        first = FirstCycle(
            window_start=data["window_start"],
            deadline=data["deadline"],
            suspended_from=data["suspended_from"],
            source=data["source"],
            benefit_types=tuple(data.get("benefit_types") or ()),
        )
    except KeyError as missing:
        raise RegionDataError(f"first_cycle: {missing} missing") from None
    dates = (first.window_start, first.deadline, first.suspended_from)
    if not all(isinstance(d, dt.date) for d in dates) or not (
        first.window_start <= first.deadline < first.suspended_from
    ):
        raise RegionDataError("first_cycle needs dates window_start <= deadline < suspended_from")
    return first
