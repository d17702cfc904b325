"""Background jobs: RQ workers on Redis when configured, a small thread pool otherwise.

Slow work — downloading media, late replies, outbound messages — must never run inside a
webhook request that a platform times out. A job is a plain module-level function (RQ imports
it by name) whose first argument is the :class:`services.runtime.Runtime`::

    runtime.jobs.enqueue(deliver_replies, openid, texts)   # runs deliver_replies(runtime, …)

In a worker process (``pension worker``) the runtime is built once from the settings, with
the dialogue engine: no Flask app is involved.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

QUEUE_NAME = "pension"
# What an RQ worker runs: the job with the worker's runtime (see pension.runtime.run_job).
WORKER_ENTRY = "pension.runtime.run_job"


class InlineQueue:
    """Embedded default: jobs run on background threads of this process."""

    def __init__(self, runtime, threads: int = 4):
        self.runtime = runtime
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="job")

    def enqueue(self, func, *args, **kwargs):
        return self.pool.submit(_run_logged, func, self.runtime, *args, **kwargs)

    def enqueue_in(self, seconds: float, func, *args, **kwargs) -> None:
        """Run the job after ``seconds`` (a timer thread; lost if the process stops)."""
        timer = threading.Timer(seconds, self.enqueue, (func, *args), kwargs)
        timer.daemon = True
        timer.start()


def _run_logged(func, runtime, *args, **kwargs):
    try:
        return func(runtime, *args, **kwargs)
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
        # RQ logs a job's description at INFO; its default is the call with every argument
        # (an openid, a reply's text), so the description names the function only.
        description = getattr(func, "__qualname__", str(func))
        return self.queue.enqueue(WORKER_ENTRY, func, *args, description=description, **kwargs)

    def enqueue_in(self, seconds: float, func, *args, **kwargs):
        """Run the job after ``seconds``: kept in Redis, moved to the queue by the scheduler of
        a ``pension worker`` (every worker runs one; they share it through a Redis lock)."""
        delay = dt.timedelta(seconds=seconds)
        return self.queue.enqueue_in(delay, WORKER_ENTRY, func, *args, **kwargs)


def make_queue(runtime):
    url = runtime.config["REDIS_URL"]
    return RedisQueue(url) if url else InlineQueue(runtime)
