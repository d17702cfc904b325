"""Shared conversation state: trackers, per-sender locks, message dedupe, rate limits, inboxes.

Each store has one interface and two implementations:

* in-process memory (``REDIS_URL`` unset) — thread-safe, for the one-command embedded setup;
* Redis — shared by every gunicorn worker on every host, for production and tests.

``make_stores(redis_url, prefix)`` picks the implementation. Every Redis key lives under
``prefix`` (``pension:`` by default): ``<prefix>tracker:<sender>``, ``<prefix>lock:<sender>``,
``<prefix>dedupe:<key>``, ``<prefix>rate:<key>``, ``<prefix><name>:inbox:<sender>``.

When Redis cannot be reached every call fails fast (about a second) with
:class:`StoreUnavailable`; once Redis is back the same :class:`Stores` object works again —
redis-py drops the broken connections and opens new ones on the next call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import LockError
from redis.retry import Retry

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "pension:"
DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a Redis lock lives if its holder dies without releasing it."""
DEFAULT_LOCK_WAIT = 10.0
"""Seconds ``lock()`` waits for another holder before raising :class:`LockTimeout`."""

# Redis client settings: fail fast when the server is gone, recover by itself when it is back.
SOCKET_CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 1.5
HEALTH_CHECK_INTERVAL = 10


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The backing server (Redis) cannot be reached or timed out."""


class LockTimeout(StoreError):
    """A per-sender lock could not be acquired within ``blocking_timeout`` seconds."""


# --------------------------------------------------------------------------- interfaces


class TrackerStore(Protocol):
    def get(self, sender_id: str) -> dict | None: ...

    def save(self, sender_id: str, tracker: dict, ttl_seconds: float | None) -> None: ...

    def delete(self, sender_id: str) -> None: ...


class LockStore(Protocol):
    def lock(
        self,
        sender_id: str,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> AbstractContextManager[None]: ...


class Turn(Protocol):
    """One turn's hold on a conversation: its lock, the tracker read as the lock was taken."""

    tracker: dict | None

    def save(self, tracker: dict, ttl_seconds: float | None) -> None:
        """Store ``tracker`` under the turn's key (written by the time the lock is released)."""
        ...


