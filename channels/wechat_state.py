"""Who answers a WeChat message, and in which order one person's messages are handled.

WeChat gives a webhook 5 seconds. Without an answer it drops the connection and sends the same
message again (up to three times), possibly to another gunicorn worker while the first run is
still busy. The rules kept here, in Redis (shared by every worker) or in memory (one process):

* **Once.** Only the first arrival of a message runs the engine (``SET NX`` on the message's
  dedupe key; the channel also keeps a durable row, see :mod:`services.processed`); every
  arrival, first or retry, takes an *attempt* number. Binding the signed URL to the message,
  the dedupe and the attempt are one script: one round trip per request.
* **One delivery.** A finished run leaves its result. The *latest* attempt still waiting claims
  it (``SET NX`` on a claim key, inside one Lua script together with the attempt check): as a
  passive reply if it fits, otherwise as customer-service messages. An attempt that reaches its
  deadline first claims ``late``: the run, when it finishes, sees that claim and hands its
  result to an RQ job. Claiming and finishing are each one atomic script, so exactly one of
  them sees the other — the reply goes out once, never twice and never not at all.
  Older attempts stand aside: WeChat has already given up on their connections.
* **In order.** Each accepted message of a sender takes a ticket (``INCR``, in the same script
  as the dedupe); a run waits until the previous ticket is done (bounded, so a crashed worker
  cannot block a person for long).
* **Handed over.** The run and the request that started it live in one process: when that
  request is still the latest attempt and waiting, the run's finishing script claims the
  result for it (:meth:`RedisDeliveryState.hand_over`), so the request needs no claim of its own.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from bot.stores import _redis_errors

MESSAGE_TTL = 600  # seconds a message's dedupe, attempt, result and claim keys live
ORDER_TTL = 3600  # seconds a sender's ticket counters live after their last message
POLL_INTERVAL = 0.05

PASSIVE = "passive"  # the claimer answers this request with the result
LATE = "late"  # the result exists; the claimer must send it as customer-service messages
LATE_PENDING = "late-pending"  # no result yet; the run will hand it to a job when done
TAKEN = "taken"  # someone else has delivered or will deliver
SUPERSEDED = "superseded"  # a newer retry of this message is waiting; it answers
WAIT = "wait"  # no result yet, keep waiting
OWED = "owed"  # the run's result must go out as customer-service messages (a job)
KEPT = "kept"  # the run's result waits for the latest attempt to claim it


@dataclass(frozen=True)
class Arrival:
    """One request for a message: is it the message's first arrival, and its attempt number."""

    first: bool
    attempt: int
    ticket: int = 0  # the sender's ticket, taken with the first arrival when the sender is given
    in_turn: bool = False  # that ticket's predecessor was already done: no need to wait


@dataclass(frozen=True)
class Outcome:
    kind: str
    texts: tuple[str, ...] = ()


def _encode_result(texts: list[str], passive_ok: bool) -> str:
    return ("P" if passive_ok else "L") + json.dumps(texts, ensure_ascii=False)


def _decode_result(raw: bytes | str) -> tuple[str, ...]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return tuple(json.loads(raw[1:]))


