"""The embedded NLU: intent classification + entities, answering in Rasa's ``/model/parse`` shape.

Features (all sparse, TF-IDF with sublinear term frequency):

* jieba words and word bigrams (a private ``jieba.Tokenizer`` with the domain's words added);
* a person's name (found by the entity extractor) is one placeholder character, so that a bare
  name reads as a name, whichever name it is;
* character n-grams 1–4 — robust to typos, dialect and voice-to-text without punctuation;
* toneless-pinyin syllable n-grams 1–3 — homophone typos (认正 / 认证, 确任 / 确认,
  按扭 / 按钮) share their pinyin with the right word.

ID numbers, mobile numbers and other long digit runs are replaced by placeholder characters
before featurising, so that the classifier sees "an ID number here", not its digits.

The classifier is a multinomial logistic regression (its softmax probabilities are the
confidences). A parse does the trained model's arithmetic itself (:class:`_FastScorer`: one
dictionary lookup per n-gram, no sparse matrices), a fraction of scikit-learn's per-call cost. It trains from ``nlu/data/*.yml`` in a few seconds and is cached on disk under a
key made of the training files' content, the feature settings and this module's version.

Output, exactly Rasa's shape::

    {"text": ..., "intent": {"name", "confidence"}, "intent_ranking": [...top 10...],
     "entities": [{"entity", "value", "start", "end", "extractor", "text"}...],
     "response_selector": {"all_retrieval_intents": ["faq"],
                           "faq": {"response": {"intent_response_key", "confidence",
                                                "utter_action", "responses"},
                                   "ranking": [...]}}}

FAQ questions are answered with the full retrieval intent as ``intent.name``
(``faq/grey_button``); the ``response_selector`` block is there for Rasa compatibility. When the
top confidence is below the threshold the intent is ``nlu_fallback`` (as Rasa's
FallbackClassifier does: its confidence is the threshold, and it is put first in
``intent_ranking`` before the real candidates).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import re
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from nlu.entities import RELATION_SYNONYMS, extract_entities, region_codes
from nlu.normalize import normalize
from nlu.training_data import TrainingData, load_training_data

__all__ = [
    "DEFAULT_PROJECT_DIR",
    "DEFAULT_THRESHOLD",
    "FALLBACK_INTENT",
    "EmbeddedNLU",
    "featurize_text",
]

log = logging.getLogger(__name__)

CODE_VERSION = "3"  # bump when features or training change in a way the cache key misses
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parent


def _fallback_threshold(project_dir: Path = DEFAULT_PROJECT_DIR) -> float:
    """The FallbackClassifier's threshold in ``config.yml``: one number, both engines."""
    import yaml

    config = yaml.safe_load((project_dir / "config.yml").read_text(encoding="utf-8"))
    [fallback] = [c for c in config["pipeline"] if c["name"] == "FallbackClassifier"]
    return float(fallback["threshold"])


DEFAULT_THRESHOLD = _fallback_threshold()
FALLBACK_INTENT = "nlu_fallback"
RETRIEVAL_INTENT = "faq"
RANKING_LENGTH = 10
MAX_ENTITY_CHARS = 2000  # entities are looked for in the first 2,000 characters
MAX_CLASSIFY_CHARS = 400  # a longer text is classified on its head and its tail

# Feature blocks and their weights; the classifier's regularisation.
HYPERPARAMETERS = {
    "word_weight": 1.0,
    "char_weight": 1.0,
    "pinyin_weight": 0.6,
    "C": 200.0,
}

_ID_PLACEHOLDER = "\ue000"
_PHONE_PLACEHOLDER = "\ue001"
_NUMBER_PLACEHOLDER = "\ue002"
_NAME_PLACEHOLDER = "\ue003"
_ID_SHAPE = re.compile(r"(?<!\d)\d{17}[\dX](?![\dA-Za-z])")
_MOBILE_SHAPE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_LONG_NUMBER = re.compile(r"\d{6,}")
_REPEATS = re.compile(r"(.)\1{3,}")  # 啊啊啊啊啊啊 → 啊啊啊
_PLACEHOLDERS = _ID_PLACEHOLDER + _PHONE_PLACEHOLDER + _NUMBER_PLACEHOLDER + _NAME_PLACEHOLDER

