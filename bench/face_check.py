"""Benchmark: the face check on one core — per 640 px frame, a whole 10-frame check, accuracy.

    .venv/bin/python bench/face_check.py [--threshold 0.6] [--repeat 3]

Pinned to one CPU. Per frame: HOG detection + 68 landmarks + 128-d encoding + the match
(goal ≤ 0.2 s), as a ratio to decoding and shrinking the same photo, measured in the same run.
A whole check: a 10-frame clip made with PyAV, decoded, measured and judged end to end; checks
per second with two worker processes (two RQ workers) and their resident memory. Then
the distance matrix over the fixture faces (tests/fixtures/faces) with the false-accept and
false-reject rates at the threshold, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lifecycle_roster import peak_memory_mb  # noqa: E402

from services import faces, liveness  # noqa: E402
from tests import face_videos  # noqa: E402

# Who is on which fixture photo (tests/fixtures/faces/README.md); photos with 0 or 2 faces out.
PEOPLE = {
    "obama.jpg": "A",
    "obama2.jpg": "A",
    "obama3.jpg": "A",
    "obama_whitehouse.jpg": "A",
    "obama_small.jpg": "A",
    "obama_240p.jpg": "A",
    "obama2_rgba.png": "A",
    "biden.jpg": "B",
    "biden2.jpg": "B",
    "kit_harington2.jpg": "C",
    "kit_harington_johnsnow.jpg": "C",
    "rose_leslie1.jpg": "D",
    "rose_leslie2.jpg": "D",
    "alex_lacamoire1.jpg": "E",
    "alex_lacamoire2.png": "E",
    "lin_manuel_miranda.png": "F",
}


def timed(func, *args):
    started = time.perf_counter()
    value = func(*args)
    return time.perf_counter() - started, value


def per_frame(repeat: int, reference) -> tuple[float, float, float]:
    """Median seconds per frame: decode+shrink (baseline), and detect+landmarks+encode+match."""
    baseline, work = [], []
    for _ in range(repeat):
        for name in PEOPLE:
            seconds, image = timed(faces.load_image, face_videos.FACES / name)
            baseline.append(seconds)
            started = time.perf_counter()
            measure = liveness.measure(image)
            if measure.encoding is not None:
                faces.face_distance(measure.encoding, reference)
            work.append(time.perf_counter() - started)
    return statistics.median(baseline), statistics.median(work), max(work)


def whole_check(reference) -> tuple[float, liveness.LivenessResult]:
    images = face_videos.head_turn("kit_harington2.jpg", frames_each=5)
    with tempfile.TemporaryDirectory() as folder:
        clip = face_videos.write_mp4(Path(folder) / "clip.mp4", images)
        started = time.perf_counter()
        frames = liveness.frames_from_video(clip, max_frames=10)
        result = liveness.check_frames(frames, ["turn_left"], reference)
        return time.perf_counter() - started, result


def _worker_checks(count: int) -> tuple[int, float]:
    """In a worker process: ``count`` whole checks; returns them and the worker's peak RSS."""
    reference = faces.encode_face(
        faces.load_image(face_videos.FACES / "kit_harington_johnsnow.jpg")
    )
    for _ in range(count):
        whole_check(reference)
    return count, peak_memory_mb()


def two_workers(checks_each: int) -> tuple[float, list[float]]:
    """Checks per second with two worker processes (as two RQ workers would run them)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_worker_checks, [0, 0]))  # load dlib's models in both first
        started = time.perf_counter()
        results = list(pool.map(_worker_checks, [checks_each, checks_each]))
        seconds = time.perf_counter() - started
    return sum(n for n, _ in results) / seconds, [rss for _, rss in results]


def accuracy(threshold: float) -> None:
    encodings = {
        name: faces.encode_face(faces.load_image(face_videos.FACES / name)) for name in PEOPLE
    }
    same, different = [], []
    for a, b in itertools.combinations(PEOPLE, 2):
        if encodings[a] is None or encodings[b] is None:
            continue
        distance = faces.face_distance(encodings[a], encodings[b])
        (same if PEOPLE[a] == PEOPLE[b] else different).append(distance)
    missing = [n for n, e in encodings.items() if e is None]
    false_rejects = sum(d > threshold for d in same)
    false_accepts = sum(d <= threshold for d in different)
    print(
        f"distance matrix over {len(PEOPLE) - len(missing)} photos of 6 people (no face: {missing})"
    )
    print(f"  same person:      {len(same)} pairs, {min(same):.2f}–{max(same):.2f}")
    print(f"  different people: {len(different)} pairs, {min(different):.2f}–{max(different):.2f}")
    print(
        f"  at threshold {threshold}: FRR {false_rejects}/{len(same)} = "
        f"{false_rejects / len(same):.1%}, FAR {false_accepts}/{len(different)} = "
        f"{false_accepts / len(different):.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checks", type=int, default=2, help="whole checks per worker")
    args = parser.parse_args()
    rate, worker_rss = two_workers(args.checks)
    print(
        f"2 worker processes: {rate:.2f} checks/s; peak resident memory per worker "
        f"{', '.join(f'{rss:.0f} MB' for rss in worker_rss)} (cores: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    if hasattr(os, "sched_setaffinity"):  # the per-frame figures: one core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    load_seconds, reference = timed(
        lambda: faces.encode_face(
            faces.load_image(face_videos.FACES / "kit_harington_johnsnow.jpg")
        )
    )
    print(f"first use (dlib models loaded): {load_seconds:.2f} s")
    baseline, frame, worst = per_frame(args.repeat, reference)
    print(
        f"per frame ≤640 px, detect+landmarks+encode+match: median {frame * 1000:.0f} ms "
        f"(worst {worst * 1000:.0f} ms; goal ≤ 200 ms) = {frame / baseline:.1f}× decoding and "
        f"shrinking the photo ({baseline * 1000:.0f} ms)"
    )
    seconds, result = whole_check(reference)
    print(
        f"whole check, 10-frame clip (decode, measure, judge, match): {seconds:.2f} s "
        f"→ passed={result.passed} distance={result.distance:.2f}"
    )
    accuracy(args.threshold)
    print(f"peak resident memory: {peak_memory_mb():.0f} MB")


if __name__ == "__main__":
    main()
