"""Benchmark: import a large roster CSV into PostgreSQL, then import it again.

    .venv/bin/python bench/import_roster.py [--rows 100000] [--changed 10000]

Generates N valid rows (checksum-valid ID numbers, regions with a policy) to a CSV in a
temporary folder, imports it into the database named by ``DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) inside a private schema that is created
for the run and dropped afterwards, and prints rows/s and seconds for:

1. the first import (all rows created),
2. re-importing the same file (all rows unchanged),
3. importing it with ``--changed`` rows edited (those rows updated).

Target: 100,000 rows in under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from stdnum.cn import ric

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.db import Database  # noqa: E402
from services.roster import import_roster_file  # noqa: E402

HEADER = [
    "person_no",
    "name",
    "id_number",
    "region_code",
    "benefit_type",
    "phone",
    "unit_name",
    "status",
    "last_certified_on",
    "address",
    "overseas",
]
# (region code written in the roster, prefix of the ID number issued there)
REGIONS = [("610102", "610102"), ("140000", "140105"), ("360734", "360734"), ("450000", "450103")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂柴焦向柳邢岳齐沿梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵"
GIVEN = "秀英兰华明国建军伟芳玉文志强丽敏静勇杰娟霞平刚桂珍春梅金凤红云海林德福生荣淑贞凤琴素娥"
BENEFITS = ["institution", "enterprise", "resident", "unemployment", "work_injury", "dependent"]
STATUSES = ["normal"] * 8 + ["suspended", "stopped"]


def generate_rows(count: int, seed: int = 20240531) -> list[list[str]]:
    rng = random.Random(seed)
    start = dt.date(1930, 1, 1)
    rows = []
    for i in range(count):
        region, id_prefix = REGIONS[i % len(REGIONS)]
        person = i // len(REGIONS)  # unique (region, birth date, sequence) → unique ID numbers
        birth = start + dt.timedelta(days=person // 20 * 11)
        sequence = f"{person % 20 * 2 + rng.randint(0, 1):03d}"
        body = f"{id_prefix}{birth:%Y%m%d}{sequence}"
        id_number = body + ric.calc_check_digit(body + "0")
        certified = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 300))
        rows.append(
            [
                f"B{i:08d}",
                rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
                id_number,
                region,
                rng.choice(BENEFITS),
                f"13{rng.randint(0, 999999999):09d}" if rng.random() < 0.8 else "",
                f"第{rng.randint(1, 99)}机械厂" if rng.random() < 0.5 else "",
                rng.choice(STATUSES),
                certified.isoformat() if rng.random() < 0.9 else "",
                f"某市某区某路{rng.randint(1, 999)}号" if rng.random() < 0.5 else "",
                "1" if rng.random() < 0.01 else "0",
            ]
        )
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)


def run(database: Database, path: Path, label: str, count: int) -> None:
    started = time.perf_counter()
    summary = import_roster_file(database, path, progress=True)
    seconds = time.perf_counter() - started
    print(
        f"{label:<27} {seconds:7.2f} s  {count / seconds:9,.0f} rows/s   "
        f"created {summary.created}  updated {summary.updated}  unchanged {summary.unchanged}"
        f"  rejected {len(summary.rejected)}  warnings {len(summary.warnings)}",
        flush=True,
    )
    if summary.errors or summary.rejected:
        print(summary.format(limit=5), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=10_000)
    options = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = Database(url)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = Database(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        database.upgrade()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "roster.csv"
            started = time.perf_counter()
            rows = generate_rows(options.rows)
            write_csv(path, rows)
            size = path.stat().st_size / 1e6
            print(
                f"generated {options.rows:,} rows ({size:.1f} MB) in "
                f"{time.perf_counter() - started:.1f} s; database {database.engine.url!r}, "
                f"schema {schema}"
            )
            run(database, path, "first import", options.rows)
            run(database, path, "re-import (same file)", options.rows)
            changed = min(options.changed, options.rows)
            for row in rows[:changed]:
                row[5] = "13900000000"  # a new phone number
            write_csv(path, rows)
            run(database, path, f"re-import ({changed:,} changed)", options.rows)
    finally:
        database.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
