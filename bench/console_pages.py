"""Benchmark: the console's review queue and review screen with a campaign's worth of data.

    .venv/bin/python bench/console_pages.py [--persons 100000] [--photos 10000] [--requests 300]

Fills a private PostgreSQL schema (created for the run, dropped afterwards; the database is
``DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``) with ``--persons``
roster rows in four regions and ``--photos`` pending photo reviews, signs a reviewer for
Shaanxi ("61") in, and measures the server time of

1. ``GET /console/reviews`` — the queue page (oldest first, the reviewer's regions, a count),
2. ``GET /console/reviews/<id>`` — the review screen (claims the photo, reads the person, the
   reference photo, the policy's due date, writes the audit row),
3. ``GET /console/reviews/next`` — claiming the next photo (``FOR UPDATE SKIP LOCKED``),

in-process through Flask's test client (no network), and prints p50 / p99 / max in ms.
Goal: p50 and p99 under 100 ms for the queue and the review page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, select, text
from stdnum.cn import ric

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.db import Database  # noqa: E402
from services.models import Person, PhotoReview  # noqa: E402
from services.staff import add_staff  # noqa: E402

REGIONS = ["610102", "140105", "360734", "450103"]
BENEFITS = ["institution", "enterprise", "resident", "unemployment", "work_injury", "dependent"]
PASSWORD = "bench password 1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def id_number(region: str, seq: int, rng: random.Random) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25 * 365))
    body = f"{region}{born:%Y%m%d}{seq % 1000:03d}"
    return body + ric.calc_check_digit(body)


def fill(database: Database, persons: int, photos: int) -> None:
    rng = random.Random(20261201)
    started = time.perf_counter()
    batch = []
    with database.engine.begin() as connection:
        for seq in range(persons):
            region = REGIONS[seq % len(REGIONS)]
            number = id_number(region, seq, rng)
            batch.append(
                {
                    "person_no": f"B{seq:08d}",
                    "name": "王" + "秀英兰华明国建军"[seq % 8] + "兰华明"[seq % 3],
                    "id_number": number,
                    "gender": "M" if int(number[16]) % 2 else "F",
                    "birth_date": dt.date(
                        int(number[6:10]), int(number[10:12]), int(number[12:14])
                    ),
                    "region_code": region,
                    "benefit_type": BENEFITS[seq % len(BENEFITS)],
                    "status": "normal",
                    "last_certified_on": dt.date(2025, 1, 1) + dt.timedelta(days=seq % 330),
                    "overseas": False,
                    "public_id": secrets.token_urlsafe(16),
                }
            )
            if len(batch) == 5000:
                connection.execute(insert(Person), batch)
                batch.clear()
        if batch:
            connection.execute(insert(Person), batch)
        ids = connection.execute(select(Person.id)).scalars().all()
        submitted = dt.datetime(2026, 11, 1)
        reviews = [
            {
                "person_id": rng.choice(ids),
                "photo_name": secrets.token_hex(16) + ".jpg",
                "status": "pending",
                "submitted_at": submitted + dt.timedelta(seconds=17 * n),
                "public_id": secrets.token_urlsafe(16),
            }
            for n in range(photos)
        ]
        for start in range(0, len(reviews), 5000):
            connection.execute(insert(PhotoReview), reviews[start : start + 5000])
        connection.execute(text("ANALYZE persons"))
        connection.execute(text("ANALYZE photo_reviews"))
    with database.session() as session:
        add_staff(session, "bench", PASSWORD, role="reviewer", regions=["61"])
    print(
        f"filled {persons} persons, {photos} pending photos in {time.perf_counter() - started:.1f} s"
    )


def timed(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code not in (200, 302):
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return elapsed


def report(name: str, samples: list[float]) -> None:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"{name:<28} n={len(samples):<4} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {samples[-1]:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = Database(base)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    try:
        database = Database(url)
        database.upgrade()
        fill(database, args.persons, args.photos)
        database.dispose()

        from pension import create_app

        app = create_app(
            {
                "DATABASE_URL": url,
                "AUTO_MIGRATE": False,
                "LOAD_DEMO_ROSTER": False,
                "REDIS_URL": None,
                "SECRET_KEY": "bench",
            }
        )
        client = app.test_client()
        token = CSRF.search(client.get("/console/login").get_data(as_text=True)).group(1)
        signed_in = client.post(
            "/console/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}
        )
        assert signed_in.status_code == 302, signed_in.status_code
        with app.extensions["db"].session() as session:
            targets = session.scalars(
                select(PhotoReview.public_id)
                .join(Person, Person.id == PhotoReview.person_id)
                .where(Person.region_code.startswith("61"))
                .order_by(PhotoReview.submitted_at.desc())
                .limit(args.requests)
            ).all()
        for _ in range(10):  # warm up: connection pool, templates, policy tables
            timed(client, "/console/reviews")
            timed(client, f"/console/reviews/{targets[0]}")
        queue = [timed(client, "/console/reviews") for _ in range(args.requests)]
        screen = [timed(client, f"/console/reviews/{target}") for target in targets]
        claims = [timed(client, "/console/reviews/next") for _ in range(min(100, args.requests))]
        print(f"PostgreSQL, {args.persons} persons, {args.photos} pending photos (reviewer: 61)")
        report("GET /console/reviews", queue)
        report("GET /console/reviews/<id>", screen)
        report("GET /console/reviews/next", claims)
        app.extensions["db"].dispose()
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