_DOMAIN_WORDS = (
    "认证",
    "资格认证",
    "生存认证",
    "刷脸",
    "人脸识别",
    "人脸认证",
    "查无此人",
    "确认按钮",
    "社保卡",
    "验证码",
    "老年机",
    "老人机",
    "智能手机",
    "抚恤金",
    "供养直系亲属",
    "上门认证",
    "转人工",
    "人工客服",
    "拍照认证",
    "养老金",
    "退休金",
    "冒领",
    "停发",
    "补发",
    "相似度",
    "人工审核",
    "掌上12333",
    "信息比对",
    "使领馆",
    "已注册",
    "解锁",
)


# --------------------------------------------------------------------------- features


_tokenizer_lock = threading.Lock()
_tokenizer = None


def _jieba():
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in (*_DOMAIN_WORDS, *region_codes(), *RELATION_SYNONYMS):
                    tokenizer.add_word(word, freq=20000)
                _tokenizer = tokenizer
    return _tokenizer


@lru_cache(maxsize=20000)
def _pinyin(char: str) -> str:
    if not ("\u4e00" <= char <= "\u9fff"):
        return char
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(char, style=Style.NORMAL)[0]


def featurize_text(normalized_text: str) -> str:
    """The text the classifier sees: placeholders for numbers, lowercase, no punctuation."""
    text = _ID_SHAPE.sub(_ID_PLACEHOLDER, normalized_text)
    text = _MOBILE_SHAPE.sub(_PHONE_PLACEHOLDER, text)
    text = _LONG_NUMBER.sub(_NUMBER_PLACEHOLDER, text)
    text = text.lower()
    kept = []
    for char in text:
        if char.isalnum() or char in _PLACEHOLDERS:
            kept.append(char)
        elif kept and kept[-1] != " ":
            kept.append(" ")
    text = _REPEATS.sub(r"\1\1\1", "".join(kept).strip())
    if len(text) > MAX_CLASSIFY_CHARS:
        head = MAX_CLASSIFY_CHARS * 2 // 3
        text = text[:head] + " " + text[-(MAX_CLASSIFY_CHARS - head) :]
    return text


def _mask_names(text: str, entities: list[dict], normalized_text: str) -> str:
    """The normalised text with each person's name replaced by one placeholder character.

    A name says nothing about the intent (赵建国 alone is an answer, not an FAQ question), and
    the classifier should not learn the training data's particular names: it sees "a name
    here", found by the entity extractor (``entities`` has offsets into ``text``).
    """
    names = [e for e in entities if e["entity"] == "person_name"]
    if not names:
        return normalized_text
    masked = text
    for entity in sorted(names, key=lambda e: e["start"], reverse=True):
        masked = masked[: entity["start"]] + _NAME_PLACEHOLDER + masked[entity["end"] :]
    return normalize(masked).text


def _training_features(text: str) -> str:
    normalized = normalize(text)
    return featurize_text(_mask_names(text, extract_entities(normalized), normalized.text))


def _words(text: str) -> list[str]:
    tokens = [t for t in _jieba().lcut(text, HMM=False) if t.strip()]
    return tokens + [a + "_" + b for a, b in zip(tokens, tokens[1:], strict=False)]


def _chars(text: str) -> list[str]:
    grams = []
    for chunk in text.split():
        length = len(chunk)
        for n in range(1, 5):
            grams.extend(chunk[i : i + n] for i in range(length - n + 1))
    return grams


def _syllables(text: str) -> list[str]:
    grams = []
    for chunk in text.split():
        syllables = [_pinyin(char) for char in chunk]
        length = len(syllables)
        for n in range(1, 4):
            grams.extend(" ".join(syllables[i : i + n]) for i in range(length - n + 1))
    return grams


def _has_content(text: str) -> bool:
    return any(char.isalnum() or char in _PLACEHOLDERS for char in text)


# --------------------------------------------------------------------------- the model


@dataclass
class _Model:
    """What is trained and cached: three vectorisers and the classifier."""

    vectorizers: list  # [(name, TfidfVectorizer, weight)]
    classifier: object
    intents: list[str]
    fingerprint: str

    def features(self, texts: list[str]):
        blocks = [weight * vec.transform(texts) for _, vec, weight in self.vectorizers]
        return sp.hstack(blocks, format="csr")

    def probabilities(self, text: str) -> np.ndarray:
        return self.classifier.predict_proba(self.features([text]))[0]


