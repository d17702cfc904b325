"""The message path against the stack's ceiling: the project vs a do-nothing endpoint, one run.

    .venv/bin/python bench/message_path.py [--senders 50] [--messages 8] [--workers 2]
                                           [--threads 32] [--alone 100]

Starts two gunicorn servers with the same settings (``--workers`` gthread workers,
``--threads`` threads each): bench/null_endpoint.py (Flask + wechatpy: verify the signature,
parse the XML, a fixed passive reply; the REST twin reads the JSON) and the project
(``pension.wsgi:app`` on a private PostgreSQL schema and Redis prefix, demo roster loaded).
The load is WeChat's: every sender at once, each sender's messages signed and in order (the
next one after the answer to the previous), ``--senders`` × ``--messages``; then the REST
channel likewise; then one sender alone (``--alone`` messages, ms per message).

Prints for each server messages/s, p50 / p99 / max, passive replies vs ``success`` (the
answer follows as a customer-service message), errors, the project's share of the baseline's
rate, the CPU each message cost (workers, PostgreSQL, Redis, the load generator itself: what
bounds the rate on this host), and the RSS of each project worker before and after. Targets (issue 14): ≥ 25 % of the
baseline's rate, p99 < 150 ms, nothing over 5 s, every reply passive; one sender < 5 ms.
Where the time goes inside one worker: bench/profile_turn.py.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from pension.cli import WORKER_CLASS  # noqa: E402
from services.db import Database  # noqa: E402

POSTGRES = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "bench-token"
BUDGET = 5.0
TEXTS = [  # FAQ questions and small talk: what most messages are
    "你好",
    "确认按钮是灰色的怎么办",
    "多久认证一次",
    "老人瘫痪在床能上门认证吗",
    "查无此人是怎么回事",
    "我在国外怎么认证",
    "谢谢",
    "怎么用手机认证",
]
TARGET_SHARE, TARGET_P99_MS, TARGET_ALONE_MS = 0.25, 150.0, 5.0


# --------------------------------------------------------------------------- the load


def signed_path(path: str) -> str:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:12]
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    query = urllib.parse.urlencode({"signature": signature, "timestamp": timestamp, "nonce": nonce})
    return f"{path}?{query}"


_msg_ids = iter(range(int(time.time() * 1000) * 1000, 2**62))
_msg_ids_lock = threading.Lock()


def wechat_request(sender: str, content: str) -> tuple[str, bytes, dict]:
    with _msg_ids_lock:
        msg_id = next(_msg_ids)
    body = (
        "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()
    return signed_path("/wechat"), body, {"Content-Type": "text/xml"}


def rest_request(sender: str, content: str) -> tuple[str, bytes, dict]:
    body = json.dumps({"sender": sender, "message": content}).encode()
    return "/webhooks/rest/webhook", body, {"Content-Type": "application/json"}


def kind_of(status: int, answer: bytes) -> str:
    if status != 200:
        return f"error: HTTP {status} {answer[:60]!r}"
    if answer == b"success":
        return "success"
    if b"<Content>" in answer or answer.startswith(b"[{"):
        return "passive"
    return f"error: {answer[:60]!r}"


@dataclass
class Run:
    timings: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used, by whom

    def add(self, seconds: float, kind: str) -> None:
        self.timings.append(seconds)
        self.kinds.append(kind)

    def pct(self, p: float) -> float:
        ordered = sorted(self.timings)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.timings) / self.elapsed if self.elapsed else 0.0

    def line(self, name: str) -> str:
        passive = self.kinds.count("passive")
        errors = [k for k in self.kinds if k.startswith("error")]
        over = sum(t >= BUDGET for t in self.timings)
        text = (
            f"  {name:<9} {self.rate:7.1f} msg/s  p50 {self.pct(0.5):6.1f} ms  "
            f"p99 {self.pct(0.99):6.1f} ms  max {max(self.timings) * 1000:6.1f} ms  "
            f"passive {passive}  customer-service {self.kinds.count('success')}  "
            f"errors {len(errors)}  ≥5 s {over}"
        )
        return text + "".join(f"\n      {e}" for e in sorted(set(errors))[:3])


def converse(port: int, make, sender: str, texts: list[str], run: Run, lock) -> None:
    """One sender: each message after the answer to the previous one, on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for content in texts:
        path, body, headers = make(sender, content)
        started = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            kind = kind_of(response.status, response.read())
        except OSError as error:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            kind = f"error: {type(error).__name__}"
        with lock:
            run.add(time.perf_counter() - started, kind)
    connection.close()


