"""The delivery rules on their own, in Redis and in memory: one reply per message, whoever
finishes or gives up first; one sender's turns in order."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from channels.wechat_state import (
    KEPT,
    LATE,
    LATE_PENDING,
    OWED,
    PASSIVE,
    SUPERSEDED,
    TAKEN,
    WAIT,
    MemoryDeliveryState,
    RedisDeliveryState,
)


@pytest.fixture(params=["redis", "memory"])
def state(request):
    if request.param == "memory":
        yield MemoryDeliveryState()
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    client = redis.Redis.from_url(redis_url)
    yield RedisDeliveryState(client, prefix)
    client.close()


def test_passive_claim_by_the_waiting_request(state):
    attempt = state.arrive("m1")
    assert state.claim("m1", attempt, give_up=False).kind == WAIT
    assert state.finish("m1", ["答复"], passive_ok=True) is False
    outcome = state.claim("m1", attempt, give_up=False)
    assert (outcome.kind, outcome.texts) == (PASSIVE, ("答复",))
    assert state.claim("m1", attempt, give_up=True).kind == TAKEN


def test_give_up_first_then_the_run_owes_a_late_delivery(state):
    attempt = state.arrive("m2")
    assert state.claim("m2", attempt, give_up=True).kind == LATE_PENDING
    assert state.finish("m2", ["答复"], passive_ok=True) is True


def test_result_too_long_for_passive_is_claimed_late(state):
    attempt = state.arrive("m3")
    state.finish("m3", ["长"], passive_ok=False)
    outcome = state.claim("m3", attempt, give_up=False)
    assert (outcome.kind, outcome.texts) == (LATE, ("长",))


def test_only_the_latest_attempt_may_claim(state):
    first = state.arrive("m4")
    retry = state.arrive("m4")
    state.finish("m4", ["答复"], passive_ok=True)
    assert state.claim("m4", first, give_up=False).kind == SUPERSEDED
    assert state.claim("m4", retry, give_up=False).kind == PASSIVE


def test_a_claimed_result_is_not_kept(state):
    attempt = state.arrive("m5")
    state.finish("m5", ["张三的认证已通过"], passive_ok=True)
    state.claim("m5", attempt, give_up=False)
    if isinstance(state, RedisDeliveryState):
        assert state.client.get(state._keys("m5")[2]) is None
    else:
        assert state._get("result:m5") is None


def test_a_signature_binds_one_message(state):
    assert state.bind_signature("sig-1", "m6")
    assert state.bind_signature("sig-1", "m6")  # WeChat's retry with the same URL
    assert not state.bind_signature("sig-1", "m7")


@pytest.mark.parametrize("round_", range(30))
def test_exactly_one_delivery_whatever_the_timing(state, round_):
    """The run finishing races three attempts that poll and give up at random moments."""
    key = f"race-{round_}"
    deliveries: list[str] = []
    lock = threading.Lock()

    def request(pause: float, patience: float) -> None:
        time.sleep(pause)
        attempt = state.arrive(key)
        deadline = time.monotonic() + patience
        while True:
            give_up = time.monotonic() >= deadline
            outcome = state.claim(key, attempt, give_up=give_up)
            if outcome.kind in (PASSIVE, LATE):
                with lock:
                    deliveries.append(outcome.kind)
            if outcome.kind != WAIT:
                return
            time.sleep(0.001)

    def run() -> None:
        time.sleep(random.uniform(0, 0.03))
        if state.finish(key, ["答复"], passive_ok=True):
            with lock:
                deliveries.append("job")

    threads = [threading.Thread(target=run)] + [
        threading.Thread(target=request, args=(random.uniform(0, 0.02), random.uniform(0, 0.03)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(deliveries) == 1, deliveries


def test_turns_follow_tickets(state):
    sender = "oOrder"
    tickets = [state.take_ticket(sender) for _ in range(4)]
    assert tickets == [1, 2, 3, 4]
    order: list[int] = []

    def turn(ticket: int) -> None:
        assert state.wait_turn(sender, ticket, timeout=5)
        order.append(ticket)
        state.turn_done(sender, ticket)

    threads = [threading.Thread(target=turn, args=(t,)) for t in reversed(tickets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == [1, 2, 3, 4]


def test_finishing_a_turn_lets_the_next_go_and_hands_over_the_reply(state):
    sender = "oFinish"
    first, second = state.take_ticket(sender), state.take_ticket(sender)
    assert state.wait_turn(sender, second, timeout=0) is False
    attempt = state.arrive("m6")
    assert state.finish_turn(sender, first, "m6", ["答复"], passive_ok=True) is False
    assert state.wait_turn(sender, second, timeout=0) is True
    outcome = state.claim("m6", attempt, give_up=False)
    assert (outcome.kind, outcome.texts) == (PASSIVE, ("答复",))

    attempt = state.arrive("m7")  # the request gave up first: the run owes a late delivery
    assert state.claim("m7", attempt, give_up=True).kind == LATE_PENDING
    assert state.finish_turn(sender, second, "m7", ["答复"], passive_ok=True) is True
    assert state.claim("m7", attempt, give_up=False).kind == TAKEN
    third = state.take_ticket(sender)
    assert state.wait_turn(sender, third, timeout=0) is True


def test_a_lost_turn_blocks_only_for_the_timeout(state):
    sender = "oStuck"
    state.take_ticket(sender)  # its run died without turn_done
    second = state.take_ticket(sender)
    started = time.monotonic()
    assert state.wait_turn(sender, second, timeout=0.2) is False
    assert time.monotonic() - started < 1.0
    state.turn_done(sender, second)
    assert state.wait_turn(sender, state.take_ticket(sender), timeout=0.2) is True


def test_accept_binds_the_signature_dedupes_and_counts_attempts_at_once(state):
    first = state.accept("sig-a", "m-accept")
    assert (first.first, first.attempt) == (True, 1)
    retry = state.accept("sig-b", "m-accept")  # WeChat re-sends with a new signature
    assert (retry.first, retry.attempt) == (False, 2)
    same_url_again = state.accept("sig-a", "m-accept")
    assert (same_url_again.first, same_url_again.attempt) == (False, 3)
    assert state.accept("sig-a", "m-other") is None  # a signed URL carries one message
    assert state.accept("sig-c", "m-other").first


def test_the_first_arrival_takes_the_senders_ticket_in_the_same_step(state):
    sender = "oAcceptTicket"
    first = state.accept("sig-t1", "m-t1", sender=sender)
    assert (first.first, first.ticket, first.in_turn) == (True, 1, True)
    second = state.accept("sig-t2", "m-t2", sender=sender)
    assert (second.ticket, second.in_turn) == (2, False)  # the first is still running
    retry = state.accept("sig-t3", "m-t2", sender=sender)
    assert (retry.first, retry.ticket) == (False, 0)  # a retry takes no ticket
    state.turn_done(sender, first.ticket)
    assert state.wait_turn(sender, second.ticket, timeout=0)


def test_a_run_hands_its_result_to_the_request_still_waiting(state):
    sender = "oHandOver"
    arrival = state.accept("sig-h1", "m-h1", sender=sender)
    kind = state.hand_over(sender, arrival.ticket, "m-h1", ["答复"], True, arrival.attempt)
    assert kind == PASSIVE
    assert state.claim("m-h1", arrival.attempt, give_up=False).kind == TAKEN  # nothing twice
    assert state.accept("sig-h2", "m-h2", sender=sender).in_turn  # the turn is over

    # Too long for a passive reply: the waiting request sends it as customer-service messages.
    arrival = state.accept("sig-h3", "m-h3", sender=sender)
    assert state.hand_over(sender, arrival.ticket, "m-h3", ["长"], False, arrival.attempt) == LATE


def test_a_retry_or_a_request_that_gave_up_takes_the_result_instead(state):
    sender = "oHandOverLate"
    arrival = state.accept("sig-r1", "m-r1", sender=sender)
    retry = state.accept("sig-r2", "m-r1", sender=sender)  # WeChat gave up on the first
    kind = state.hand_over(sender, arrival.ticket, "m-r1", ["答复"], True, arrival.attempt)
    assert kind == KEPT
    outcome = state.claim("m-r1", retry.attempt, give_up=False)
    assert (outcome.kind, outcome.texts) == (PASSIVE, ("答复",))

    arrival = state.accept("sig-r3", "m-r3", sender=sender)
    assert state.claim("m-r3", arrival.attempt, give_up=True).kind == LATE_PENDING
    assert state.hand_over(sender, arrival.ticket, "m-r3", ["答复"], True, 0) == OWED