class _FastScorer:
    """The trained model's arithmetic for one text, without scikit-learn's per-call overhead.

    ``TfidfVectorizer.transform`` + ``predict_proba`` build sparse matrices and validate them
    for every call — most of a parse. The same numbers come from one dictionary per feature
    block (term → column, idf) and the classifier's weight rows: count the block's terms,
    sublinear tf × idf, L2-normalise the block, times its weight, then the softmax over
    ``intercept + Σ value × weight row``. Identical probabilities (to float rounding).
    """

    def __init__(self, model: _Model):
        self.blocks = []
        offset = 0
        for _, vectorizer, weight in model.vectorizers:
            idf = vectorizer.idf_
            terms = {
                term: (offset + column, float(idf[column]))
                for term, column in vectorizer.vocabulary_.items()
            }
            self.blocks.append((vectorizer.analyzer, terms, float(weight)))
            offset += len(idf)
        self.model = model
        coef = model.classifier.coef_
        # Two intents only (a tiny test set): a binary model, whose arithmetic differs.
        self.multinomial = coef.shape[0] == len(model.intents) > 2
        self.weights = np.ascontiguousarray(coef.T, dtype=np.float64)
        self.intercept = np.asarray(model.classifier.intercept_, dtype=np.float64)

    def probabilities(self, text: str) -> np.ndarray:
        if not self.multinomial:
            return self.model.probabilities(text)
        columns: list[int] = []
        values: list[float] = []
        for analyzer, terms, weight in self.blocks:
            counts: dict[int, list] = {}
            for gram in analyzer(text):
                found = terms.get(gram)
                if found is not None:
                    entry = counts.get(found[0])
                    if entry is None:
                        counts[found[0]] = [1, found[1]]
                    else:
                        entry[0] += 1
            if not counts:
                continue
            block = [(1.0 + math.log(n)) * idf for n, idf in counts.values()]
            scale = weight / math.sqrt(sum(v * v for v in block))
            columns.extend(counts)
            values.extend(v * scale for v in block)
        logits = self.intercept.copy()
        if columns:
            logits += np.asarray(values) @ self.weights[columns]
        logits -= logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()


def _build_vectorizers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    def vectorizer(analyzer):
        return TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, dtype=np.float32)

    return [
        ("word", vectorizer(_words), HYPERPARAMETERS["word_weight"]),
        ("char", vectorizer(_chars), HYPERPARAMETERS["char_weight"]),
        ("pinyin", vectorizer(_syllables), HYPERPARAMETERS["pinyin_weight"]),
    ]


def _train(data: TrainingData, fingerprint: str) -> _Model:
    from sklearn.linear_model import LogisticRegression

    texts = [_training_features(example.text) for example in data.examples]
    labels = [example.intent for example in data.examples]
    vectorizers = _build_vectorizers()
    blocks = [weight * vec.fit_transform(texts) for _, vec, weight in vectorizers]
    matrix = sp.hstack(blocks, format="csr")
    classifier = LogisticRegression(C=HYPERPARAMETERS["C"], max_iter=3000)
    classifier.fit(matrix, labels)
    return _Model(vectorizers, classifier, list(classifier.classes_), fingerprint)


def _training_files(project_dir: Path) -> list[Path]:
    data_dir = project_dir / "data"
    files = sorted(data_dir.glob("*.yml")) + sorted(data_dir.glob("*.yaml"))
    return [path for path in files if "nlu:" in path.read_text(encoding="utf-8")]


