"""Actions run without an event loop each (bot.engine.run_now): the same results, the action's
context kept to itself, and a clear refusal for an action that waits for I/O."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from bot.engine import run_now

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="outside")


async def sets_the_marker_and_answers() -> str:
    marker.set("inside")
    await asyncio.sleep(0)  # a bare yield, as some libraries do
    return marker.get()


async def waits_for_a_future() -> None:
    await asyncio.get_running_loop().create_future()


def test_a_coroutine_runs_to_its_result_and_its_context_stays_with_it():
    assert run_now(sets_the_marker_and_answers()) == "inside"
    assert marker.get() == "outside"


def test_an_action_that_waits_for_io_is_refused():
    with pytest.raises(RuntimeError):
        run_now(waits_for_a_future())
