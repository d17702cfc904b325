"""Read Rasa 3.x NLU training data (``version: "3.1"`` YAML) without Rasa.

Only what the embedded NLU needs: intent examples with their entity annotations
(``[text](entity)``, ``[text](entity:value)`` and ``[text]{"entity": ..., "value": ...}``),
synonyms and lookup tables. Files without an ``nlu:`` section (rules, stories) are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["Example", "TrainingData", "load_training_data", "parse_annotated"]

_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<entity>[^)]+)\)|(?P<json>\{[^}]*\}))")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[dict, ...] = ()


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # surface → value
    lookups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})

    def by_intent(self) -> dict[str, list[Example]]:
        grouped: dict[str, list[Example]] = {}
        for example in self.examples:
            grouped.setdefault(example.intent, []).append(example)
        return grouped


def parse_annotated(line: str) -> tuple[str, tuple[dict, ...]]:
    """Plain text and entity annotations (with offsets into the plain text) of one example."""
    plain: list[str] = []
    entities: list[dict] = []
    position = 0
    length = 0
    for match in _ANNOTATION.finditer(line):
        before = line[position : match.start()]
        plain.append(before)
        length += len(before)
        surface = match.group("text")
        if match.group("json"):
            spec = json.loads(match.group("json"))
            entity, value = spec["entity"], str(spec.get("value", surface))
        else:
            entity, _, value = match.group("entity").partition(":")
            value = value or surface
        entities.append(
            {"entity": entity, "value": value, "start": length, "end": length + len(surface)}
        )
        plain.append(surface)
        length += len(surface)
        position = match.end()
    plain.append(line[position:])
    return "".join(plain), tuple(entities)


def _items(block: str) -> list[str]:
    items = []
    for raw in block.splitlines():
        stripped = raw.strip()
        if stripped.startswith("- "):
            items.append(stripped[2:].strip())
        elif stripped == "-":
            items.append("")
    return items


def load_training_data(paths: list[Path] | Path) -> TrainingData:
    """Load every ``nlu:`` section of the given YAML files (or of the ``*.yml`` in a folder)."""
    if isinstance(paths, Path):
        paths = (
            sorted(paths.glob("*.yml")) + sorted(paths.glob("*.yaml"))
            if paths.is_dir()
            else [paths]
        )
    data = TrainingData()
    for path in paths:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for item in document.get("nlu") or []:
            block = item.get("examples") or ""
            if "intent" in item:
                for line in _items(block):
                    text, entities = parse_annotated(line)
                    data.examples.append(Example(text, str(item["intent"]), entities))
            elif "synonym" in item:
                for surface in _items(block):
                    data.synonyms[surface] = str(item["synonym"])
            elif "lookup" in item:
                data.lookups.setdefault(str(item["lookup"]), []).extend(_items(block))
    return data