def _fingerprint(files: list[Path]) -> str:
    import sklearn

    digest = hashlib.sha256()
    digest.update(f"code={CODE_VERSION};sklearn={sklearn.__version__};".encode())
    digest.update(repr(sorted(HYPERPARAMETERS.items())).encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def default_cache_dir() -> Path:
    """A per-user folder in the temp dir (pickles are only loaded from a folder of ours)."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"pension-assistant-nlu-{user}"


# --------------------------------------------------------------------------- public API


class EmbeddedNLU:
    """Parse user messages into intents and entities, Rasa ``/model/parse`` compatible."""

    def __init__(self, model: _Model, threshold: float = DEFAULT_THRESHOLD) -> None:
        self._model = model
        self._scorer = _FastScorer(model)
        self.threshold = threshold
        self._faq_indices = [
            i for i, name in enumerate(model.intents) if name.startswith(RETRIEVAL_INTENT + "/")
        ]

    # -- construction

    @classmethod
    def load(
        cls,
        project_dir: Path = DEFAULT_PROJECT_DIR,
        cache_dir: Path | None = None,
        threshold: float | None = None,
    ) -> EmbeddedNLU:
        """Train from ``project_dir/data/*.yml`` or load the cached model for those files.

        ``project_dir`` is the Rasa project folder (``nlu/``). The cache file is named after a
        hash of the training files, the feature settings and the code version, so changing
        the data retrains; it is written atomically, so concurrent workers do not clash.
        """
        project_dir = Path(project_dir)
        files = _training_files(project_dir)
        if not files:
            raise FileNotFoundError(f"no NLU training data in {project_dir / 'data'}")
        fingerprint = _fingerprint(files)
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_file = cache_dir / f"embedded-nlu-{fingerprint}.pkl"
        model = None
        if cache_file.exists():
            try:
                with cache_file.open("rb") as handle:
                    model = pickle.load(handle)  # our own file, in our own cache folder
                if getattr(model, "fingerprint", None) != fingerprint:
                    model = None
            except Exception as error:  # noqa: BLE001 — a broken cache file only means retrain
                log.warning("ignoring unreadable NLU cache %s: %s", cache_file, error)
                model = None
        if model is None:
            model = _train(load_training_data(files), fingerprint)
            try:
                cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
                with os.fdopen(handle, "wb") as out:
                    pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, cache_file)
            except OSError as error:
                log.warning("could not cache the NLU model in %s: %s", cache_dir, error)
        _jieba()  # warm the tokenizer now rather than in the first request
        return cls(model, DEFAULT_THRESHOLD if threshold is None else threshold)

    @classmethod
    def train(cls, data: TrainingData, threshold: float | None = None) -> EmbeddedNLU:
        """Train from in-memory training data (no cache)."""
        model = _train(data, fingerprint="in-memory")
        return cls(model, DEFAULT_THRESHOLD if threshold is None else threshold)

    # -- properties

    @property
    def intents(self) -> list[str]:
        return list(self._model.intents)

    @property
    def fingerprint(self) -> str:
        return self._model.fingerprint

    # -- parsing

    def parse(self, text: str) -> dict:
        """Intent, ranking, entities and the FAQ response selection for one message."""
        text = "" if text is None else str(text)
        head = text[:MAX_ENTITY_CHARS]
        normalized = normalize(head)
        entities = extract_entities(normalized) if head.strip() else []
        if len(text) > MAX_ENTITY_CHARS:  # classify a very long text on its head and tail
            ends = text[:MAX_CLASSIFY_CHARS] + "\n" + text[-MAX_CLASSIFY_CHARS:]
            features = featurize_text(normalize(ends).text)
        else:
            features = featurize_text(_mask_names(head, entities, normalized.text))
        if not _has_content(features):
            return self._fallback_result(text, entities, [], confidence=1.0)
        probabilities = self._scorer.probabilities(features)
        order = np.argsort(-probabilities)
        ranking = [
            {"name": str(self._model.intents[i]), "confidence": float(probabilities[i])}
            for i in order[:RANKING_LENGTH]
        ]
        selector = self._response_selector(probabilities)
        top = ranking[0]
        if top["confidence"] < self.threshold:
            return self._fallback_result(text, entities, ranking, self.threshold, selector)
        return {
            "text": text,
            "intent": dict(top),
            "intent_ranking": ranking,
            "entities": entities,
            "response_selector": selector,
        }

    def _response_selector(self, probabilities: np.ndarray) -> dict:
        faq = probabilities[self._faq_indices]
        total = float(faq.sum())
        if total <= 0:
            return {"all_retrieval_intents": [RETRIEVAL_INTENT]}
        order = np.argsort(-faq)
        ranking = [
            {
                "intent_response_key": self._model.intents[self._faq_indices[i]],
                "confidence": float(faq[i] / total),
            }
            for i in order[:RANKING_LENGTH]
        ]
        best = ranking[0]
        return {
            "all_retrieval_intents": [RETRIEVAL_INTENT],
            RETRIEVAL_INTENT: {
                "response": {
                    "intent_response_key": best["intent_response_key"],
                    "confidence": best["confidence"],
                    "utter_action": "utter_" + best["intent_response_key"],
                    "responses": None,
                },
                "ranking": ranking,
            },
        }

    def _fallback_result(
        self,
        text: str,
        entities: list[dict],
        ranking: list[dict],
        confidence: float,
        selector: dict | None = None,
    ) -> dict:
        fallback = {"name": FALLBACK_INTENT, "confidence": float(confidence)}
        return {
            "text": text,
            "intent": dict(fallback),
            "intent_ranking": [fallback, *ranking],
            "entities": entities,
            "response_selector": selector or {"all_retrieval_intents": [RETRIEVAL_INTENT]},
        }
