"""Forged Alipay gateway requests: their cost before/after, and valid requests' latency under a flood.

    .venv/bin/python bench/alipay_forged.py [--forged 300] [--flooders 8] [--valid 60]

"Before" is the gateway as it was: every bad signature answered with a failure reply signed by
the SDK's pure-Python RSA (``sign_with_rsa2``), no limit. "After" is the shipped channel: RSA in
OpenSSL (``cryptography``), and past 20 bad signatures a minute from one client a bare 429.
Both run in this process, on the same app (SQLite, Redis stores when ``REDIS_URL`` is set),
one after the other; ratios compare them within the run. Clients are told apart by
``X-Forwarded-For`` from a trusted proxy (127.0.0.1), as behind deploy/nginx.conf.

1. cost: one forged request after another through the app (no network), mean ms each;
2. flood: a threaded HTTP server; ``--flooders`` threads post forged requests as fast as they
   can while one client posts valid notifies (Alipay's address); p50/p95 of the valid ones,
   and the same without a flood. The dialogue is left out (jobs are dropped): this measures the
   gateway, which is what the flood competes for.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alipay.aop.api.util.SignatureUtils import sign_with_rsa2, verify_with_rsa  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from channels.alipay import AlipayChannel  # noqa: E402
from pension import create_app  # noqa: E402
from tests.channels.alipay_standin import (  # noqa: E402
    APP_ID,
    GATEWAY_FORM,
    AlipayStandIn,
    Keys,
    check_xml,
    new_key,
    new_user_id,
    notify_xml,
    pkcs8_b64,
)

GATEWAY = "/alipay/gateway"
ALIPAY_ADDRESS = "110.75.0.1"  # where Alipay's notifies come from, in this bench


class SdkSignedChannel(AlipayChannel):
    """The gateway before: the SDK's pure-Python RSA for verifying and signing, no limit."""

    def verify(self, params, charset):
        from alipay.aop.api.util.SignatureUtils import get_sign_content

        signature = params.get("sign") or ""
        signed = {k: v for k, v in params.items() if k != "sign"}
        try:
            content = get_sign_content(signed).encode(charset)
            return bool(verify_with_rsa(self.keys.alipay_public_key, content, signature))
        except Exception:  # noqa: BLE001 — as the SDK path did: any failure is "forged"
            return False

    def signed_reply(self, content, charset):
        from flask import Response

        signature = sign_with_rsa2(self.keys.app_private_key, content, charset)
        body = (
            f'<?xml version="1.0" encoding="{charset.upper()}"?>'
            f"<alipay><response>{content}</response>"
            f"<sign>{signature}</sign><sign_type>RSA2</sign_type></alipay>"
        )
        return Response(body.encode(charset), content_type=f"text/xml;charset={charset.upper()}")


class DroppedJobs:
    def enqueue(self, *args, **kwargs):
        return None


def build_app(keys: Keys, standin: AlipayStandIn, folder: Path):
    redis_url = os.environ.get("REDIS_URL")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
            "AUTO_MIGRATE": True,
            "LOAD_DEMO_ROSTER": False,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}:",
            "SECRET_KEY": "bench",
            "PHOTO_DIR": str(folder / "photos"),
            "TRUSTED_PROXIES": "127.0.0.1",
            "ALIPAY_APP_ID": APP_ID,
            "ALIPAY_APP_PRIVATE_KEY": pkcs8_b64(keys.app),
            "ALIPAY_PUBLIC_KEY": keys.alipay_public,
            "ALIPAY_SERVER_URL": standin.url,
            "ALIPAY_MEDIA_URL": standin.media_url,
        }
    )
    app.extensions["jobs"] = DroppedJobs()
    return app


def use_channel(app, before: bool) -> None:
    shipped: AlipayChannel = app.extensions.setdefault("alipay-shipped", app.extensions["alipay"])
    if not before:
        app.extensions["alipay"] = shipped
        return
    old = SdkSignedChannel(
        app_id=shipped.app_id,
        keys=shipped.keys,
        server_url=shipped.server_url,
        media_url=shipped.media_url,
        inbox=shipped.inbox,
        trusted_proxies=shipped.trusted_proxies,
        signature_failures_per_minute=10**9,  # no limit
    )
    app.extensions["alipay"] = old


