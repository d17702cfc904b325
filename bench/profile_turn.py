"""Where one message's time goes, in process (no HTTP): the turn as the WeChat channel runs it.

    .venv/bin/pip install -e '.[bench]'      # pyinstrument, for --profile
    .venv/bin/python bench/profile_turn.py [--turns 2000] [--profile report.html]

The app on a private PostgreSQL schema + Redis prefix (demo roster loaded, like
bench/message_path.py); 50 senders take turns with the FAQ questions of the load. Prints ms
per turn of ``channels.inbound.answer`` (account bookkeeping + ``engine.handle``) and of
``EmbeddedNLU.parse`` alone. ``--profile FILE`` writes pyinstrument's report of all turns
(HTML, or text when FILE ends in .txt).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.message_path import REDIS, TEXTS, clean_redis, private_database  # noqa: E402
from bot.messages import UserMessage  # noqa: E402
from channels.inbound import answer  # noqa: E402
from pension import create_app  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()

    with private_database() as (url, prefix):
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": REDIS,
                "REDIS_PREFIX": prefix,
                "AUTO_MIGRATE": False,
                "LOAD_DEMO_ROSTER": True,
                "RASA_URL": None,
                "SECRET_KEY": "bench",
            }
        )
        try:
            runtime = app.extensions["runtime"]
            nlu = app.extensions["engine"].nlu
            messages = [
                UserMessage(sender=f"oProfile{n % args.senders:04d}", channel="wechat", text=t)
                for n, t in enumerate(TEXTS[i % len(TEXTS)] for i in range(args.turns))
            ]
            for message in messages[: args.senders]:  # warm-up: first turns, connections
                answer(runtime, message)

            profiler = None
            if args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
            started = time.perf_counter()
            for message in messages:
                answer(runtime, message)
            turn_ms = 1000 * (time.perf_counter() - started) / len(messages)
            if profiler is not None:
                profiler.stop()
                report = (
                    profiler.output_text(unicode=True)
                    if args.profile.suffix == ".txt"
                    else profiler.output_html()
                )
                args.profile.write_text(report, encoding="utf-8")

            started = time.perf_counter()
            for message in messages:
                nlu.parse(message.text)
            parse_ms = 1000 * (time.perf_counter() - started) / len(messages)
        finally:
            app.extensions["stores"].close()
            app.extensions["db"].dispose()
            clean_redis(prefix)
    print(f"{len(messages)} turns of {args.senders} senders, PostgreSQL + Redis, in process")
    print(f"turn (answer: bookkeeping + engine.handle): {turn_ms:.2f} ms")
    print(f"EmbeddedNLU.parse alone: {parse_ms:.3f} ms")
    if args.profile:
        print(f"profile: {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