class RedisDeliveryState:
    # KEYS: next, done; ARGV[n]: the order ttl. Takes the sender's next ticket.
    _TAKE_TICKET = """
local ticket = redis.call('INCR', KEYS[{next}])
if ticket == 1 or redis.call('EXISTS', KEYS[{done}]) == 0 then
    redis.call('SET', KEYS[{done}], ticket - 1)
end
redis.call('EXPIRE', KEYS[{next}], ARGV[{ttl}])
redis.call('EXPIRE', KEYS[{done}], ARGV[{ttl}])
"""
    # KEYS: signature, dedupe, attempt[, next, done]; ARGV: message key, ttl[, order ttl].
    # {-1} when the signature is bound to another message, else {first (0/1), attempt} and,
    # with the sender's keys on a first arrival, its ticket and the sender's done ticket.
    _ACCEPT = (
        """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
end
local first = 0
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[2]) then first = 1 end
local attempt = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if first == 0 or #KEYS < 5 then return {first, attempt} end
"""
        + _TAKE_TICKET.format(next=4, done=5, ttl=3)
        + """
return {first, attempt, ticket, tonumber(redis.call('GET', KEYS[5]))}
"""
    )
    _ARRIVE = """
local attempt = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return attempt
"""
    # KEYS: attempt, claim, result; ARGV: my attempt, give up (0/1), ttl
    _CLAIM = """
local latest = tonumber(redis.call('GET', KEYS[1]) or '0')
if latest ~= tonumber(ARGV[1]) then return {'superseded'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'taken'} end
local result = redis.call('GET', KEYS[3])
if result then
    local mode = 'late'
    if string.sub(result, 1, 1) == 'P' then mode = 'passive' end
    redis.call('SET', KEYS[2], mode, 'EX', ARGV[3])
    redis.call('DEL', KEYS[3])
    return {mode, result}
end
if ARGV[2] == '1' then
    redis.call('SET', KEYS[2], 'late', 'EX', ARGV[3])
    return {'late-pending'}
end
return {'wait'}
"""
    # KEYS: result, claim; ARGV: encoded result, ttl. Returns 1 when a late delivery is owed.
    # A result is kept only until someone claims it: replies may name people.
    _FINISH = """
if redis.call('GET', KEYS[2]) == 'late' then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0
"""
    # KEYS: next, done; ARGV: ttl
    _TICKET = _TAKE_TICKET.format(next=1, done=2, ttl=1) + "return ticket\n"
    # KEYS: done; ARGV: ticket, ttl
    _DONE = """
local done = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > done then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""
    # KEYS: done, result, claim, attempt; ARGV: ticket, order ttl, encoded result, message ttl,
    # the waiting attempt (0: none). _DONE, then: 'owed' when the request gave up; the claim
    # for the waiting attempt when it is still the latest ('passive' / 'late'); else the result
    # is kept for the latest attempt ('kept').
    _HAND_OVER = """
