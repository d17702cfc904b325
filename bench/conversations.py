"""How many held-out conversations end well, by category of issue 9.

    .venv/bin/python bench/conversations.py [--errors] [--only CATEGORY]

Plays tests/fixtures/conversations_heldout.yml (never used for training) through the REST
channel of a service on the embedded engine — SQLite in a temporary folder, in-memory stores,
the demo roster, the clock frozen on the tests' day — and prints, per category, how many
conversations ended well. Run it on another checkout's code with ``--code DIR`` (the held-out
file and this script stay these), to compare before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="print each conversation gone wrong")
    parser.add_argument("--only", help="one category")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose code runs")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT))  # tests/heldout.py, if the other checkout has none

    from pension import create_app
    from tests import heldout
    from tests.support import NOW, TODAY, frozen_clock

    categories, conversations = heldout.load(ROOT / "tests/fixtures/conversations_heldout.yml")
    folder = Path(tempfile.mkdtemp(prefix="heldout-"))
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'pension.db'}",
            "SECRET_KEY": "bench",
            "AUTO_MIGRATE": True,
            "LOAD_DEMO_ROSTER": True,
            "PHOTO_DIR": str(folder / "photos"),
            "CLOCK": frozen_clock(NOW),
            "TESTING": True,
        }
    )
    client = app.test_client()
    total: Counter[str] = Counter()
    good: Counter[str] = Counter()
    failures = []
    for conversation in conversations:
        if args.only and conversation.category != args.only:
            continue
        sender = f"bench-{uuid.uuid4().hex[:8]}"

        def say(text: str, metadata: dict, sender=sender) -> list[dict]:
            body = {"sender": sender, "message": text, "metadata": metadata}
            return client.post("/webhooks/rest/webhook", json=body).get_json() or []

        problems = heldout.play(conversation, say, TODAY)
        total[conversation.category] += 1
        if problems:
            failures.append((conversation.id, problems[0]))
        else:
            good[conversation.category] += 1
    print(f"code: {args.code.resolve()}  held-out: {sum(total.values())} conversations")
    for key, title in categories.items():
        if total[key]:
            print(f"  {title:<44} {good[key]:>3}/{total[key]:<3} end well")
    print(f"  {'all':<44} {sum(good.values()):>3}/{sum(total.values()):<3} end well")
    if args.errors:
        for name, problem in failures:
            print(f"  ✗ {name}: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
