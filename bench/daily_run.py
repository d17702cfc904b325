"""Benchmark: the daily run over 1,000,000 persons on PostgreSQL (goal: under 2 minutes a day).

    .venv/bin/python bench/daily_run.py [--persons 1000000]

Loads a roster certified over the 13 months before 1 July 2026 (every region of regions.yaml,
every benefit type, 70 % with a phone, 20 % bound to WeChat) into a private schema, then runs
the daily run for three days and prints each day's time, what it did, and the peak memory:

1. 2026-07-01 — a first run on a stale roster and the 1st of a month: everyone overdue is
   suspended, Jiangxi posts its notices;
2. 2026-07-02 — an ordinary day;
3. 2026-07-02 again — nothing left to do (idempotent).

The run enqueues its deliveries (RQ jobs in production, run by any number of workers); the
benchmark collects them and then runs them in this process into ports that only count, and
reports that worker time separately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from lifecycle_roster import load_roster, peak_memory_mb, private_database

from services.clock import FrozenClock
from services.lifecycle import run_daily
from services.outbound import OutboundRouter
from services.runtime import Runtime


class CountingPort:
    def __init__(self):
        self.count = 0

    def deliver(self, recipient, messages):
        self.count += 1


class CollectingJobs:
    def __init__(self):
        self.jobs = []

    def enqueue(self, func, *args):
        self.jobs.append((func, args))


class CountingSms:
    def __init__(self):
        self.count = 0

    def send(self, phone, text):
        self.count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    args = parser.parse_args()
    first = dt.date(2026, 7, 1)
    with private_database() as database:
        seconds = load_roster(database, args.persons, first)
        print(f"roster: {args.persons:,} persons loaded in {seconds:.1f} s")
        port, sms = CountingPort(), CountingSms()
        clock = FrozenClock(first)
        jobs = CollectingJobs()
        runtime = Runtime({}, database, clock, OutboundRouter({"wechat": port}))
        runtime.jobs = jobs
        runtime.extensions["sms"] = sms
        for label, day in (
            ("1 July (stale roster, 1st of month)", first),
            ("2 July (ordinary day)", first + dt.timedelta(days=1)),
            ("2 July again", first + dt.timedelta(days=1)),
        ):
            clock.set(day)
            started = time.perf_counter()
            results = run_daily(runtime)
            took = time.perf_counter() - started
            for result in results:
                print(f"  {result.format()}")
            print(f"{label}: daily run {took:.1f} s, peak memory {peak_memory_mb():.0f} MB")
            started = time.perf_counter()
            for func, job_args in jobs.jobs:
                func(runtime, *job_args)
            print(
                f"  deliveries: {len(jobs.jobs)} jobs in {time.perf_counter() - started:.1f} s"
                f" (wechat {port.count:,}, sms {sms.count:,} so far),"
                f" peak memory {peak_memory_mb():.0f} MB"
            )
            jobs.jobs.clear()


if __name__ == "__main__":
    main()
