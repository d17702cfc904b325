"""The words Rasa's JiebaTokenizer must keep whole: apps, places, relations, domain terms.

jieba's own dictionary cuts "江西人社在哪" into 江西人 / 社在 and "赣服通" into 赣 / 服通, so an
entity could never be a whole token. ``nlu/config.yml`` points the JiebaTokenizer at
``nlu/jieba/`` (its ``dictionary_path``); the file there is generated from the tables below by
``python -m nlu.jieba_dictionary`` (a test keeps it in step). The embedded entity extractor cuts
words with the same dictionary, so both engines see the same words.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

DICTIONARY = Path(__file__).resolve().parent / "jieba" / "domain_words.txt"
FREQUENCY = 20000  # as the embedded classifier adds them: high enough to win over jieba's cuts


def words() -> list[str]:
    from nlu.classifier import _DOMAIN_WORDS
    from nlu.entities import RELATION_SYNONYMS, region_codes

    return sorted({*_DOMAIN_WORDS, *region_codes(), *RELATION_SYNONYMS})  # order-free


def dictionary_text() -> str:
    """jieba's user dictionary format: ``word frequency`` a line (it has no comments)."""
    return "".join(f"{word} {FREQUENCY}\n" for word in words())


@lru_cache(maxsize=1)
def tokenizer():
    """A jieba tokenizer as Rasa's JiebaTokenizer has it: the default dictionary plus ours."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    cutter = jieba.Tokenizer()
    cutter.load_userdict(str(DICTIONARY))
    return cutter


def word_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each word Rasa's JiebaTokenizer finds in ``text``."""
    return [(start, end) for _word, start, end in tokenizer().tokenize(text)]


if __name__ == "__main__":
    DICTIONARY.parent.mkdir(exist_ok=True)
    DICTIONARY.write_text(dictionary_text(), encoding="utf-8")
    print(f"{DICTIONARY}: {len(words())} words")
