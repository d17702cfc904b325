"""Background jobs: RQ workers on Redis when configured, a small thread pool otherwise.

Slow work — downloading media, late replies, outbound messages — must never run inside a
webhook request that a platform times out. Job functions are plain module-level functions
(RQ imports them by name) that take the Flask app as their first argument::

    queue.enqueue(deliver_reply, conversation_id, replies)   # calls deliver_reply(app, …)

In a worker process (``pension worker``) the app is built once from the environment.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

QUEUE_NAME = "pension"
_worker_app = None


class InlineQueue:
    """Embedded default: jobs run on background threads of this process."""

    def __init__(self, app, threads: int = 4):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="job")

    def enqueue(self, func, *args, **kwargs):
        return self.pool.submit(_run_logged, func, self.app, *args, **kwargs)


def _run_logged(func, app, *args, **kwargs):
    try:
        with app.app_context():
            return func(app, *args, **kwargs)
    except Exception:
        log.exception("background job %s failed", getattr(func, "__name__", func))
        raise


class RedisQueue:
    """RQ on Redis: any worker on any host may run the job."""

    def __init__(self, redis_url: str, name: str = QUEUE_NAME):
        import redis
        from rq import Queue

        self.queue = Queue(name, connection=redis.Redis.from_url(redis_url))

    def enqueue(self, func, *args, **kwargs):
        return self.queue.enqueue(run_with_app, func, *args, **kwargs)


def run_with_app(func, *args, **kwargs):
    """What an RQ worker runs: the job function with this worker's app."""
    app = worker_app()
    with app.app_context():
        return func(app, *args, **kwargs)


def worker_app():
    global _worker_app
    if _worker_app is None:
        from bot import create_app

        _worker_app = create_app()
    return _worker_app


def make_queue(app):
    url = app.config["REDIS_URL"]
    return RedisQueue(url) if url else InlineQueue(app)