class TurnStore(Protocol):
    def begin(
        self,
        lock_id: str,
        tracker_key: str | None = None,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> AbstractContextManager[Turn]:
        """Lock ``lock_id`` (as :meth:`LockStore.lock`) and read the tracker ``tracker_key``
        (``lock_id`` by default) for the ``with`` block; release the lock when it ends."""
        ...


class DedupeStore(Protocol):
    def first_time(self, key: str, ttl_seconds: float) -> bool: ...


class RateLimiter(Protocol):
    def allow(self, key: str, limit: int, per_seconds: float) -> bool: ...

    def used(self, key: str) -> int:
        """How many times ``key`` was counted in its current window (0 when none is open)."""
        ...


class InboxStore(Protocol):
    """Per-sender queues, oldest first: Alipay's inbound messages, the web chat's outbox."""

    def push(self, sender: str, item: dict) -> None: ...

    def pop(self, sender: str) -> dict | None: ...

    def size(self, sender: str) -> int: ...


def _encode(tracker: dict) -> bytes:
    return json.dumps(tracker, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode(sender_id: str, raw: bytes | str) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("discarding an unreadable tracker for sender %r", sender_id)
        return None
    return value if isinstance(value, dict) else None


def _check_ttl(ttl_seconds: float | None, *, optional: bool = False) -> None:
    if ttl_seconds is None and optional:
        return
    if ttl_seconds is None or ttl_seconds <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl_seconds!r}")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


# --------------------------------------------------------------------------- memory


class _ExpiringDict:
    """A dict whose entries expire; expired entries are purged lazily and by periodic sweeps.

    Callers hold ``self.mutex`` around every use.
    """

    SWEEP_EVERY = 60.0

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self._items: dict[str, tuple[float | None, Any]] = {}
        self._next_sweep = time.monotonic() + self.SWEEP_EVERY

    def get(self, key: str, now: float) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires_at, value = item
        if expires_at is not None and expires_at <= now:
            del self._items[key]
            return None
        return value

    def set(self, key: str, value: Any, expires_at: float | None, now: float) -> None:
        self._items[key] = (expires_at, value)
        if now >= self._next_sweep:
            self._items = {
                k: item for k, item in self._items.items() if item[0] is None or item[0] > now
            }
            self._next_sweep = now + self.SWEEP_EVERY

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class MemoryTrackerStore:
    """Trackers kept as JSON text, so callers get a fresh copy and the same limits as Redis."""

    def __init__(self) -> None:
        self._data = _ExpiringDict()

    def get(self, sender_id: str) -> dict | None:
        with self._data.mutex:
            raw = self._data.get(sender_id, time.monotonic())
        return None if raw is None else _decode(sender_id, raw)

    def save(self, sender_id: str, tracker: dict, ttl_seconds: float | None) -> None:
        _check_ttl(ttl_seconds, optional=True)
        raw = _encode(tracker)
        with self._data.mutex:
            now = time.monotonic()
            expires_at = None if ttl_seconds is None else now + ttl_seconds
            self._data.set(sender_id, raw, expires_at, now)

    def delete(self, sender_id: str) -> None:
        with self._data.mutex:
            self._data.pop(sender_id)


class _LockEntry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class MemoryLockStore:
    """One ``threading.Lock`` per sender, dropped when nobody holds or waits for it.

    ``timeout`` (the lifetime of an abandoned lock) is accepted for interface parity and
    ignored: an in-process holder always releases when its ``with`` block ends.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _LockEntry] = {}

    @contextmanager
    def lock(
        self,
        sender_id: str,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> Iterator[None]:
        with self._guard:
            entry = self._entries.get(sender_id)
            if entry is None:
                entry = self._entries[sender_id] = _LockEntry()
            entry.users += 1
        try:
            if blocking_timeout is None:
                acquired = entry.lock.acquire()
            elif blocking_timeout <= 0:
                acquired = entry.lock.acquire(blocking=False)
            else:
                acquired = entry.lock.acquire(timeout=blocking_timeout)
            if not acquired:
                raise LockTimeout(
                    f"lock for sender {sender_id!r} not acquired within {blocking_timeout} s"
                )
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[sender_id]

    def __len__(self) -> int:
        """How many senders currently hold or wait for a lock."""
        with self._guard:
            return len(self._entries)


class _StoredTurn:
    def __init__(self, trackers: TrackerStore, tracker_key: str) -> None:
        self._trackers = trackers
        self._key = tracker_key
        self.tracker = trackers.get(tracker_key)

    def save(self, tracker: dict, ttl_seconds: float | None) -> None:
        self._trackers.save(self._key, tracker, ttl_seconds)


class PairedTurnStore:
    """A turn made of a lock store and a tracker store, one call each (the memory stores)."""

    def __init__(self, locks: LockStore, trackers: TrackerStore) -> None:
        self._locks = locks
        self._trackers = trackers

    @contextmanager
    def begin(
        self,
        lock_id: str,
        tracker_key: str | None = None,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> Iterator[Turn]:
        with self._locks.lock(lock_id, timeout, blocking_timeout):
            yield _StoredTurn(self._trackers, tracker_key or lock_id)


class MemoryDedupeStore:
    def __init__(self) -> None:
        self._seen = _ExpiringDict()

    def first_time(self, key: str, ttl_seconds: float) -> bool:
        _check_ttl(ttl_seconds)
        with self._seen.mutex:
            now = time.monotonic()
            if self._seen.get(key, now) is not None:
                return False
            self._seen.set(key, True, now + ttl_seconds, now)
            return True


class MemoryRateLimiter:
    """Fixed window starting at the first request of a key: ``limit`` requests per window."""

    def __init__(self) -> None:
        self._windows = _ExpiringDict()

    def allow(self, key: str, limit: int, per_seconds: float) -> bool:
        _check_ttl(per_seconds)
        with self._windows.mutex:
            now = time.monotonic()
            window = self._windows.get(key, now)
            if window is None:
                window = [0]
                self._windows.set(key, window, now + per_seconds, now)
            window[0] += 1
            return window[0] <= limit

    def used(self, key: str) -> int:
        with self._windows.mutex:
            window = self._windows.get(key, time.monotonic())
            return window[0] if window else 0


# --------------------------------------------------------------------------- redis


class MemoryInboxStore:
    """The embedded default: the same queues in this process (jobs run on its threads)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queues: dict[str, deque[str]] = {}

    def push(self, sender: str, item: dict) -> None:
        with self._mutex:
            self._queues.setdefault(sender, deque()).append(json.dumps(item, ensure_ascii=False))

    def pop(self, sender: str) -> dict | None:
        with self._mutex:
            queue = self._queues.get(sender)
            if not queue:
                return None
            raw = queue.popleft()
            if not queue:
                del self._queues[sender]
        return json.loads(raw)

    def size(self, sender: str) -> int:
        with self._mutex:
            return len(self._queues.get(sender) or ())


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Translate redis-py's exceptions into the store exceptions."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError) as error:
        raise StoreUnavailable(f"Redis unavailable: {error}") from error
    except redis.RedisError as error:
        raise StoreError(f"Redis error: {error}") from error


class _RedisStore:
    namespace = ""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}{self.namespace}:"

    def _key(self, name: str) -> str:
        return self._prefix + name


