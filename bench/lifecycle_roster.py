"""A large synthetic roster for the lifecycle benchmarks, loaded with COPY into a private schema.

Shared by ``bench/daily_run.py`` and ``bench/comparison_import.py``; not a benchmark itself.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import resource
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from stdnum.cn import ric

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.db import Database, normalise_url  # noqa: E402

URL = normalise_url(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
# region code → the ID-number prefix issued there (every region of regions.yaml)
REGIONS = ("110101", "610102", "140105", "140211", "360734", "450103")
BENEFITS = ("institution", "enterprise", "resident", "unemployment", "work_injury", "dependent")


def id_number(index: int, prefix: str) -> str:
    birth = dt.date(1935, 1, 1) + dt.timedelta(days=index // 900)
    body = f"{prefix}{birth:%Y%m%d}{index % 900 + 100:03d}"
    return body + ric.calc_check_digit(body + "0")


@contextmanager
def private_database():
    """A fresh schema migrated to head, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = Database(URL)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = Database(f"{URL}?options=-csearch_path%3D{schema}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def load_roster(database: Database, count: int, day: dt.date, *, regions=REGIONS, seed=7):
    """``count`` people certified over the 13 months before ``day``; 70 % with a phone,
    20 % bound to a WeChat account. Returns the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = (
            "person_no, name, id_number, gender, birth_date, region_code, benefit_type, phone,"
            " unit_name, status, last_certified_on, overseas, created_at, updated_at"
        )
        now = dt.datetime(2026, 1, 1)
        with cursor.copy(f"COPY persons ({columns}) FROM STDIN") as copy:
            for i in range(count):
                region = regions[i % len(regions)]
                number = id_number(i, region)
                birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
                copy.write_row(
                    (
                        f"B{i:08d}",
                        "王秀兰",
                        number,
                        "M" if int(number[16]) % 2 else "F",
                        birth,
                        region,
                        BENEFITS[rng.randrange(6)],
                        f"139{i:08d}" if rng.random() < 0.7 else None,
                        f"第{i % 500}机械厂",
                        "normal",
                        day - dt.timedelta(days=rng.randint(1, 395)),
                        False,
                        now,
                        now,
                    )
                )
        bound = [i + 1 for i in range(count) if rng.random() < 0.2]
        with cursor.copy(
            "COPY channel_accounts (id, channel, external_id, created_at) FROM STDIN"
        ) as copy:
            for n, person_id in enumerate(bound, 1):
                copy.write_row((n, "wechat", f"openid-{person_id}", now))
        with cursor.copy(
            "COPY bindings (account_id, person_id, relation, created_at) FROM STDIN"
        ) as copy:
            for n, person_id in enumerate(bound, 1):
                copy.write_row((n, person_id, "self", now))
        cursor.execute("SELECT setval('channel_accounts_id_seq', %s)", (len(bound) + 1,))
        raw.commit()
        driver = raw.driver_connection
        driver.autocommit = True
        for table in ("persons", "channel_accounts", "bindings"):
            driver.execute(f"VACUUM ANALYZE {table}")
        driver.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - started


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
