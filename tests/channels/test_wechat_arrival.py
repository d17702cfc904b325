"""WeChat's clock, not ours: the 5-second budget runs from the request's arrival, and a message
answered once stays answered after Redis forgot it (a restart without persistence)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import redis
from wechat_standin import run_jobs, wait_for, wait_for_threads

from channels.inbound import render_texts

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["wechat_fixtures"]


def spy(app):
    return app.extensions["engine"]


def queued(app) -> int:
    return app.extensions["jobs"].queue.count


def post_arrived(platform, client, xml: str, seconds_ago: float):
    """Deliver ``xml`` as a request that has waited ``seconds_ago`` in a queue before us."""
    query, body = platform.envelope(xml)
    stamp = f"t={time.time() - seconds_ago:.3f}"
    return client.post(
        "/wechat",
        query_string=query,
        data=body,
        content_type="text/xml",
        headers={"X-Request-Start": stamp},
    )


# --------------------------------------------------------------------------- the budget


def test_a_request_that_queued_gets_only_what_is_left_of_the_budget(
    wx_make_app, platform, openid, standin
):
    """Arrived 3.7 s ago, waited 4 s from arrival: 0.3 s are left, then customer service."""
    app = wx_make_app(WECHAT_REPLY_WAIT=4.0)
    spy(app).delay = 1.0
    client = app.test_client()
    started = time.monotonic()
    response = post_arrived(platform, client, platform.text(openid, "你好"), 3.7)
    assert response.get_data(as_text=True) == "success"
    assert time.monotonic() - started < 0.9  # not the full 4 s, not even the engine's 1 s

    assert wait_for(lambda: queued(app) == 1, timeout=10)
    run_jobs(app)
    assert standin.sent_texts(openid) == render_texts(spy(app).calls[0][1])


def test_a_fresh_request_still_gets_a_passive_reply(wx_make_app, platform, openid, standin):
    app = wx_make_app(WECHAT_REPLY_WAIT=4.0)
    response = post_arrived(platform, app.test_client(), platform.text(openid, "你好"), 0.05)
    assert platform.reply(response)["Content"]
    assert standin.custom == [] and queued(app) == 0


def test_an_implausible_arrival_stamp_is_ignored(wx_make_app, platform, openid):
    """A stamp from a wrong clock (an hour ago, in the future, garbage) means "now"."""
    app = wx_make_app(WECHAT_REPLY_WAIT=4.0)
    client = app.test_client()
    for stamp in ("t=1", f"t={time.time() + 3600:.0f}", "t=abc", "t=" + "9" * 300):
        query, body = platform.envelope(platform.text(openid, "你好"))
        response = client.post(
            "/wechat",
            query_string=query,
            data=body,
            content_type="text/xml",
            headers={"X-Request-Start": stamp},
        )
        assert platform.reply(response)["Content"], stamp


def test_a_burst_on_gunicorn_is_timed_from_arrival(tmp_path):
    """One thread, six requests at once: each request's stamp is when it arrived, not when the
    thread got to it — so the last ones know they have spent most of their budget queueing."""
    port = _free_port()
    (tmp_path / "stamp_app.py").write_text(
        "import time\n"
        "def app(environ, start_response):\n"
        "    time.sleep(0.4)\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [environ.get('HTTP_X_REQUEST_START', '').encode()]\n"
    )
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        *("-w", "1", "--threads", "1", "-k", "pension.gunicorn_worker.ArrivalStampingWorker"),
        *("-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "stamp_app:app"),
    ]
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _get(port) is not None, timeout=20, interval=0.1)
        results: list[tuple[float, float, float]] = []  # sent, stamp, answered

        def fire() -> None:
            sent = time.time()
            stamp = float(_get(port).removeprefix("t="))
            results.append((sent, stamp, time.time()))

        threads = [threading.Thread(target=fire) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        server.terminate()
        server.wait(10)
    assert len(results) == 6
    assert max(answered - sent for sent, _, answered in results) > 1.5  # they did queue
    assert all(stamp - sent < 0.3 for sent, stamp, _ in results)  # stamped on arrival


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            return response.read().decode()
    except OSError:
        return None


# --------------------------------------------------------------------------- once, durably


def test_an_answered_message_is_not_answered_again_after_redis_forgot_it(
    wx_make_app, platform, openid, standin, redis_url, redis_prefix
):
    app = wx_make_app()
    client = app.test_client()
    xml = platform.text(openid, "你好")
    assert platform.reply(platform.post(client, xml))["Content"]
    wait_for_threads()

    # Redis restarts without persistence: every key of this deployment is gone.
    connection = redis.Redis.from_url(redis_url)
    keys = list(connection.scan_iter(match=redis_prefix + "*"))
    assert keys
    connection.delete(*keys)
    connection.close()

    started = time.monotonic()
    again = platform.post(client, xml)  # the same MsgId, a new signature
    assert again.get_data(as_text=True) == "success"
    assert time.monotonic() - started < 1.0  # at once: nothing to wait for
    wait_for_threads()
    assert len(spy(app).messages) == 1
    assert standin.custom == [] and queued(app) == 0

    # A new message of the same person is answered as usual.
    assert platform.reply(platform.post(client, platform.text(openid, "谢谢")))["Content"]


def test_old_processed_records_are_forgotten(wx_make_app):
    import datetime as dt

    from services.processed import KEEP_DAYS, first_processing, forget_processed

    app = wx_make_app()
    database = app.extensions["db"]
    now = app.extensions["runtime"].clock.now()
    old = now - dt.timedelta(days=KEEP_DAYS + 1)
    assert first_processing(database, "wechat", "m-old-record", old)
    assert first_processing(database, "wechat", "m-new-record", now)
    assert not first_processing(database, "wechat", "m-new-record", now)
    with database.session() as session:
        assert forget_processed(session, now) >= 1
    assert first_processing(database, "wechat", "m-old-record", now)  # forgotten
    assert not first_processing(database, "wechat", "m-new-record", now)
