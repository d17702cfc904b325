"""Rasa domain responses for the FAQ retrieval intent, generated from ``faq/knowledge.yml``.

Each entry becomes ``utter_faq/<name>`` with its general short answer (placeholders filled from
the default region policy, so no ``{…}`` reaches Rasa's slot templating). The region-aware
answers are given by ``faq.knowledge.answer``; a Rasa server only sees these general ones.

Regenerate after editing knowledge.yml::

    python -m faq.rasa_responses
"""

from __future__ import annotations

from pathlib import Path

import yaml

from faq.knowledge import answer, intents

DOMAIN_FILE = Path(__file__).resolve().parent.parent / "nlu" / "domain" / "faq.yml"
RESPONSE_PREFIX = "utter_faq/"
HEADER = (
    "# Generated from faq/knowledge.yml by `python -m faq.rasa_responses`: do not edit by hand.\n"
    "# The general answers only; the assistant answers region-aware through faq.knowledge.\n"
)


def responses() -> dict[str, list[dict[str, str]]]:
    """``{"utter_faq/<name>": [{"text": general short answer}]}`` for every FAQ entry."""
    return {f"{RESPONSE_PREFIX}{name}": [{"text": answer(name).short}] for name in intents()}


def domain_text() -> str:
    """The domain fragment: ``version: "3.1"`` and ``responses:`` only."""
    body = yaml.safe_dump(
        {"responses": responses()}, allow_unicode=True, sort_keys=False, width=4096
    )
    return f'{HEADER}version: "3.1"\n\n{body}'


def write_domain_file(path: Path | str = DOMAIN_FILE) -> Path:
    """Write the domain fragment to ``path`` (default ``nlu/domain/faq.yml``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(domain_text(), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {write_domain_file()}")
