"""gunicorn's threaded worker, stamping each request's arrival: ``-k pension.gunicorn_worker.ArrivalStampingWorker``.

Under a burst a request waits in the worker's queue for a free thread; WeChat's 5 seconds
run all the while. The stamp is taken when the connection becomes readable (before that
queue) and travels as ``X-Request-Start: t=<seconds>`` — nginx's header, which wins when nginx
is in front (``proxy_set_header X-Request-Start "t=${msec}";``): it is earlier still.
"""

from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

HEADER = "X-REQUEST-START"


class ArrivalStampingWorker(ThreadWorker):
    def enqueue_req(self, conn) -> None:
        conn.arrived_at = time.time()
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        stamp = getattr(conn, "arrived_at", None)
        if stamp is not None and all(name != HEADER for name, _ in req.headers):
            req.headers.append((HEADER, f"t={stamp:.6f}"))
        return super().handle_request(req, conn)