def burst(port: int, make, senders: list[str], messages: int) -> Run:
    """Every sender at once (released by a barrier), each with ``messages`` in order."""
    run, lock = Run(), threading.Lock()
    barrier = threading.Barrier(len(senders) + 1)
    scripts = {
        s: [TEXTS[(n + i) % len(TEXTS)] for i in range(messages)] for n, s in enumerate(senders)
    }

    def sender_thread(sender: str) -> None:
        barrier.wait()
        converse(port, make, sender, scripts[sender], run, lock)

    threads = [threading.Thread(target=sender_thread, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - started
    return run


def cpu_line(run: Run) -> str:
    """CPU milliseconds per message, by process, and the rate they would allow on this host."""
    per = {who: 1000 * seconds / len(run.timings) for who, seconds in run.cpu.items()}
    total = sum(per.values())
    parts = "  ".join(f"{who} {ms:.2f}" for who, ms in per.items())
    ceiling = (os.cpu_count() or 1) * 1000 / total if total else 0.0
    return f"      CPU ms/message: {parts}  all {total:.2f} → {ceiling:.0f} msg/s on {os.cpu_count()} cores"


def alone(port: int, make, sender: str, messages: int) -> Run:
    run = Run()
    texts = [TEXTS[i % len(TEXTS)] for i in range(messages)]
    started = time.perf_counter()
    converse(port, make, sender, texts, run, threading.Lock())
    run.elapsed = time.perf_counter() - started
    return run


# --------------------------------------------------------------------------- the servers


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_now(workers: list[int]) -> dict[str, float]:
    """CPU seconds so far: the server's workers, PostgreSQL, Redis, and this load generator."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "workers": sum(map(_cpu_seconds, workers)),
        "postgres": sum(map(_cpu_seconds, _pids_named("postgres"))),
        "redis": sum(map(_cpu_seconds, _pids_named("redis-server"))),
        "load": own.ru_utime + own.ru_stime,
    }


def metered(workers: list[int], call) -> Run:
    before = cpu_now(workers)
    run = call()
    after = cpu_now(workers)
    run.cpu = {who: after[who] - before[who] for who in before}
    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, seconds: float = 300) -> None:
    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            if response.status == 200:
                return
            last = f"HTTP {response.status} {response.read()[:200]!r}"
        except (OSError, http.client.HTTPException) as error:
            last = repr(error)
        time.sleep(0.5)
    raise SystemExit(f"the server on port {port} did not come up: {last}")


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def gunicorn(app: str, port: int, workers: int, threads: int, env: dict, worker_class: str):
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        *("-w", str(workers), "-k", worker_class, "--threads", str(threads)),
        *("--backlog", "2048", "-b", f"127.0.0.1:{port}", app),
    ]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=log)
        try:
            try:
                wait_healthy(port)
            except SystemExit:
                log.seek(0)
                print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
                raise
            yield server
        finally:
            server.terminate()
            server.wait(30)


@contextmanager
def private_database():
    """A fresh PostgreSQL schema, migrated; dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = Database(POSTGRES)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    Database(url).upgrade()
    try:
        yield url, f"bench:{schema}:"
    finally:
        time.sleep(0.5)
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def clean_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=prefix + "*"))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