local done = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > done then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
if redis.call('GET', KEYS[3]) == 'late' then return 'owed' end
if ARGV[5] ~= '0' and tonumber(redis.call('GET', KEYS[4]) or '0') == tonumber(ARGV[5]) then
    local mode = 'late'
    if string.sub(ARGV[3], 1, 1) == 'P' then mode = 'passive' end
    redis.call('SET', KEYS[3], mode, 'EX', ARGV[4])
    return mode
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
return 'kept'
"""

    def __init__(self, client, prefix: str):
        self.client = client
        self.prefix = f"{prefix}wechat:"
        self.dedupe_prefix = f"{prefix}dedupe:wechat:"  # bot.stores.RedisDedupeStore's keys
        self._accept = client.register_script(self._ACCEPT)
        self._arrive = client.register_script(self._ARRIVE)
        self._claim = client.register_script(self._CLAIM)
        self._finish = client.register_script(self._FINISH)
        self._ticket = client.register_script(self._TICKET)
        self._done = client.register_script(self._DONE)
        self._hand_over = client.register_script(self._HAND_OVER)

    def _keys(self, key: str) -> tuple[str, str, str]:
        base = f"{self.prefix}msg:{key}:"
        return base + "attempt", base + "claim", base + "result"

    def bind_signature(self, signature: str, key: str) -> bool:
        """One signed URL carries one message: its retries, never a different body."""
        name = f"{self.prefix}sig:{signature}"
        with _redis_errors():
            if self.client.set(name, key, nx=True, ex=MESSAGE_TTL):
                return True
            bound = self.client.get(name)
        return bound is not None and bound.decode("utf-8", "replace") == key

    def accept(self, signature: str, key: str, sender: str | None = None) -> Arrival | None:
        """:meth:`bind_signature`, the dedupe and :meth:`arrive` at once — and, for the first
        arrival when ``sender`` is given, :meth:`take_ticket`; None when the signature was
        issued for another message."""
        keys = [f"{self.prefix}sig:{signature}", self.dedupe_prefix + key, self._keys(key)[0]]
        args = [key, MESSAGE_TTL]
        if sender is not None:
            keys += self._order_keys(sender)
            args.append(ORDER_TTL)
        with _redis_errors():
            reply = self._accept(keys=keys, args=args)
        if int(reply[0]) < 0:
            return None
        first, attempt = bool(int(reply[0])), int(reply[1])
        if len(reply) < 4:
            return Arrival(first=first, attempt=attempt)
        ticket = int(reply[2])
        return Arrival(first, attempt, ticket, in_turn=int(reply[3]) >= ticket - 1)

    def arrive(self, key: str) -> int:
        with _redis_errors():
            return int(self._arrive(keys=[self._keys(key)[0]], args=[MESSAGE_TTL]))

    def claim(self, key: str, attempt: int, *, give_up: bool) -> Outcome:
        with _redis_errors():
            reply = self._claim(
                keys=list(self._keys(key)), args=[attempt, int(give_up), MESSAGE_TTL]
            )
        kind = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        return Outcome(kind, _decode_result(reply[1]) if len(reply) > 1 else ())

    def finish(self, key: str, texts: list[str], passive_ok: bool) -> bool:
        _, claim, result = self._keys(key)
        with _redis_errors():
            owed = self._finish(
                keys=[result, claim], args=[_encode_result(texts, passive_ok), MESSAGE_TTL]
            )
        return bool(owed)

    def _order_keys(self, sender: str) -> tuple[str, str]:
        base = f"{self.prefix}order:{sender}:"
        return base + "next", base + "done"

    def take_ticket(self, sender: str) -> int:
        with _redis_errors():
            return int(self._ticket(keys=list(self._order_keys(sender)), args=[ORDER_TTL]))

    def wait_turn(self, sender: str, ticket: int, timeout: float) -> bool:
        """Wait until the sender's previous ticket is done; False when ``timeout`` ran out."""
        done_key = self._order_keys(sender)[1]
        deadline = time.monotonic() + timeout
        while True:
            with _redis_errors():
                done = int(self.client.get(done_key) or 0)
            if done >= ticket - 1:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def turn_done(self, sender: str, ticket: int) -> None:
        with _redis_errors():
            self._done(keys=[self._order_keys(sender)[1]], args=[ticket, ORDER_TTL])

    def finish_turn(
        self, sender: str, ticket: int, key: str, texts: list[str], passive_ok: bool
    ) -> bool:
        """:meth:`turn_done` and :meth:`finish` at once; True when a late delivery is owed."""
        return self.hand_over(sender, ticket, key, texts, passive_ok) == OWED

    def hand_over(
        self, sender: str, ticket: int, key: str, texts: list[str], passive_ok: bool, attempt=0
    ) -> str:
        """:meth:`finish_turn`, and the claim for ``attempt`` (the request waiting in this
        process) when it is still the latest: :data:`PASSIVE` / :data:`LATE` for it to deliver,
        :data:`OWED` when the request gave up, else :data:`KEPT`."""
        attempt_key, claim, result = self._keys(key)
        with _redis_errors():
            kind = self._hand_over(
                keys=[self._order_keys(sender)[1], result, claim, attempt_key],
                args=[ticket, ORDER_TTL, _encode_result(texts, passive_ok), MESSAGE_TTL, attempt],
            )
        return kind.decode() if isinstance(kind, bytes) else kind


