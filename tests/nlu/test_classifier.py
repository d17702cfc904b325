from __future__ import annotations

from pathlib import Path

import pytest

from nlu import classifier as classifier_module
from nlu.classifier import FALLBACK_INTENT, EmbeddedNLU
from tests.support import CATALOGUE_TASK_INTENTS


def assert_rasa_shape(result: dict, text: str) -> None:
    assert set(result) >= {"text", "intent", "intent_ranking", "entities", "response_selector"}
    assert result["text"] == text
    assert set(result["intent"]) == {"name", "confidence"}
    assert isinstance(result["intent"]["name"], str)
    assert 0.0 <= result["intent"]["confidence"] <= 1.0
    ranking = result["intent_ranking"]
    assert 1 <= len(ranking) <= 11  # top 10 (+ nlu_fallback first when it fires)
    assert ranking[0] == result["intent"]
    for item in ranking:
        assert set(item) == {"name", "confidence"}
        assert isinstance(item["confidence"], float)
    real = [item for item in ranking if item["name"] != FALLBACK_INTENT]
    assert [i["confidence"] for i in real] == sorted((i["confidence"] for i in real), reverse=True)
    for entity in result["entities"]:
        assert {"entity", "value", "start", "end", "extractor"} <= set(entity)
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert result["response_selector"]["all_retrieval_intents"] == ["faq"]


def test_knows_every_catalogue_intent(embedded_nlu, training_data):
    assert set(CATALOGUE_TASK_INTENTS) <= set(embedded_nlu.intents)
    assert set(embedded_nlu.intents) == set(training_data.intents)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("你好", "greet"),
        ("谢谢你", "thanks"),
        ("我要认证", "start_certification"),
        ("帮我妈认证", "certify_for_relative"),
        ("转人工", "human_handoff"),
        ("我认证过了没有", "check_status"),
    ],
)
def test_plain_task_intents(embedded_nlu, text, intent):
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    assert result["intent"]["name"] == intent


def test_faq_question_is_the_full_retrieval_intent(embedded_nlu):
    text = "确认按钮是灰色的点不了咋整"
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    assert result["intent"]["name"] == "faq/grey_button"
    faq = result["response_selector"]["faq"]
    assert faq["response"]["intent_response_key"] == "faq/grey_button"
    assert faq["response"]["utter_action"] == "utter_faq/grey_button"
    assert 0.0 < faq["response"]["confidence"] <= 1.0
    assert faq["ranking"][0]["intent_response_key"] == "faq/grey_button"
    assert all(item["intent_response_key"].startswith("faq/") for item in faq["ranking"])


def test_entities_come_with_the_parse(embedded_nlu):
    text = "幫我媽認證她叫李桂英身份證６１０１０３ １９６２０２１２６０６２"
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    values = {entity["entity"]: entity["value"] for entity in result["entities"]}
    assert values == {
        "relation": "妈妈",
        "person_name": "李桂英",
        "id_number": "610103196202126062",
    }
    assert result["intent"]["name"] == "certify_for_relative"


@pytest.mark.parametrize("text", ["", "   ", "。。。", "？？？！！", "……", "😀😀😀", "\n\t"])
def test_empty_or_punctuation_only_is_fallback(embedded_nlu, text):
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    assert result["intent"]["name"] == FALLBACK_INTENT


@pytest.mark.parametrize("text", ["asdfghjkl qwerty", "zzzz", "喵喵喵", "阿巴阿巴"])
def test_nonsense_is_fallback_but_ranking_keeps_real_candidates(embedded_nlu, text):
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    assert result["intent"]["name"] == FALLBACK_INTENT
    assert result["intent"]["confidence"] == pytest.approx(embedded_nlu.threshold)
    assert len(result["intent_ranking"]) > 1
    assert result["intent_ranking"][1]["name"] != FALLBACK_INTENT


def test_none_is_treated_as_empty(embedded_nlu):
    assert embedded_nlu.parse(None)["intent"]["name"] == FALLBACK_INTENT


