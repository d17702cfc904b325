"""The production setup: Debian's nginx with deploy/nginx.conf in front of a real gunicorn of the
app (pension/gunicorn_conf.py), on free ports in a temporary prefix. 80 slow clients each send
half a request; /health still answers 200 within 2 s — nginx holds the slow clients, gunicorn
only ever sees complete requests.

nginx comes from scripts/ensure-nginx (``make test`` runs it); a missing nginx skips here and
fails under CI, like Chromium for the browser tests.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO, free_port, service_missing

NGINX = os.environ.get("NGINX_PATH", "/usr/sbin/nginx")
SLOW_CLIENTS = 80
MAIN_CONFIG = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/pension.conf;
}}
"""


def site_config(nginx_port: int, gunicorn_port: int) -> str:
    """deploy/nginx.conf as shipped, but listening and proxying on this test's ports."""
    text = (REPO / "deploy" / "nginx.conf").read_text()
    for shipped, here in (
        ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn_port};"),
    ):
        assert text.count(shipped) == 1, f"deploy/nginx.conf no longer says {shipped!r}"
        text = text.replace(shipped, here)
    return text


def get(port: int, path: str = "/health", timeout: float = 5.0) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.monotonic() - started


def wait_until_up(port: int, process: subprocess.Popen, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        try:
            if get(port, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} did not answer /health within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def gunicorn(postgres_url, redis_url, redis_prefix, tmp_path):
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "SECRET_KEY": "test",
        "AUTO_MIGRATE": "false",
        "LOAD_DEMO_ROSTER": "false",
        "PHOTO_DIR": str(tmp_path / "photos"),
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        *("-c", "python:pension.gunicorn_conf", "-w", "1", "-b", f"127.0.0.1:{port}"),
        "pension.wsgi:app",
    ]
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=log)
    try:
        wait_until_up(port, process, "gunicorn")
        yield port
    finally:
        stop(process)
        log.close()


@pytest.fixture
def nginx(gunicorn, tmp_path):
    if not os.access(NGINX, os.X_OK):
        service_missing("nginx", FileNotFoundError(f"{NGINX} (install it: scripts/ensure-nginx)"))
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    (prefix / "pension.conf").write_text(site_config(port, gunicorn))
    user = "user root;" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONFIG.format(prefix=prefix, user=user))
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process, "nginx")
        yield port
    finally:
        stop(process)


HALF_HEAD = b"GET /health HTTP/1.1\r\nHost: pension\r\nUser-Agent: slow"
HALF_BODY = (
    b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: pension\r\n"
    b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    b'{"sender": "slow", "mess'
)


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each having sent half a request (head or body) and then nothing."""
    sockets = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(HALF_HEAD if number % 2 else HALF_BODY)
        sockets.append(sock)
    return sockets


def test_behind_nginx_80_slow_clients_do_not_keep_health_from_answering(nginx):
    sockets = slow_clients(nginx, SLOW_CLIENTS)
    try:
        time.sleep(0.5)  # let them all be read and held
        for _ in range(5):
            status, seconds = get(nginx, timeout=2)
            assert status == 200 and seconds < 2.0, (status, seconds)
    finally:
        for sock in sockets:
            sock.close()


def test_nginx_refuses_a_body_over_the_apps_limit_before_reading_it(nginx):
    connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=5)
    try:
        connection.putrequest("POST", "/webhooks/rest/webhook")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(11 * 1024 * 1024))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
