"""The held-out conversations (tests/fixtures/conversations_heldout.yml): load, play, judge.

Shared by tests/bot/test_heldout_conversations.py and bench/conversations.py, so the test and
the report count the same way. A conversation "ends well" when every turn's replies have what
they should, lack what they should not, and offer the buttons they should.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.demo_roster import demo_rows

HELDOUT_CONVERSATIONS = Path(__file__).parent / "fixtures" / "conversations_heldout.yml"
_PLACEHOLDER = re.compile(r"\{(name|id):(\w+)\}")


@dataclass(frozen=True)
class Conversation:
    id: str
    category: str
    turns: tuple[dict, ...]
    region: str | None = None


def load(path: Path = HELDOUT_CONVERSATIONS) -> tuple[dict[str, str], list[Conversation]]:
    """The categories (key → title) and the conversations of the held-out file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    conversations = [
        Conversation(c["id"], c["category"], tuple(c["turns"]), c.get("region"))
        for c in data["conversations"]
    ]
    return data["categories"], conversations


def fill(text: str, today) -> str:
    """``{name:DEMO0002}`` / ``{id:DEMO0002}`` → that demo person's name / ID number."""
    rows = {row["person_no"]: row for row in demo_rows(today)}
    key = {"name": "name", "id": "id_number"}
    return _PLACEHOLDER.sub(lambda m: str(rows[m[2]][key[m[1]]]), str(text))


def judge(turn: dict, replies: list[dict], today) -> list[str]:
    """What is wrong with one turn's replies (REST channel shape); empty when it went well."""
    text = "\n".join(r.get("text") or "" for r in replies)
    buttons = {b.get("title") for r in replies for b in r.get("buttons") or []}
    problems = []
    for wanted in turn.get("has") or []:
        options = fill(wanted, today).split("|")
        if not any(option in text for option in options):
            problems.append(f"lacks {wanted!r}")
    for unwanted in turn.get("lacks") or []:
        if fill(unwanted, today) in text:
            problems.append(f"has {unwanted!r}")
    for wanted in turn.get("buttons") or []:
        if not set(fill(wanted, today).split("|")) & buttons:
            problems.append(f"no button {wanted!r}")
    return problems


def play(conversation: Conversation, say: Callable[[str, dict], list[dict]], today) -> list[str]:
    """Play one conversation through ``say(text, metadata)``; the first turn that goes wrong,
    as "turn N «text»: problems", or an empty list."""
    metadata = {"region": conversation.region} if conversation.region else {}
    for number, turn in enumerate(conversation.turns, 1):
        user = fill(turn["user"], today)
        replies = say(user, metadata)
        problems = judge(turn, replies, today)
        if problems:
            said = " / ".join(r.get("text") or "" for r in replies)[:300]
            return [f"turn {number} «{user}»: {'; '.join(problems)} — bot: {said}"]
    return []
