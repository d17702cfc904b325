"""Benchmark: the pre-checks of a review photo, each timed per photo, and the worker's memory.

    .venv/bin/python bench/photo_prechecks.py [--repeat 3]

For each test photo: decoding and re-encoding it as it is filed (services/photos.py, the
baseline every check is compared with), then each pre-check of services/photo_prechecks.py —
faces (HOG detection at 640 px, encoding, distance to a reference), text (RapidOCR: the
newspaper's date and the ID number), sharpness. Prints the median seconds per photo, the ratio
to the baseline, and the resident memory (RSS) before and after the models are loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import time
from pathlib import Path

from PIL import Image

from services import faces
from services.photo_prechecks import CHECKS, PrecheckInput, read_text
from services.photos import decode_photo

FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
PHOTOS = ("photo_with_paper.jpg", "obama.jpg", "two_people.jpg", "biden.jpg", "no_face_suit.jpg")


def rss_mb() -> float:
    """The resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, *args, repeat: int) -> float:
    """The median wall time of ``repeat`` runs, in seconds."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"RSS at start: {rss_mb():.0f} MB")
    started = time.perf_counter()
    reference = list(faces.encode_face(faces.load_image(FACES / "obama.jpg")))
    print(f"face models loaded in {time.perf_counter() - started:.1f} s, RSS {rss_mb():.0f} MB")
    started = time.perf_counter()
    read_text(Image.new("RGB", (64, 64), "white"))
    print(f"OCR models loaded in {time.perf_counter() - started:.1f} s, RSS {rss_mb():.0f} MB")

    names = ["decode (baseline)", *(check.__name__ for check in CHECKS)]
    print(f"\n{'photo':<22}" + "".join(f"{name:>24}" for name in names) + f"{'all checks':>14}")
    totals = {name: [] for name in [*names, "all"]}
    for photo in PHOTOS:
        data = (FACES / photo).read_bytes()
        baseline = timed(decode_photo, data, repeat=args.repeat)
        image = Image.open(FACES / photo).convert("RGB")
        given = PrecheckInput(image, dt.date(2026, 12, 1), 15, None, reference)
        seconds = [timed(check, given, repeat=args.repeat) for check in CHECKS]
        row = f"{photo:<22}{baseline:>21.3f} s "
        for name, value in zip(names[1:], seconds, strict=True):
            row += f"{value:>9.3f} s ({value / baseline:>6.1f}×) "
            totals[name].append(value)
        totals[names[0]].append(baseline)
        totals["all"].append(sum(seconds))
        print(row + f"{sum(seconds):>11.2f} s")
    print(
        "\nmedian per photo: "
        + ", ".join(f"{name} {statistics.median(values):.3f} s" for name, values in totals.items())
    )
    print(f"RSS at the end: {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
