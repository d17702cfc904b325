"""The Rasa project read as data: the domain (``nlu/domain/*.yml``) and the rules.

The embedded engine runs these same files, so what a Rasa server is trained on and what the
embedded engine does cannot drift apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

NLU_PROJECT = Path(__file__).resolve().parent.parent / "nlu"


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@dataclass
class Domain:
    intents: list[str]
    entities: list[str]
    slots: dict[str, dict]
    forms: dict[str, dict]
    responses: dict[str, list[dict]]
    actions: list[str]
    session_minutes: int = 30

    @classmethod
    def load(cls, folder: Path = NLU_PROJECT / "domain") -> Domain:
        """Merge every ``*.yml`` in the domain folder, as ``rasa train --domain folder`` does."""
        merged: dict = {"intents": [], "entities": [], "slots": {}, "forms": {}, "responses": {}}
        merged["actions"] = []
        session_minutes = 30
        for path in sorted(folder.glob("*.yml")):
            part = _read_yaml(path)
            for key in ("intents", "entities", "actions"):
                merged[key] += part.get(key, [])
            for key in ("slots", "forms", "responses"):
                merged[key].update(part.get(key, {}))
            session = part.get("session_config") or {}
            session_minutes = session.get("session_expiration_time", session_minutes)
        return cls(**merged, session_minutes=session_minutes)

    def form_slots(self, form: str) -> list[str]:
        return list(self.forms[form]["required_slots"])

    def response(self, name: str) -> dict | None:
        variants = self.responses.get(name)
        return random.choice(variants) if variants else None

    def as_rasa_dict(self) -> dict:
        """The domain as Rasa sends it to an action server."""
        return {
            "version": "3.1",
            "intents": self.intents,
            "entities": self.entities,
            "slots": self.slots,
            "forms": self.forms,
            "responses": self.responses,
            "actions": self.actions,
        }


@dataclass
class Rule:
    """One rule: when ``intents`` arrive (or ``after_form`` completes) run ``actions``."""

    name: str
    intents: tuple[str, ...] = ()
    loop_condition: str | None | type[Ellipsis] = ...  # ... = any; None = no active form
    after_form: str | None = None  # a form-submission rule
    actions: list[str] = field(default_factory=list)
    resumes_form: str | None = None  # an interruption rule that returns to its form


@dataclass
class RuleBook:
    rules: list[Rule]

    @classmethod
    def load(cls, path: Path = NLU_PROJECT / "data" / "rules.yml") -> RuleBook:
        return cls([_parse_rule(raw) for raw in _read_yaml(path).get("rules", [])])

    def for_intent(self, intent: str, active_loop: str | None) -> Rule | None:
        """The rule for an intent: one conditioned on the active form wins over a general one."""
        candidates = [r for r in self.rules if any(_intent_matches(i, intent) for i in r.intents)]
        specific = [
            r for r in candidates if r.loop_condition is not ... and r.loop_condition == active_loop
        ]
        general = [r for r in candidates if r.loop_condition is ...]
        return (specific or general or [None])[0]

    def after(self, form: str) -> Rule | None:
        return next((r for r in self.rules if r.after_form == form), None)


def _intent_matches(rule_intent: str, intent: str) -> bool:
    # A retrieval intent rule (`intent: faq`) covers every `faq/<name>`.
    return rule_intent == intent or intent.startswith(rule_intent + "/")


def _parse_rule(raw: dict) -> Rule:
    rule = Rule(name=raw.get("rule", ""))
    for condition in raw.get("condition", []):
        if "active_loop" in condition:
            rule.loop_condition = condition["active_loop"]
    steps = raw.get("steps", [])
    first = steps[0] if steps else {}
    if "intent" in first:
        rule.intents = (first["intent"],)
    elif "or" in first:
        rule.intents = tuple(step["intent"] for step in first["or"] if "intent" in step)
    elif "action" in first:
        rule.after_form = first["action"]
    for step in steps[1:]:
        if "action" in step:
            rule.actions.append(step["action"])
        elif step.get("active_loop") and rule.actions and step["active_loop"] == rule.actions[-1]:
            rule.actions.pop()  # "…, action: form, active_loop: form" = go back to the form
            rule.resumes_form = step["active_loop"]
    return rule
