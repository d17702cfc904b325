"""What actions need from outside the tracker: the database, the photo folder, the clock, and
the job queue (the embedded engine's only: a standalone action server has none, and the photo
pre-checks are then left to ``pension precheck-photos``).

The embedded engine hands its own in per call (a context variable, so several apps in one
process — as in tests — never mix). Under a standalone action server
(``python -m rasa_sdk --actions bot.actions``) they come from ``DATABASE_URL`` / ``PHOTO_DIR`` /
``REDIS_URL`` / ``IDENTITY_CHECKS_PER_ACCOUNT`` / ``IDENTITY_MISSES_PER_ID`` (and ``CLOCK``, a frozen Beijing time, in tests).
"""

from __future__ import annotations

import contextvars
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from bot.stores import Stores, make_stores
from services.clock import Clock, FrozenClock, system_clock
from services.db import Database
from services.handoffs import HandoffPolicy
from services.identity import CheckLimits
from services.runtime import JobQueue


@dataclass(frozen=True)
class ActionContext:
    database: Database
    photo_dir: Path
    stores: Stores
    clock: Clock = system_clock
    handoff_policy: HandoffPolicy = HandoffPolicy()  # staff hours, how long a request waits
    jobs: JobQueue | None = None  # work after the turn: a review photo's pre-checks
    check_limits: CheckLimits = CheckLimits()  # identity checks per account / per ID number
    public_url: str = ""  # PUBLIC_BASE_URL: links to our own pages (the face page) in chats


_current: contextvars.ContextVar[ActionContext | None] = contextvars.ContextVar(
    "action_context", default=None
)


async def run_in(scope: ActionContext, awaitable):
    _current.set(scope)
    return await awaitable


def current() -> ActionContext:
    return _current.get() or _from_environment()


@functools.cache
def _from_environment() -> ActionContext:
    url = os.environ.get("DATABASE_URL") or "sqlite:///instance/pension.db"
    photo_dir = Path(os.environ.get("PHOTO_DIR") or "instance/photos")
    stores = make_stores(os.environ.get("REDIS_URL"), os.environ.get("REDIS_PREFIX", "pension:"))
    policy = HandoffPolicy.from_settings(os.environ)
    # A stopped clock ("2026-12-01 10:00", the service's CLOCK setting), for tests and
    # simulations that freeze the service's: the action server then sees the same day.
    frozen = os.environ.get("CLOCK")
    clock = FrozenClock(frozen) if frozen else system_clock
    limits = CheckLimits.from_settings(os.environ)
    return ActionContext(
        Database(url),
        photo_dir,
        stores,
        clock,
        handoff_policy=policy,
        check_limits=limits,
        public_url=os.environ.get("PUBLIC_BASE_URL", ""),
    )