def forged_body(standin: AlipayStandIn) -> bytes:
    return standin.gateway_body(check_xml(), service="alipay.service.check", key=new_key())


def cost_ms(app, body: bytes, count: int) -> float:
    client = app.test_client()
    forger = f"203.0.113.{uuid.uuid4().int % 250}"
    started = time.perf_counter()
    for _ in range(count):
        client.post(
            GATEWAY,
            data=body,
            content_type=GATEWAY_FORM,
            headers={"X-Forwarded-For": forger},
        )
    return (time.perf_counter() - started) / count * 1000


def post(url: str, body: bytes, client: str) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": GATEWAY_FORM, "X-Forwarded-For": client}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def valid_latencies(url: str, standin: AlipayStandIn, count: int) -> list[float]:
    times = []
    for _ in range(count):
        body = standin.gateway_body(notify_xml(new_user_id(), "text", content="你好"))
        started = time.perf_counter()
        assert post(url, body, ALIPAY_ADDRESS) == 200
        times.append((time.perf_counter() - started) * 1000)
    return times


def flood(url: str, body: bytes, flooders: int, stop: threading.Event, counts: dict) -> list:
    def run(number: int) -> None:
        forger = f"203.0.113.{number + 1}"
        while not stop.is_set():
            status = post(url, body, forger)
            counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(flooders)]
    for thread in threads:
        thread.start()
    return threads


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def flood_phase(app, standin, body, args) -> dict:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}{GATEWAY}"
    try:
        quiet = valid_latencies(url, standin, args.valid // 2)
        stop, counts = threading.Event(), {}
        threads = flood(url, body, args.flooders, stop, counts)
        time.sleep(1.0)
        started = time.perf_counter()
        loud = valid_latencies(url, standin, args.valid)
        seconds = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.shutdown()
    forged = sum(counts.values())
    return {
        "quiet_p50": statistics.median(quiet),
        "flood_p50": statistics.median(loud),
        "flood_p95": percentile(loud, 0.95),
        "forged_per_s": forged / max(seconds, 1e-9),
        "statuses": dict(sorted(counts.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forged", type=int, default=300, help="forged requests for the cost")
    parser.add_argument("--flooders", type=int, default=8, help="threads posting forged ones")
    parser.add_argument("--valid", type=int, default=60, help="valid notifies timed in a flood")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    logging.getLogger("channels.alipay").setLevel(logging.ERROR)

    keys = Keys.generate()
    with AlipayStandIn(keys) as standin, tempfile.TemporaryDirectory() as folder:
        app = build_app(keys, standin, Path(folder))
        body = forged_body(standin)
        results = {}
        for name, before in (("before", True), ("after", False)):
            use_channel(app, before)
            signed_cost = cost_ms(app, body, 20 if not before else args.forged)
            flood_cost = cost_ms(app, body, args.forged)  # a new forger: 20 signed, then 429
            results[name] = {
                "signed_ms": signed_cost,
                "flood_ms": flood_cost,
                **flood_phase(app, standin, body, args),
            }
        print_report(results, args)


def print_report(results: dict, args) -> None:
    before, after = results["before"], results["after"]
    print(
        f"forged request, signed failure reply: before {before['signed_ms']:.2f} ms, "
        f"after {after['signed_ms']:.2f} ms (x{before['signed_ms'] / after['signed_ms']:.1f})"
    )
    print(
        f"forged request, {args.forged} from one client: before {before['flood_ms']:.2f} ms, "
        f"after {after['flood_ms']:.2f} ms each (x{before['flood_ms'] / after['flood_ms']:.1f})"
    )
    for name, row in results.items():
        print(
            f"{name:6}: valid ack p50 {row['quiet_p50']:.1f} ms quiet, "
            f"{row['flood_p50']:.1f} ms (p95 {row['flood_p95']:.1f}) under {args.flooders} "
            f"flooders sending {row['forged_per_s']:.0f}/s, statuses {row['statuses']}"
        )
    print(f"valid p50 under flood, before/after: x{before['flood_p50'] / after['flood_p50']:.1f}")


if __name__ == "__main__":
    main()
