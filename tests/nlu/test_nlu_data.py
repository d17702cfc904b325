"""The training data itself: the catalogue is covered, examples are clean and consistent."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from nlu.entities import (
    RELATION_SYNONYMS,
    extract_entities,
    id_checksum_ok,
    region_codes,
)
from nlu.jieba_dictionary import DICTIONARY, dictionary_text, word_spans
from tests.support import CATALOGUE_FAQ_INTENTS, CATALOGUE_TASK_INTENTS

ROOT = Path(__file__).resolve().parents[2]

CATALOGUE = CATALOGUE_TASK_INTENTS + CATALOGUE_FAQ_INTENTS
ENTITY_TYPES = {"id_number", "phone", "person_name", "relation", "region"}


def canonical(text: str) -> str:
    return re.sub(r"[\s，,。.！!？?]", "", text).lower()


def test_every_catalogue_intent_has_at_least_30_examples(training_data):
    counts = Counter(example.intent for example in training_data.examples)
    missing = [intent for intent in CATALOGUE if counts[intent] < 30]
    assert not missing, {intent: counts[intent] for intent in missing}
    assert len(CATALOGUE) == 34


def test_no_example_is_in_two_intents(training_data):
    intents_of = defaultdict(set)
    for example in training_data.examples:
        intents_of[canonical(example.text)].add(example.intent)
    clashes = {text: intents for text, intents in intents_of.items() if len(intents) > 1}
    assert not clashes


def test_no_duplicate_examples(training_data):
    counts = Counter(canonical(example.text) for example in training_data.examples)
    assert not [text for text, count in counts.items() if count > 1]


def test_annotations_use_known_entities_and_valid_id_numbers(training_data, heldout_data):
    for example in training_data.examples + heldout_data.examples:
        for entity in example.entities:
            assert entity["entity"] in ENTITY_TYPES, example
            surface = example.text[entity["start"] : entity["end"]]
            compact = re.sub(r"[\s-]", "", surface)
            if entity["entity"] == "id_number":
                assert len(compact) == 18 and id_checksum_ok(compact), example
                assert entity["value"] in (surface, compact.upper()), example
            if entity["entity"] == "phone":
                assert re.fullmatch(r"1[3-9]\d{9}", compact), example
                assert entity["value"] in (surface, compact), example
    # every 18-digit number anywhere in the examples is a valid ID number
    for example in training_data.examples:
        for number in re.findall(r"\d{17}[\dXx]", example.text):
            assert id_checksum_ok(number), example


def test_annotations_agree_with_the_embedded_extractor(training_data):
    """The Rasa annotations and nlu/entities.py find the same entities in the same places."""
    disagreements = []
    for example in training_data.examples:
        annotated = sorted((e["entity"], e["start"], e["end"]) for e in example.entities)
        extracted = sorted(
            (e["entity"], e["start"], e["end"]) for e in extract_entities(example.text)
        )
        if annotated != extracted:
            disagreements.append((example.text, annotated, extracted))
    assert not disagreements


def test_annotations_cover_whole_words_as_rasas_jieba_tokenizer_cuts_them(training_data):
    """`rasa data validate` warns of (and DIET mislearns) an entity that cuts a word: 妈 in 我妈."""
    cut = []
    for example in training_data.examples:
        words = word_spans(example.text)
        starts, ends = {s for s, _ in words}, {e for _, e in words}
        for entity in example.entities:
            if entity["start"] not in starts or entity["end"] not in ends:
                cut.append((example.text, example.text[entity["start"] : entity["end"]]))
    assert not cut


def test_jieba_dictionary_is_generated_from_the_tables():
    # jieba does not care about the order of the lines (nor does a trained model)
    committed = DICTIONARY.read_text(encoding="utf-8").splitlines()
    assert sorted(committed) == sorted(dictionary_text().splitlines()), (
        "run: python -m nlu.jieba_dictionary"
    )


def test_synonyms_match_the_embedded_tables(training_data):
    expected = {surface: value for surface, value in RELATION_SYNONYMS.items() if surface != value}
    expected.update(region_codes())
    assert training_data.synonyms == expected
    assert set(training_data.lookups["relation"]) == set(RELATION_SYNONYMS)
    assert set(training_data.lookups["region"]) == set(region_codes())


def test_heldout_is_separate_and_covers_every_intent(training_data, heldout_data):
    training = {canonical(example.text) for example in training_data.examples}
    overlap = [e.text for e in heldout_data.examples if canonical(e.text) in training]
    assert not overlap
    assert len(heldout_data.examples) >= 150
    assert set(CATALOGUE) <= {example.intent for example in heldout_data.examples}
    assert {e.intent for e in heldout_data.examples} <= set(training_data.intents)


def test_rasa_files_are_valid_yaml_in_the_3_1_format():
    document = yaml.safe_load((ROOT / "nlu" / "data" / "nlu.yml").read_text(encoding="utf-8"))
    assert document["version"] == "3.1"
    for item in document["nlu"]:
        assert len({"intent", "synonym", "lookup", "regex"} & set(item)) == 1
        assert isinstance(item["examples"], str)
    config = yaml.safe_load((ROOT / "nlu" / "config.yml").read_text(encoding="utf-8"))
    assert config["language"] == "zh"
    names = [component["name"] for component in config["pipeline"]]
    for required in (
        "JiebaTokenizer",
        "CountVectorsFeaturizer",
        "DIETClassifier",
        "EntitySynonymMapper",
        "ResponseSelector",
        "FallbackClassifier",
    ):
        assert required in names
    char_ngrams = [c for c in config["pipeline"] if c.get("analyzer") == "char_wb"]
    assert char_ngrams and char_ngrams[0]["min_ngram"] == 1 and char_ngrams[0]["max_ngram"] == 4
    [selector] = [c for c in config["pipeline"] if c["name"] == "ResponseSelector"]
    assert selector["retrieval_intent"] == "faq"
    policies = {policy["name"] for policy in config["policies"]}
    assert {"RulePolicy", "MemoizationPolicy", "TEDPolicy"} <= policies
