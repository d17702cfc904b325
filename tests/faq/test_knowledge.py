"""The FAQ knowledge base: complete, sourced, short, region-aware, in sync with Rasa."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# Import the modules, not the package: under pytest's default import mode tests/faq shadows
# the package's __init__ (``faq`` becomes a namespace package of tests/faq and faq/).
from faq.knowledge import (
    COMMON_SOURCE_PREFIX,
    KNOWLEDGE_FILE,
    SHORT_LIMIT,
    FaqAnswer,
    KnowledgeError,
    UnknownIntent,
    answer,
    catalogue_intents,
    intents,
    load_entries,
)
from faq.rasa_responses import DOMAIN_FILE, domain_text, responses, write_domain_file
from tests.support import REGULATIONS

REPO = Path(__file__).resolve().parents[2]
SEEDS = REGULATIONS  # the seeds, shipped in docs/regulations

CATALOGUE = [
    "grey_button",
    "person_not_found",
    "account_locked",
    "phone_registered",
    "overseas",
    "face_failed",
    "face_tips",
    "cycle",
    "suspended",
    "download_app",
    "register",
    "login",
    "who_needs",
    "photo_requirements",
    "info_comparison",
    "fraud_penalty",
    "dependents",
    "contact",
    "no_smartphone",
    "is_free",
    "bind_limit",
    "why_certify",
]

SHAANXI, SHANXI, JIANGXI, GUANGXI = "610102", "140000", "360734", "450000"
PROVINCES = {SHAANXI: "陕西", SHANXI: "山西", JIANGXI: "江西", GUANGXI: "广西"}
APPS = {SHAANXI: "陕西养老保险", SHANXI: "民生山西", JIANGXI: "江西人社", GUANGXI: "老来网"}
REGIONS = [None, "", "110000", *PROVINCES]  # unknown, empty, uncovered province, the four

ALL_ANSWERS = [(name, region) for name in intents() for region in REGIONS]

# What counts as a next step: a phone number, an app, or an instruction to act.
NEXT_STEP = re.compile(
    r"\d{5,}|\d{3,4}-\d{3,}|APP|陕西养老保险|民生山西|江西人社|老来网|掌上12333"
    r"|联系|请|拨打|打开|找|问"
)


def last_sentence(text: str) -> str:
    parts = [p for p in re.split(r"[。！？!?]", text) if p.strip()]
    return parts[-1] if parts else ""


def test_every_catalogue_intent_has_an_entry():
    assert set(CATALOGUE) <= set(intents())
    assert set(catalogue_intents()) == set(CATALOGUE)


def test_extra_entries_cover_home_visits_and_relatives():
    assert {"home_visit", "relative_certify"} <= set(intents())


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_intents_answer_with_and_without_the_prefix(name):
    assert answer(f"faq/{name}") == answer(name)
    assert isinstance(answer(name), FaqAnswer)
    assert answer(name).intent == name


def test_unknown_intent_raises():
    with pytest.raises(UnknownIntent):
        answer("faq/weather")


@pytest.mark.parametrize(("name", "region"), ALL_ANSWERS)
def test_every_answer_has_a_source(name, region):
    result = answer(name, region)
    assert result.sources
    for source in result.sources:
        assert source.startswith(COMMON_SOURCE_PREFIX) or re.match(r"^\S+\.txt \S", source), (
            f"{name}: source {source!r} must name a seed file and a section"
        )


@pytest.mark.parametrize(("name", "region"), ALL_ANSWERS)
def test_sources_name_existing_seed_files(name, region):
    for source in answer(name, region).sources:
        if source.startswith(COMMON_SOURCE_PREFIX):
            continue
        seed = source.split()[0]
        assert (SEEDS / seed).is_file(), f"{name}: {seed} is not in {SEEDS}"


def test_only_is_free_relies_on_common_knowledge():
    common = {
        name
        for name in intents()
        for region in REGIONS
        if any(s.startswith(COMMON_SOURCE_PREFIX) for s in answer(name, region).sources)
    }
    assert common == {"is_free"}


@pytest.mark.parametrize(("name", "region"), ALL_ANSWERS)
def test_short_answers_are_short(name, region):
    result = answer(name, region)
    assert 0 < len(result.short) <= SHORT_LIMIT, f"{name} ({region}): {len(result.short)}"
    assert result.more is None or result.more.strip()


@pytest.mark.parametrize(("name", "region"), ALL_ANSWERS)
def test_every_answer_ends_with_a_next_step(name, region):
    result = answer(name, region)
    assert NEXT_STEP.search(last_sentence(result.short)), f"{name} ({region}): {result.short}"
    if result.more:
        assert NEXT_STEP.search(last_sentence(result.more)), f"{name} ({region}): {result.more}"


@pytest.mark.parametrize(("name", "region"), ALL_ANSWERS)
def test_no_placeholder_is_left_unfilled(name, region):
    result = answer(name, region)
    for text in (result.short, result.more or ""):
        assert "{" not in text and "}" not in text, f"{name} ({region}): {text}"


@pytest.mark.parametrize("name", ["grey_button", "download_app", "cycle", "contact"])
def test_region_aware_answers_differ_by_province_and_name_its_app(name):
    texts = {region: answer(name, region).text for region in PROVINCES}
    assert len(set(texts.values())) == len(PROVINCES), f"{name}: provinces share an answer"
    for region, text in texts.items():
        if name != "contact":
            assert APPS[region] in text, f"{name} ({region}) does not name {APPS[region]}"
        result = answer(name, region)
        assert result.province == PROVINCES[region]
        assert result.region_specific and not result.needs_region


def test_contact_gives_each_provinces_numbers():
    assert "12333" in answer("contact", SHAANXI).short
    assert "12333" in answer("contact", SHANXI).short
    assert "12333" in answer("contact", JIANGXI).short
    guangxi = answer("contact", GUANGXI).short
    assert "0771-5887824" in guangxi and "0771-5893927" in guangxi and "400-900-4889" in guangxi


def test_cycle_rules_per_province():
    shaanxi = answer("cycle", SHAANXI).short
    assert "12个月" in shaanxi and "一个自然年度" in shaanxi
    assert "12个月" in answer("cycle", SHANXI).short
    jiangxi = answer("cycle", JIANGXI).short
    assert "1月到6月" in jiangxi and "7月" in jiangxi and "暂停" in jiangxi
    guangxi = answer("cycle", GUANGXI).short
    assert "生日当月" in guangxi and "6个月" in guangxi and "抚恤金" in guangxi
    general = answer("cycle").short
    for rule in ("12个月", "1月到6月", "生日", "6个月"):
        assert rule in general


def test_dependents_are_certified_every_six_months():
    assert "6个月" in answer("dependents").short
    assert "6个月" in answer("dependents", GUANGXI).short


@pytest.mark.parametrize("region", REGIONS)
def test_bind_limit_says_four(region):
    assert "4" in answer("bind_limit", region).short


def test_suspension_mentions_back_pay_everywhere():
    for region in [None, *PROVINCES]:
        assert "补发" in answer("suspended", region).text


def test_photo_requirements_follow_jiangxi():
    text = answer("photo_requirements", JIANGXI).short
    for item in ("半身", "身份证", "15天", "日期"):
        assert item in text


def test_is_free_warns_of_scams():
    result = answer("is_free")
    assert "免费" in result.short and "骗" in result.short and "12333" in result.short
    assert not result.region_specific


@pytest.mark.parametrize("name", ["grey_button", "cycle", "download_app", "contact"])
@pytest.mark.parametrize("region", [None, "", "110000"])
def test_unknown_region_gives_the_general_answer_flagged_region_specific(name, region):
    result = answer(name, region)
    assert result.region_specific is True
    assert result.province is None
    assert result.needs_region
    assert result.short == answer(name).short


def test_district_codes_resolve_to_their_province():
    assert answer("cycle", "610102") == answer("cycle", "610000")
    assert answer("cycle", "360734").province == "江西"


def test_known_province_without_its_own_variant_fills_the_general_answer():
    result = answer("account_locked", JIANGXI)  # the seeds only describe Shaanxi's lockout
    assert result.province == "江西" and not result.needs_region


def test_loader_rejects_unknown_placeholders_and_missing_sources(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("x:\n  source: [a.txt 一]\n  answer: {short: '请找{nobody}'}\n", "utf-8")
    with pytest.raises(KnowledgeError):
        load_entries(bad)
    bad.write_text("x:\n  answer: {short: '请拨打12333'}\n", "utf-8")
    with pytest.raises(KnowledgeError):
        load_entries(bad)
    assert load_entries(KNOWLEDGE_FILE)


def test_rasa_responses_cover_every_entry_with_the_general_answer():
    generated = responses()
    assert set(generated) == {f"utter_faq/{name}" for name in intents()}
    for name in intents():
        assert generated[f"utter_faq/{name}"] == [{"text": answer(name).short}]


def test_domain_fragment_is_in_sync_with_knowledge_yml():
    assert DOMAIN_FILE.is_file(), "run: python -m faq.rasa_responses"
    assert DOMAIN_FILE.read_text("utf-8") == domain_text(), (
        "nlu/domain/faq.yml is stale: run python -m faq.rasa_responses"
    )


def test_domain_fragment_is_a_rasa_31_responses_file(tmp_path):
    import yaml

    written = write_domain_file(tmp_path / "faq.yml")
    data = yaml.safe_load(written.read_text("utf-8"))
    assert set(data) == {"version", "responses"}
    assert data["version"] == "3.1"
    for key, variants in data["responses"].items():
        assert key.startswith("utter_faq/")
        assert variants and all(set(v) == {"text"} for v in variants)
        assert all("{" not in v["text"] for v in variants)
