"""A turn's Redis cost: lock, read, save, release as four calls against ``stores.turns`` (two).

    .venv/bin/python bench/turn_store.py [--turns 2000]

Runs both ways in one process on ``REDIS_URL`` (a private key prefix, removed afterwards)
with a tracker the size of a short conversation, and prints ms per turn and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.message_path import REDIS, clean_redis  # noqa: E402
from bot.stores import Stores, make_stores  # noqa: E402

TRACKER = {
    "slots": {"last_faq": "faq/bind_limit"},
    "events": [{"event": "user", "text": "你好"}] * 40,
}


def separate_calls(stores: Stores) -> None:
    with stores.locks.lock("bench"):
        stores.trackers.get("bench")
        stores.trackers.save("bench", TRACKER, 60)


def one_turn(stores: Stores) -> None:
    with stores.turns.begin("bench") as turn:
        turn.save(TRACKER, 60)


def ms_per_turn(stores: Stores, run, turns: int) -> float:
    started = time.perf_counter()
    for _ in range(turns):
        run(stores)
    return 1000 * (time.perf_counter() - started) / turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    args = parser.parse_args()
    prefix = f"bench-turns-{uuid.uuid4().hex[:8]}:"
    stores = make_stores(REDIS, prefix)
    try:
        separate = min(ms_per_turn(stores, separate_calls, args.turns) for _ in range(3))
        combined = min(ms_per_turn(stores, one_turn, args.turns) for _ in range(3))
    finally:
        stores.close()
        clean_redis(prefix)
    print(f"lock + get + save + release: {separate:.3f} ms per turn")
    print(f"stores.turns (two scripts):  {combined:.3f} ms per turn")
    print(f"ratio: {combined / separate:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
