"""One suite for both store implementations (memory and Redis), plus a Redis outage test."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
import redis

from bot.stores import (
    LockTimeout,
    MemoryLockStore,
    StoreUnavailable,
    make_stores,
)
from tests.support import free_port, service_missing


@pytest.fixture(params=["memory", "redis"])
def stores(request):
    if request.param == "memory":
        made = make_stores(None)
    else:
        made = make_stores(
            request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        )
    yield made
    made.close()


@pytest.fixture
def redis_stores(redis_url, redis_prefix):
    made = make_stores(redis_url, redis_prefix)
    yield made
    made.close()


def run_threads(count, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


# --------------------------------------------------------------------------- trackers


def test_tracker_round_trip(stores):
    tracker = {"slots": {"id_number": "110101194001011234", "姓名": "张三"}, "events": [1, 2]}
    assert stores.trackers.get("alice") is None
    stores.trackers.save("alice", tracker, ttl_seconds=60)
    assert stores.trackers.get("alice") == tracker
    assert stores.trackers.get("bob") is None

    stores.trackers.save("alice", {"slots": {}}, ttl_seconds=60)
    assert stores.trackers.get("alice") == {"slots": {}}

    stores.trackers.delete("alice")
    assert stores.trackers.get("alice") is None
    stores.trackers.delete("alice")  # deleting a missing tracker is fine


def test_tracker_get_returns_a_copy(stores):
    stores.trackers.save("alice", {"slots": {"a": 1}}, ttl_seconds=60)
    stores.trackers.get("alice")["slots"]["a"] = 2
    assert stores.trackers.get("alice") == {"slots": {"a": 1}}


def test_tracker_expires_after_ttl(stores):
    stores.trackers.save("alice", {"n": 1}, ttl_seconds=1)
    stores.trackers.save("bob", {"n": 2}, ttl_seconds=30)
    assert stores.trackers.get("alice") == {"n": 1}
    time.sleep(1.2)
    assert stores.trackers.get("alice") is None
    assert stores.trackers.get("bob") == {"n": 2}


def test_tracker_save_refreshes_ttl(stores):
    stores.trackers.save("alice", {"n": 1}, ttl_seconds=1)
    time.sleep(0.6)
    stores.trackers.save("alice", {"n": 2}, ttl_seconds=1)
    time.sleep(0.6)
    assert stores.trackers.get("alice") == {"n": 2}


def test_tracker_rejects_bad_input(stores):
    with pytest.raises(ValueError):
        stores.trackers.save("alice", {"n": 1}, ttl_seconds=0)
    with pytest.raises(TypeError):
        stores.trackers.save("alice", {"when": object()}, ttl_seconds=10)
    assert stores.trackers.get("alice") is None


# --------------------------------------------------------------------------- locks


def test_lock_is_exclusive_per_sender(stores):
    events = []

    def handle(i):
        with stores.locks.lock("alice", timeout=10, blocking_timeout=20):
            events.append(("in", i))
            time.sleep(0.02)
            events.append(("out", i))

    run_threads(8, handle)
    assert len(events) == 16
    for position in range(0, 16, 2):
        (kind_in, who_in), (kind_out, who_out) = events[position], events[position + 1]
        assert (kind_in, kind_out) == ("in", "out")
        assert who_in == who_out


def test_second_acquirer_waits_for_the_first(stores):
    events = []
    holding = threading.Event()

    def first(_):
        with stores.locks.lock("alice"):
            holding.set()
            events.append("first in")
            time.sleep(0.4)
            events.append("first out")

    def second(_):
        holding.wait(5)
        started = time.monotonic()
        with stores.locks.lock("alice", blocking_timeout=5):
            events.append(("second in", time.monotonic() - started))

    threads = [
        threading.Thread(target=first, args=(0,)),
        threading.Thread(target=second, args=(1,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert events[:2] == ["first in", "first out"]
    label, waited = events[2]
    assert label == "second in"
    assert waited >= 0.25


def test_lock_timeout_raises_and_other_senders_are_free(stores):
    holding = threading.Event()
    done = threading.Event()

    def holder():
        with stores.locks.lock("alice"):
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        with pytest.raises(LockTimeout), stores.locks.lock("alice", blocking_timeout=0.3):
            pytest.fail("acquired a lock held by another thread")
        assert 0.2 <= time.monotonic() - started < 2

        with pytest.raises(LockTimeout), stores.locks.lock("alice", blocking_timeout=0):
            pass

        started = time.monotonic()
        with stores.locks.lock("bob", blocking_timeout=1):
            pass
        assert time.monotonic() - started < 0.5
    finally:
        done.set()
        thread.join(10)

    with stores.locks.lock("alice", blocking_timeout=1):
        pass  # released by the holder


def test_lock_is_released_when_the_block_raises(stores):
    with pytest.raises(RuntimeError), stores.locks.lock("alice"):
        raise RuntimeError("handler failed")
    with stores.locks.lock("alice", blocking_timeout=0.5):
        pass


def test_memory_lock_registry_does_not_grow():
    locks = MemoryLockStore()

    def handle(i):
        for n in range(20):
            with locks.lock(f"sender-{(i + n) % 5}"):
                pass

    run_threads(10, handle)
    assert len(locks) == 0
    with locks.lock("alice"):
        assert len(locks) == 1
    assert len(locks) == 0


# --------------------------------------------------------------------------- turns (lock + tracker)


def test_a_turn_reads_the_tracker_it_locked_and_saves_on_release(stores):
    with stores.turns.begin("alice") as turn:
        assert turn.tracker is None
        turn.save({"slots": {"姓名": "张三"}}, ttl_seconds=60)
    assert stores.trackers.get("alice") == {"slots": {"姓名": "张三"}}

    with stores.turns.begin("alice") as turn:
        assert turn.tracker == {"slots": {"姓名": "张三"}}
        turn.tracker["slots"]["姓名"] = "李四"  # a copy: nothing stored until save
    assert stores.trackers.get("alice") == {"slots": {"姓名": "张三"}}

    with stores.turns.begin("alice", "rasa:alice") as turn:  # lock alice, record rasa:alice
        assert turn.tracker is None
        turn.save({"paused": True}, ttl_seconds=None)
    assert stores.trackers.get("rasa:alice") == {"paused": True}
    assert stores.trackers.get("alice") == {"slots": {"姓名": "张三"}}


def test_turns_of_one_sender_run_one_at_a_time(stores):
    stores.trackers.save("alice", {"n": 0}, ttl_seconds=60)

    def count(_):
        for _ in range(5):
            with stores.turns.begin("alice", blocking_timeout=20) as turn:
                turn.save({"n": turn.tracker["n"] + 1}, ttl_seconds=60)

    run_threads(8, count)
    assert stores.trackers.get("alice") == {"n": 40}  # no read of a stale tracker


def test_a_turn_shares_the_senders_lock(stores):
    with stores.locks.lock("alice"):
        with pytest.raises(LockTimeout), stores.turns.begin("alice", blocking_timeout=0.3):
            pytest.fail("a turn ran beside a holder of the lock")
        with stores.turns.begin("bob", blocking_timeout=0):
            pass
    with (
        stores.turns.begin("alice", blocking_timeout=0),
        pytest.raises(LockTimeout),
        stores.locks.lock("alice", blocking_timeout=0),
    ):
        pass
    with stores.locks.lock("alice", blocking_timeout=0):
        pass  # released by the turn


def test_a_turn_that_raises_keeps_what_it_saved_and_releases(stores):
    with pytest.raises(RuntimeError), stores.turns.begin("alice") as turn:
        turn.save({"n": 1}, ttl_seconds=60)
        raise RuntimeError("handler failed")
    assert stores.trackers.get("alice") == {"n": 1}
    with pytest.raises(RuntimeError), stores.turns.begin("alice"):
        raise RuntimeError("handler failed before saving")
    assert stores.trackers.get("alice") == {"n": 1}
    with stores.turns.begin("alice", blocking_timeout=0.5):
        pass


def test_a_turn_rejects_bad_input_and_stores_nothing(stores):
    with stores.turns.begin("alice") as turn:
        with pytest.raises(ValueError):
            turn.save({"n": 1}, ttl_seconds=0)
        with pytest.raises(TypeError):
            turn.save({"when": object()}, ttl_seconds=10)
    assert stores.trackers.get("alice") is None
    with stores.turns.begin("alice", blocking_timeout=0):
        pass


def test_a_turn_whose_lock_expired_leaves_the_next_holders_lock_alone(redis_stores, caplog):
    """Held past ``timeout``: the lock went to another holder; our release must not free it.
    The tracker is still written, as a separate save then release always did."""
    with redis_stores.turns.begin("alice", timeout=0.3) as turn:
        time.sleep(0.5)
        other = redis_stores.locks.lock("alice", blocking_timeout=0)
        other.__enter__()  # the next holder gets the expired lock
        turn.save({"n": 1}, ttl_seconds=60)
    try:
        assert "expired before release" in caplog.text
        assert redis_stores.trackers.get("alice") == {"n": 1}
        with pytest.raises(LockTimeout), redis_stores.turns.begin("alice", blocking_timeout=0):
            pass
    finally:
        other.__exit__(None, None, None)
    with redis_stores.turns.begin("alice", blocking_timeout=0) as turn:
        assert turn.tracker == {"n": 1}


def test_an_abandoned_turn_lock_expires(redis_stores):
    held = redis_stores.turns.begin("alice", timeout=0.3)
    held.__enter__()  # its holder died without releasing
    started = time.monotonic()
    with redis_stores.turns.begin("alice", blocking_timeout=5):
        assert time.monotonic() - started < 2


# --------------------------------------------------------------------------- dedupe


def test_dedupe_one_winner_among_racing_threads(stores):
    barrier = threading.Barrier(20)
    results = []

    def race(_):
        barrier.wait(5)
        results.append(stores.dedupe.first_time("wechat:msg-1", ttl_seconds=30))

    run_threads(20, race)
    assert len(results) == 20
    assert results.count(True) == 1
    assert stores.dedupe.first_time("wechat:msg-2", ttl_seconds=30) is True


def test_dedupe_allows_again_after_ttl(stores):
    assert stores.dedupe.first_time("msg", ttl_seconds=0.5) is True
    assert stores.dedupe.first_time("msg", ttl_seconds=0.5) is False
    time.sleep(0.7)
    assert stores.dedupe.first_time("msg", ttl_seconds=0.5) is True
    assert stores.dedupe.first_time("msg", ttl_seconds=0.5) is False


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_allows_limit_then_refuses_until_the_window_ends(stores):
    assert [stores.rate_limits.allow("alice", 3, per_seconds=0.5) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert stores.rate_limits.allow("bob", 3, per_seconds=0.5) is True
    time.sleep(0.7)
    assert stores.rate_limits.allow("alice", 3, per_seconds=0.5) is True


def test_rate_limit_tells_how_much_of_a_window_is_used_without_counting(stores):
    assert stores.rate_limits.used("carol") == 0
    for _ in range(3):
        stores.rate_limits.allow("carol", 2, per_seconds=0.5)
    assert stores.rate_limits.used("carol") == 3
    assert stores.rate_limits.used("carol") == 3  # looking is not counting
    time.sleep(0.7)
    assert stores.rate_limits.used("carol") == 0


def test_rate_limit_counts_racing_threads_exactly(stores):
    barrier = threading.Barrier(20)
    results = []

    def race(_):
        barrier.wait(5)
        results.append(stores.rate_limits.allow("alice", 7, per_seconds=30))

    run_threads(20, race)
    assert results.count(True) == 7


def test_ping(stores):
    stores.ping()


# --------------------------------------------------------------------------- Redis outage


class PrivateRedis:
    def __init__(self, binary: str, port: int, workdir) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            probe.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def exercise(stores) -> None:
    stores.ping()
    stores.trackers.save("alice", {"n": 1}, ttl_seconds=60)
    assert stores.trackers.get("alice") == {"n": 1}
    with stores.locks.lock("alice", blocking_timeout=1):
        pass
    assert stores.dedupe.first_time(f"msg-{time.monotonic()}", ttl_seconds=60) is True
    assert stores.rate_limits.allow(f"rate-{time.monotonic()}", 1, per_seconds=60) is True


def test_redis_outage_fails_fast_and_recovers(tmp_path):
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    server = PrivateRedis(binary, free_port(), tmp_path)
    try:
        server.start()
    except (OSError, redis.ConnectionError) as error:
        server.stop()
        service_missing("redis-server", error)

    stores = make_stores(f"redis://127.0.0.1:{server.port}/0", prefix="outage:")
    try:
        exercise(stores)

        # Down: every operation fails quickly with StoreUnavailable.
        server.stop()
        operations = [
            stores.ping,
            lambda: stores.trackers.get("alice"),
            lambda: stores.trackers.save("alice", {"n": 2}, ttl_seconds=60),
            lambda: stores.trackers.delete("alice"),
            lambda: stores.dedupe.first_time("msg", ttl_seconds=60),
            lambda: stores.rate_limits.allow("alice", 5, per_seconds=60),
            lambda: stores.locks.lock("alice", blocking_timeout=5).__enter__(),
        ]
        for operation in operations:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                operation()
            assert time.monotonic() - started < 3

        # Back: the same Stores object works again, no restart needed.
        server.start()
        exercise(stores)

        # A restart nobody noticed (pooled connections are stale) is also survived.
        server.stop()
        server.start()
        exercise(stores)
    finally:
        stores.close()
        server.stop()
