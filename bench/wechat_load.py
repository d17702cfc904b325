"""WeChat webhook under load: 200 signed text messages from 50 senders at once, against
gunicorn (2 workers) on PostgreSQL + Redis.

    .venv/bin/python bench/wechat_load.py [--messages 200] [--senders 50] [--workers 2]
                                          [--threads 32]

Starts gunicorn (``pension.wsgi:app``, gthread workers: a WeChat request may wait up to 4 s for
its answer, so each worker needs threads) on a free port with a private PostgreSQL schema and
a private Redis prefix, warms each worker up, then fires every message at the same moment
(one thread per message, released by a barrier) and times each response. WeChat allows 5 s;
the channel answers passively within ~4 s or says ``success`` and sends the answer later.
Prints p50 / p90 / p99 / max, messages per second and how many answers were passive replies
within 5 s. Exit status 1 when any response took 5 s or more or failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pension.cli import WORKER_CLASS  # noqa: E402
from services.db import Database  # noqa: E402

POSTGRES = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-token"
BUDGET = 5.0
TEXTS = [
    "你好",
    "确认按钮是灰色的怎么办",
    "多久认证一次",
    "老人瘫痪在床能上门认证吗",
    "查无此人是怎么回事",
    "我在国外怎么认证",
    "谢谢",
    "怎么用手机认证",
]


def signed_query() -> str:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:12]
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return urllib.parse.urlencode({"signature": signature, "timestamp": timestamp, "nonce": nonce})


def text_message(openid: str, content: str, msg_id: int) -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def post(url: str, body: bytes) -> tuple[float, str]:
    """Seconds until the whole answer arrived, and its kind: passive / success / error."""
    request = urllib.request.Request(
        f"{url}?{signed_query()}", data=body, headers={"Content-Type": "text/xml"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read().decode()
    except OSError as error:
        return time.perf_counter() - started, f"error: {error}"
    elapsed = time.perf_counter() - started
    if answer == "success":
        return elapsed, "success"
    return elapsed, "passive" if "<Content>" in answer else f"error: {answer[:80]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_{run}", f"bench:{run}:"
    admin = Database(POSTGRES)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    Database(url).upgrade()
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "REDIS_PREFIX": prefix,
        "AUTO_MIGRATE": "0",
        "LOAD_DEMO_ROSTER": "0",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APPID": "wxbench0000000000",
        "WECHAT_SECRET": "bench-secret",
        "WECHAT_API_BASE_URL": "http://127.0.0.1:9/cgi-bin/",  # late answers never leave
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        *("-w", str(args.workers), "-k", WORKER_CLASS, "--threads", str(args.threads)),
        *("--backlog", "2048", "-b", f"127.0.0.1:{port}", "pension.wsgi:app"),
    ]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    webhook = f"{base}/wechat"
    msg_ids = iter(range(int(time.time()) * 1000, int(time.time()) * 1000 + 10**6))
    results: list[tuple[float, str]] = []
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        for n in range(4 * args.workers):  # every worker: NLU, database and Redis connections
            post(webhook, text_message(f"oWarmUp{run}{n}", "你好", next(msg_ids)))

        senders = [f"oBench{run}{n:04d}" for n in range(args.senders)]
        bodies = [
            text_message(senders[n % args.senders], TEXTS[n % len(TEXTS)], next(msg_ids))
            for n in range(args.messages)
        ]
        barrier = threading.Barrier(len(bodies) + 1)
        lock = threading.Lock()

        def fire(body: bytes) -> None:
            barrier.wait()
            result = post(webhook, body)
            with lock:
                results.append(result)

        threads = [threading.Thread(target=fire, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(15)
        time.sleep(0.5)
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        late = _clean_redis(prefix, f"oBench{run}")

    timings = sorted(t for t, _ in results)
    kinds = [k for _, k in results]

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, int(p * len(timings)))] * 1000

    within = sum(t < BUDGET for t in timings)
    passive = sum(k == "passive" for k in kinds)
    errors = [k for k in kinds if k.startswith("error")]
    print(
        f"{len(results)} WeChat text messages from {args.senders} senders at once; "
        f"gunicorn -w {args.workers} -k gthread --threads {args.threads}; PostgreSQL + Redis"
    )
    print(
        f"p50 {pct(0.50):.0f} ms  p90 {pct(0.90):.0f} ms  p99 {pct(0.99):.0f} ms  "
        f"max {timings[-1] * 1000:.0f} ms"
    )
    print(f"throughput {len(results) / elapsed:.1f} msg/s ({elapsed:.2f} s for all)")
    print(
        f"within {BUDGET:.0f} s: {within}/{len(results)}; passive replies {passive}, "
        f"'success' + customer-service message later {kinds.count('success')} "
        f"(jobs queued: {late}), errors {len(errors)}"
    )
    for error in sorted(set(errors))[:5]:
        print("  ", error)
    return 0 if within == len(results) and not errors else 1


def _clean_redis(prefix: str, sender_prefix: str) -> int:
    """Delete the run's keys and any late-delivery jobs it queued; return how many jobs."""
    import redis
    from rq import Queue

    from pension.jobs import QUEUE_NAME

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    queue = Queue(QUEUE_NAME, connection=client)
    ours = [
        job
        for job in queue.jobs
        if len(job.args) > 1 and str(job.args[1]).startswith(sender_prefix)
    ]
    for job in ours:
        job.delete()
    client.close()
    return len(ours)


if __name__ == "__main__":
    sys.exit(main())