def warm_up(port: int, workers: int) -> None:
    """Every worker: NLU, database and Redis connections, the first action of each kind."""
    for n in range(8 * workers):
        converse(port, wechat_request, f"oWarm{n:04d}", TEXTS[:2], Run(), threading.Lock())
        converse(port, rest_request, f"warm-{n}", TEXTS[:2], Run(), threading.Lock())


# --------------------------------------------------------------------------- main


def measure(port: int, args, tag: str, workers: list[int]) -> dict[str, Run]:
    senders = [f"o{tag}{n:04d}" for n in range(args.senders)]
    return {
        "wechat": metered(workers, lambda: burst(port, wechat_request, senders, args.messages)),
        "rest": metered(
            workers, lambda: burst(port, rest_request, [f"r{s}" for s in senders], args.messages)
        ),
        "wechat-1": alone(port, wechat_request, f"o{tag}alone", args.alone),
        "rest-1": alone(port, rest_request, f"r{tag}alone", args.alone),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--alone", type=int, default=100)
    parser.add_argument(
        "--worker-class", default=WORKER_CLASS, help="the project's (baseline: gthread)"
    )
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:6]

    null_port = free_port()
    null_env = os.environ | {"WECHAT_TOKEN": TOKEN, "PYTHONPATH": str(ROOT / "bench")}
    with gunicorn(
        "null_endpoint:app", null_port, args.workers, args.threads, null_env, "gthread"
    ) as null_server:
        warm_up(null_port, args.workers)
        baseline = measure(null_port, args, f"N{run_id}", worker_pids(null_server.pid))

    with private_database() as (url, prefix):
        env = os.environ | {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS,
            "REDIS_PREFIX": prefix,
            "AUTO_MIGRATE": "0",
            "LOAD_DEMO_ROSTER": "1",
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APPID": "wxbench0000000000",
            "WECHAT_SECRET": "bench-secret",
            "WECHAT_API_BASE_URL": "http://127.0.0.1:9/cgi-bin/",  # late answers never leave
        }
        port = free_port()
        try:
            with gunicorn(
                "pension.wsgi:app", port, args.workers, args.threads, env, args.worker_class
            ) as server:
                pids = worker_pids(server.pid)
                rss_before = {pid: rss_mb(pid) for pid in pids}
                warm_up(port, args.workers)
                rss_warm = {pid: rss_mb(pid) for pid in pids}
                project = measure(port, args, f"P{run_id}", pids)
                rss_after = {pid: rss_mb(pid) for pid in pids}
        finally:
            clean_redis(prefix)

    print(
        f"{args.senders} senders × {args.messages} messages at once, each sender in order; "
        f"gunicorn -w {args.workers} --threads {args.threads}; project on PostgreSQL + Redis"
    )
    ok = True
    for name in ("wechat", "rest"):
        share = project[name].rate / baseline[name].rate
        print(f"{name}:")
        for label, runs in (("baseline", baseline), ("project", project)):
            print(runs[name].line(label))
            print(cpu_line(runs[name]))
        print(f"  project/baseline rate: {share:.1%} (target ≥ {TARGET_SHARE:.0%})")
        ok &= share >= TARGET_SHARE and project[name].pct(0.99) < TARGET_P99_MS
        ok &= project[name].kinds.count("passive") == len(project[name].kinds)
    for name in ("wechat-1", "rest-1"):
        per = 1000 * project[name].elapsed / len(project[name].timings)
        base = 1000 * baseline[name].elapsed / len(baseline[name].timings)
        print(
            f"one sender alone, {name[:-2]}: project {per:.2f} ms/message "
            f"(p99 {project[name].pct(0.99):.1f} ms), baseline {base:.2f} ms/message "
            f"(target < {TARGET_ALONE_MS} ms)"
        )
        ok &= per < TARGET_ALONE_MS
    for pid in pids:
        print(
            f"worker {pid} RSS: started {rss_before[pid]:.0f} MB, warmed up {rss_warm[pid]:.0f} MB,"
            f" after the load {rss_after[pid]:.0f} MB"
        )
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
