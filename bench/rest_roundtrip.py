"""REST round-trip under 20 concurrent senders, against gunicorn on PostgreSQL + Redis.

    .venv/bin/python bench/rest_roundtrip.py [--senders 20] [--turns 10] [--workers 2]

Starts gunicorn (pension.wsgi:app) on a free port with a private PostgreSQL schema and a private
Redis prefix, loads the demo roster, then each sender runs a short conversation (greeting,
FAQ, certification with name + ID, status). Prints p50 / p90 / p99 and messages per second.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.db import Database  # noqa: E402
from services.demo_roster import demo_rows  # noqa: E402

POSTGRES = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def conversation(turns: int) -> list[str]:
    row = demo_rows()[1]
    script = [
        "你好",
        "确认按钮是灰色的怎么办",
        f"我叫{row['name']}身份证{row['id_number']}我要认证",
        "我下次什么时候认证",
        "多久认证一次",
        "陕西",
        "谢谢",
        "老人瘫痪在床能上门认证吗",
        "不用了",
        "再见",
    ]
    return (script * (turns // len(script) + 1))[:turns]


def post(url: str, body: dict) -> float:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = Database(POSTGRES)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    Database(url).upgrade()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "REDIS_PREFIX": f"{schema}:",
        "LOAD_DEMO_ROSTER": "1",
    }
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers)]
    server = subprocess.Popen(
        [*gunicorn, "--threads", "4", "-b", f"127.0.0.1:{port}", "pension.wsgi:app"],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        webhook = f"{base}/webhooks/rest/webhook"
        post(webhook, {"sender": "warm-up", "message": "你好"})

        def run_sender(number: int) -> list[float]:
            sender = f"bench-{number}"
            return [
                post(webhook, {"sender": sender, "message": m}) for m in conversation(args.turns)
            ]

        started = time.perf_counter()
        with ThreadPoolExecutor(args.senders) as pool:
            timings = sorted(t for ts in pool.map(run_sender, range(args.senders)) for t in ts)
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, int(p * len(timings)))] * 1000

    print(
        f"{len(timings)} messages from {args.senders} concurrent senders, gunicorn -w {args.workers}"
    )
    print(
        f"p50 {pct(0.50):.1f} ms  p90 {pct(0.90):.1f} ms  p99 {pct(0.99):.1f} ms  max {timings[-1] * 1000:.1f} ms"
    )
    print(
        f"mean {statistics.mean(timings) * 1000:.1f} ms  throughput {len(timings) / elapsed:.1f} msg/s"
    )


if __name__ == "__main__":
    main()
