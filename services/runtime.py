"""运行环境：任务和领域服务需要的外部部件——配置、数据库、时钟、对外发消息端口、任务队列。

The composition root builds one :class:`Runtime` per process (the web app and every RQ worker
alike), so a job is a plain function ``job(runtime, *args)`` that runs without the Flask app::

    runtime.jobs.enqueue(notifications.tell_account, account_id, messages)

``extensions`` holds what only one channel needs (its API client, its inbox); the domain never
looks there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.clock import Clock
from services.db import Database
from services.outbound import OutboundRouter

__all__ = ["JobQueue", "Runtime"]


class JobQueue(Protocol):
    """RQ on Redis in production, a thread pool in the embedded default."""

    def enqueue(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def enqueue_in(
        self, seconds: float, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any: ...


@dataclass
class Runtime:
    config: Mapping[str, Any]
    database: Database
    clock: Clock
    outbound: OutboundRouter
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def jobs(self) -> JobQueue:
        # Kept with the extensions: the web app shares that dictionary, so a queue swapped
        # there (a test's recording queue) is the one every caller uses.
        return self.extensions["jobs"]

    @jobs.setter
    def jobs(self, queue: JobQueue) -> None:
        self.extensions["jobs"] = queue
