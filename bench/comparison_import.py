"""Benchmark: a 1,000,000-row information-comparison file on PostgreSQL (goal: under 2 minutes).

    .venv/bin/python bench/comparison_import.py [--rows 1000000]

Loads as many Shanxi pensioners as rows into a private schema, writes a CSV in a temporary
folder — travel, hospital, check-up and entry/exit records for most, death / cremation /
missing / prison records for 1 %, and 0.1 % bad rows (unknown IDs, repeated rows) — and
prints the time, what was applied and the peak memory for the first import and a re-import
(which changes nothing).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from lifecycle_roster import id_number, load_roster, peak_memory_mb, private_database

from services.comparison import import_comparison_file

SHANXI = ("140105", "140211")
CERTIFY = (
    ("民航", "flight"),
    ("铁路", "train"),
    ("卫健", "hospital_discharge"),
    ("卫健", "health_checkup"),
    ("公安", "entry_exit"),
)
STOP = (("民政", "death"), ("民政", "cremation"), ("公安", "missing"), ("司法", "criminal_penalty"))


def write_file(path: Path, rows: int, today: dt.date, seed: int = 11) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "kind", "id_number", "date"])
        for i in range(rows):
            roll = rng.random()
            number = id_number(i, SHANXI[i % len(SHANXI)])
            day = today - dt.timedelta(days=rng.randint(1, 300))
            if roll < 0.0005:
                number = id_number(i + 10 * rows, "140105")  # not on the roster
            elif roll < 0.001 and i:
                number = id_number(i - 1, SHANXI[(i - 1) % len(SHANXI)])  # someone else's too
            source, kind = rng.choice(STOP) if roll > 0.99 else rng.choice(CERTIFY)
            writer.writerow([source, kind, number, day.isoformat()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    today = dt.date(2026, 7, 1)
    with private_database() as database, tempfile.TemporaryDirectory() as folder:
        seconds = load_roster(database, args.rows, today, regions=SHANXI)
        print(f"roster: {args.rows:,} Shanxi pensioners loaded in {seconds:.1f} s")
        path = Path(folder) / "comparison.csv"
        started = time.perf_counter()
        write_file(path, args.rows, today)
        print(f"file: {args.rows:,} rows written in {time.perf_counter() - started:.1f} s")
        for label in ("first import", "re-import"):
            started = time.perf_counter()
            summary = import_comparison_file(database, path, today=today)
            took = time.perf_counter() - started
            print(summary.format(limit=3))
            print(f"{label}: {took:.1f} s, peak memory {peak_memory_mb():.0f} MB")


if __name__ == "__main__":
    main()
