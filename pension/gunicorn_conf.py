"""gunicorn's settings for this service: ``gunicorn -c python:pension.gunicorn_conf pension.wsgi:app``.

``pension serve`` runs gunicorn with these (its ``--host/--port/--workers`` override ``bind`` and
``workers``); ``deploy/gunicorn.conf.py`` is the same for a systemd unit behind
``deploy/nginx.conf``. In production gunicorn listens on 127.0.0.1 only and nginx faces the
clients: nginx buffers slow requests and slow readers, so a gunicorn thread is only ever busy
with a complete request. The limits below hold even when someone reaches gunicorn directly.
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads: a WeChat request may wait up to WECHAT_REPLY_WAIT (4 s) for its passive reply,
# counted from its arrival, which this gthread worker stamps before the request queues.
worker_class = "pension.gunicorn_worker.ArrivalStampingWorker"
threads = 32
# A request that takes longer than this is stuck (the database's own limits are seconds):
# the worker is restarted rather than kept hung.
timeout = 30
graceful_timeout = 30  # a restart lets requests in flight finish (nginx waits 35 s for them)
keepalive = 5  # seconds an idle keep-alive connection (from nginx) is held
# Bounded request heads (gunicorn's defaults, stated): a header flood is a 400.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# nginx on this host sets X-Forwarded-Proto; the app reads X-Forwarded-For itself
# (TRUSTED_PROXIES, see channels/remote.py).
forwarded_allow_ips = "127.0.0.1"
accesslog = None  # nginx keeps the access log; ours would repeat it
errorlog = "-"