class MemoryDeliveryState:
    """The same rules for the embedded one-process setup."""

    def __init__(self) -> None:
        self._mutex = threading.Condition()
        self._values: dict[str, tuple[float, object]] = {}
        self._next_sweep = time.monotonic() + 60

    def _get(self, name: str):
        item = self._values.get(name)
        if item is None or item[0] <= time.monotonic():
            self._values.pop(name, None)
            return None
        return item[1]

    def _set(self, name: str, value, ttl: float) -> None:
        now = time.monotonic()
        self._values[name] = (now + ttl, value)
        if now >= self._next_sweep:
            self._values = {k: v for k, v in self._values.items() if v[0] > now}
            self._next_sweep = now + 60

    def bind_signature(self, signature: str, key: str) -> bool:
        with self._mutex:
            bound = self._get(f"sig:{signature}")
            if bound is None:
                self._set(f"sig:{signature}", key, MESSAGE_TTL)
                return True
            return bound == key

    def accept(self, signature: str, key: str, sender: str | None = None) -> Arrival | None:
        with self._mutex:  # reentrant: one step, like the Redis script
            if not self.bind_signature(signature, key):
                return None
            first = self._get(f"seen:{key}") is None
            if first:
                self._set(f"seen:{key}", True, MESSAGE_TTL)
            attempt = self.arrive(key)
            if not first or sender is None:
                return Arrival(first=first, attempt=attempt)
            ticket = self.take_ticket(sender)
            in_turn = (self._get(f"done:{sender}") or 0) >= ticket - 1
            return Arrival(first, attempt, ticket, in_turn)

    def arrive(self, key: str) -> int:
        with self._mutex:
            attempt = (self._get(f"attempt:{key}") or 0) + 1
            self._set(f"attempt:{key}", attempt, MESSAGE_TTL)
            return attempt

    def claim(self, key: str, attempt: int, *, give_up: bool) -> Outcome:
        with self._mutex:
            if (self._get(f"attempt:{key}") or 0) != attempt:
                return Outcome(SUPERSEDED)
            if self._get(f"claim:{key}") is not None:
                return Outcome(TAKEN)
            result = self._get(f"result:{key}")
            if result is not None:
                mode = PASSIVE if result[0] == "P" else LATE
                self._set(f"claim:{key}", mode, MESSAGE_TTL)
                self._values.pop(f"result:{key}", None)
                return Outcome(mode, _decode_result(result))
            if give_up:
                self._set(f"claim:{key}", LATE, MESSAGE_TTL)
                return Outcome(LATE_PENDING)
            return Outcome(WAIT)

    def finish(self, key: str, texts: list[str], passive_ok: bool) -> bool:
        with self._mutex:
            if self._get(f"claim:{key}") == LATE:
                return True
            self._set(f"result:{key}", _encode_result(texts, passive_ok), MESSAGE_TTL)
            return False

    def take_ticket(self, sender: str) -> int:
        with self._mutex:
            ticket = (self._get(f"next:{sender}") or 0) + 1
            self._set(f"next:{sender}", ticket, ORDER_TTL)
            done = self._get(f"done:{sender}")
            self._set(f"done:{sender}", ticket - 1 if done is None else done, ORDER_TTL)
            return ticket

    def wait_turn(self, sender: str, ticket: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._mutex:
            while (self._get(f"done:{sender}") or 0) < ticket - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._mutex.wait(min(remaining, 1.0))
            return True

    def turn_done(self, sender: str, ticket: int) -> None:
        with self._mutex:
            if ticket > (self._get(f"done:{sender}") or 0):
                self._set(f"done:{sender}", ticket, ORDER_TTL)
            self._mutex.notify_all()

    def finish_turn(
        self, sender: str, ticket: int, key: str, texts: list[str], passive_ok: bool
    ) -> bool:
        return self.hand_over(sender, ticket, key, texts, passive_ok) == OWED

    def hand_over(
        self, sender: str, ticket: int, key: str, texts: list[str], passive_ok: bool, attempt=0
    ) -> str:
        with self._mutex:  # reentrant: one step, like the Redis script
            self.turn_done(sender, ticket)
            if self._get(f"claim:{key}") == LATE:
                return OWED
            if attempt and (self._get(f"attempt:{key}") or 0) == attempt:
                mode = PASSIVE if passive_ok else LATE
                self._set(f"claim:{key}", mode, MESSAGE_TTL)
                return mode
            self.finish(key, texts, passive_ok)
            return KEPT


def state_for(runtime) -> RedisDeliveryState | MemoryDeliveryState:
    state = runtime.extensions.get("wechat_state")
    if state is None:
        client = runtime.extensions["stores"].client
        if client is None:
            state = MemoryDeliveryState()
        else:
            state = RedisDeliveryState(client, runtime.config["REDIS_PREFIX"])
        runtime.extensions["wechat_state"] = state
    return state