class RedisTrackerStore(_RedisStore):
    namespace = "tracker"

    def get(self, sender_id: str) -> dict | None:
        with _redis_errors():
            raw = self._client.get(self._key(sender_id))
        return None if raw is None else _decode(sender_id, raw)

    def save(self, sender_id: str, tracker: dict, ttl_seconds: float | None) -> None:
        _check_ttl(ttl_seconds, optional=True)
        raw = _encode(tracker)
        px = None if ttl_seconds is None else _milliseconds(ttl_seconds)
        with _redis_errors():
            self._client.set(self._key(sender_id), raw, px=px)

    def delete(self, sender_id: str) -> None:
        with _redis_errors():
            self._client.delete(self._key(sender_id))


class RedisLockStore(_RedisStore):
    """redis-py's token-based ``Lock``: only the holder's token can release it, and it expires
    after ``timeout`` seconds if the holder dies."""

    namespace = "lock"
    poll_interval = 0.05

    @contextmanager
    def lock(
        self,
        sender_id: str,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> Iterator[None]:
        lock = self._client.lock(
            self._key(sender_id),
            timeout=timeout,
            sleep=self.poll_interval,
            blocking_timeout=max(blocking_timeout, 0) if blocking_timeout is not None else None,
            thread_local=False,  # one Lock object per acquisition, so its token is ours alone
        )
        with _redis_errors():
            acquired = lock.acquire()
        if not acquired:
            raise LockTimeout(
                f"lock for sender {sender_id!r} not acquired within {blocking_timeout} s"
            )
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                log.warning(
                    "lock for sender %r expired before release (held over %s s)",
                    sender_id,
                    timeout,
                )
            except redis.RedisError as error:
                # The key expires by itself after ``timeout``; don't mask the block's outcome.
                log.warning("could not release the lock for sender %r: %s", sender_id, error)


class _RedisTurn:
    def __init__(self, tracker: dict | None) -> None:
        self.tracker = tracker
        self.pending: tuple[bytes, str] | None = None
        """The encoded tracker and its lifetime in ms ("" for none), written on release."""

    def save(self, tracker: dict, ttl_seconds: float | None) -> None:
        _check_ttl(ttl_seconds, optional=True)
        self.pending = (
            _encode(tracker),
            "" if ttl_seconds is None else str(_milliseconds(ttl_seconds)),
        )


class RedisTurnStore:
    """A turn in two round trips: one script takes the lock and reads the tracker, one writes
    the tracker and releases the lock. The lock is :class:`RedisLockStore`'s (same key, same
    token rule: only its holder's token releases it, it expires after ``timeout``)."""

    _CLAIM = """
local taken
if ARGV[2] == '' then
    taken = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
    taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end
if not taken then
    return false
end
return {1, redis.call('GET', KEYS[2])}
"""
    _FINISH = """
if ARGV[2] == '1' then
    if ARGV[4] == '' then
        redis.call('SET', KEYS[2], ARGV[3])
    else
        redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
    end
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

    def __init__(self, locks: RedisLockStore, trackers: RedisTrackerStore) -> None:
        self._locks = locks
        self._trackers = trackers
        self._claim = locks._client.register_script(self._CLAIM)
        self._finish = locks._client.register_script(self._FINISH)

    @contextmanager
    def begin(
        self,
        lock_id: str,
        tracker_key: str | None = None,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        blocking_timeout: float | None = DEFAULT_LOCK_WAIT,
    ) -> Iterator[Turn]:
        tracker_key = tracker_key or lock_id
        keys = [self._locks._key(lock_id), self._trackers._key(tracker_key)]
        token = uuid.uuid4().hex
        turn = _RedisTurn(self._wait_for(keys, token, lock_id, timeout, blocking_timeout))
        try:
            yield turn
        except BaseException:
            self._end(keys, token, turn, lock_id, timeout, quiet=True)
            raise
        self._end(keys, token, turn, lock_id, timeout, quiet=turn.pending is None)

    def _wait_for(self, keys, token, lock_id, timeout, blocking_timeout) -> dict | None:
        """Poll like redis-py's ``Lock.acquire``; the tracker read with the winning attempt."""
        px = "" if timeout is None else str(_milliseconds(timeout))
        deadline = None if blocking_timeout is None else time.monotonic() + max(blocking_timeout, 0)
        poll = self._locks.poll_interval
        while True:
            with _redis_errors():
                claimed = self._claim(keys=keys, args=[token, px])
            if claimed:
                raw = claimed[1]
                return None if raw is None else _decode(lock_id, raw)
            if deadline is not None and time.monotonic() + poll > deadline:
                raise LockTimeout(
                    f"lock for sender {lock_id!r} not acquired within {blocking_timeout} s"
                )
            time.sleep(poll)

    def _end(self, keys, token, turn: _RedisTurn, lock_id, timeout, *, quiet: bool) -> None:
        """Write the saved tracker (if any) and release the lock if it is still ours.

        A failed write is raised after a block that ended normally (the turn's state is lost);
        otherwise failures are logged — the lock expires by itself after ``timeout``, and the
        block's own exception must not be masked.
        """
        raw, px = turn.pending or (b"", "")
        try:
            with _redis_errors():
                released = self._finish(
                    keys=keys, args=[token, "0" if turn.pending is None else "1", raw, px]
                )
        except StoreError as error:
            if not quiet:
                raise
            log.warning("could not release the lock for sender %r: %s", lock_id, error)
            return
        if not released:
            log.warning(
                "lock for sender %r expired before release (held over %s s)", lock_id, timeout
            )


class RedisDedupeStore(_RedisStore):
    namespace = "dedupe"

    def first_time(self, key: str, ttl_seconds: float) -> bool:
        _check_ttl(ttl_seconds)
        with _redis_errors():
            return bool(self._client.set(self._key(key), 1, nx=True, px=_milliseconds(ttl_seconds)))


class RedisRateLimiter(_RedisStore):
    """Fixed window starting at the first request of a key, counted atomically by a script."""

    namespace = "rate"
    _SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        super().__init__(client, prefix)
        self._count = client.register_script(self._SCRIPT)

    def allow(self, key: str, limit: int, per_seconds: float) -> bool:
        _check_ttl(per_seconds)
        with _redis_errors():
            count = self._count(keys=[self._key(key)], args=[_milliseconds(per_seconds)])
        return int(count) <= limit

    def used(self, key: str) -> int:
        with _redis_errors():
            return int(self._client.get(self._key(key)) or 0)


class RedisInboxStore(_RedisStore):
    """One Redis list per sender, ``<prefix><name>:inbox:<sender>``, expiring unread."""

    def __init__(self, client: redis.Redis, prefix: str, name: str, ttl_seconds: float) -> None:
        self._client = client
        self._prefix = f"{prefix}{name}:inbox:"
        self._ttl = _milliseconds(ttl_seconds)

    def push(self, sender: str, item: dict) -> None:
        key = self._key(sender)
        with _redis_errors():
            pipe = self._client.pipeline()
            pipe.rpush(key, json.dumps(item, ensure_ascii=False))
            pipe.pexpire(key, self._ttl)
            pipe.execute()

    def pop(self, sender: str) -> dict | None:
        with _redis_errors():
            raw = self._client.lpop(self._key(sender))
        return None if raw is None else json.loads(raw)

    def size(self, sender: str) -> int:
        with _redis_errors():
            return int(self._client.llen(self._key(sender)))


def redis_client(url: str) -> redis.Redis:
    """A client that fails within about a second when Redis is down and reconnects by itself.

    One quick retry on a dropped connection covers pooled sockets left over from before a
    Redis restart; timeouts are not retried (a retried INCR could count twice).
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.05),
            retries=1,
            supported_errors=(redis.ConnectionError,),
        ),
    )


# --------------------------------------------------------------------------- factory


@dataclass
class Stores:
    trackers: TrackerStore
    locks: LockStore
    dedupe: DedupeStore
    rate_limits: RateLimiter
    client: redis.Redis | None = None
    """The Redis client, or None for the in-memory stores."""
    prefix: str = DEFAULT_PREFIX
    turns: TurnStore | None = None
    """Lock + tracker per turn; by default :attr:`locks` and :attr:`trackers` one call each."""
    _inboxes: dict[str, InboxStore] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.turns is None:
            self.turns = PairedTurnStore(self.locks, self.trackers)

    def inbox(self, name: str, ttl_seconds: float = 24 * 3600) -> InboxStore:
        """The per-sender queues called ``name`` (one object per name and process)."""
        if name not in self._inboxes:
            self._inboxes[name] = (
                MemoryInboxStore()
                if self.client is None
                else RedisInboxStore(self.client, self.prefix, name, ttl_seconds)
            )
        return self._inboxes[name]

    @property
    def backend(self) -> str:
        return "memory" if self.client is None else "redis"

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` if the backing server cannot be reached."""
        if self.client is not None:
            with _redis_errors():
                self.client.ping()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def make_stores(redis_url: str | None, prefix: str = DEFAULT_PREFIX) -> Stores:
    """In-memory stores when ``redis_url`` is empty, else Redis stores under ``prefix``.

    Connecting is lazy: call :meth:`Stores.ping` to check Redis at start-up.
    """
    if not redis_url:
        return Stores(
            trackers=MemoryTrackerStore(),
            locks=MemoryLockStore(),
            dedupe=MemoryDedupeStore(),
            rate_limits=MemoryRateLimiter(),
        )
    client = redis_client(redis_url)
    trackers = RedisTrackerStore(client, prefix)
    locks = RedisLockStore(client, prefix)
    return Stores(
        trackers=trackers,
        locks=locks,
        dedupe=RedisDedupeStore(client, prefix),
        rate_limits=RedisRateLimiter(client, prefix),
        client=client,
        prefix=prefix,
        turns=RedisTurnStore(locks, trackers),
    )


__all__ = [
    "DEFAULT_PREFIX",
    "DedupeStore",
    "InboxStore",
    "LockStore",
    "LockTimeout",
    "RateLimiter",
    "StoreError",
    "StoreUnavailable",
    "Stores",
    "TrackerStore",
    "Turn",
    "TurnStore",
    "make_stores",
    "redis_client",
]