def test_very_long_text_does_not_crash(embedded_nlu):
    text = "我妈瘫痪在床起不来" + "啊" * 10_000 + "能不能上门认证"
    result = embedded_nlu.parse(text)
    assert_rasa_shape(result, text)
    assert result["intent"]["name"] == "request_home_visit"
    assert {e["entity"] for e in result["entities"]} == {"relation"}


def test_threshold_is_configurable(embedded_nlu):
    strict = EmbeddedNLU(embedded_nlu._model, threshold=1.01)
    assert strict.parse("你好")["intent"]["name"] == FALLBACK_INTENT
    lenient = EmbeddedNLU(embedded_nlu._model, threshold=0.0)
    assert lenient.parse("喵喵喵")["intent"]["name"] != FALLBACK_INTENT


def test_heldout_accuracy_quality_gate(embedded_nlu, heldout_data):
    """Quality gate: ≥ 92 % of the held-out utterances get their intent (fallback = wrong)."""
    examples = heldout_data.examples
    assert len(examples) >= 150
    right = sum(embedded_nlu.parse(e.text)["intent"]["name"] == e.intent for e in examples)
    assert right / len(examples) >= 0.92, f"held-out accuracy {right}/{len(examples)}"


TINY_DATA = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 您好啊
    - 在吗
- intent: thanks
  examples: |
    - 谢谢
    - 多谢你
    - 太感谢了
- intent: faq/grey_button
  examples: |
    - 确认按钮是灰的
    - 按钮灰色按不了
    - 确认键点不动
"""


def make_project(directory: Path, data: str = TINY_DATA) -> Path:
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "data" / "nlu.yml").write_text(data, encoding="utf-8")
    (directory / "data" / "rules.yml").write_text('version: "3.1"\nrules: []\n', encoding="utf-8")
    return directory


def test_model_is_cached_and_retrained_when_data_changes(tmp_path, monkeypatch):
    project = make_project(tmp_path / "project")
    cache = tmp_path / "cache"
    first = EmbeddedNLU.load(project, cache_dir=cache)
    assert first.parse("你好呀")["intent_ranking"][0]["name"] == "greet"
    assert len(list(cache.glob("*.pkl"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("should have loaded the cached model")

    monkeypatch.setattr(classifier_module, "_train", no_training)
    second = EmbeddedNLU.load(project, cache_dir=cache)
    assert second.fingerprint == first.fingerprint
    monkeypatch.undo()

    make_project(project, TINY_DATA + "    - 确认那里灰了\n")
    third = EmbeddedNLU.load(project, cache_dir=cache)
    assert third.fingerprint != first.fingerprint
    assert len(list(cache.glob("*.pkl"))) == 2


def test_broken_cache_file_is_retrained(tmp_path):
    project = make_project(tmp_path / "project")
    cache = tmp_path / "cache"
    model = EmbeddedNLU.load(project, cache_dir=cache)
    [cache_file] = cache.glob("*.pkl")
    cache_file.write_bytes(b"not a pickle")
    again = EmbeddedNLU.load(project, cache_dir=cache)
    assert again.fingerprint == model.fingerprint
    assert again.parse("谢谢")["intent_ranking"][0]["name"] == "thanks"


def test_missing_training_data(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FileNotFoundError):
        EmbeddedNLU.load(tmp_path, cache_dir=tmp_path / "cache")


def test_second_load_reuses_the_cached_model(embedded_nlu):
    again = EmbeddedNLU.load()
    assert again.fingerprint == embedded_nlu.fingerprint
    assert again.parse("再见")["intent"]["name"] == "goodbye"


def test_the_fast_scorer_computes_what_scikit_learn_computes(embedded_nlu, heldout_data):
    """The parse's own arithmetic (no sparse matrices) gives scikit-learn's probabilities."""
    import numpy as np

    model = embedded_nlu._model
    for example in heldout_data.examples:
        features = classifier_module.featurize_text(classifier_module.normalize(example.text).text)
        if not classifier_module._has_content(features):
            continue
        np.testing.assert_allclose(
            embedded_nlu._scorer.probabilities(features),
            model.probabilities(features),
            rtol=1e-4,
            atol=1e-6,
        )
