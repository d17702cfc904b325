"""Benchmark the embedded NLU: held-out accuracy, cross-validation, confusions, parse latency.

    .venv/bin/python bench/nlu_bench.py [--parses 2000] [--cache-dir DIR] [--threshold T]
                                        [--folds 5] [--errors]

Runs on one core (BLAS/OpenMP threads pinned to 1 before numpy is imported). Intent accuracy
counts a prediction of ``nlu_fallback`` as wrong. Two held-out sets (never trained on):
``nlu_heldout.yml`` and ``nlu_heldout_fresh.yml``, written later, in other words again; and a
stratified k-fold cross-validation on the training data itself (``--folds 0`` skips it).
Targets: accuracy ≥ 97 % on the fresh set and in cross-validation, ≥ 92 % on the first set,
p50 < 5 ms, p99 < 20 ms.
"""

from __future__ import annotations

import os

for _variable in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu.classifier import DEFAULT_THRESHOLD, EmbeddedNLU  # noqa: E402
from nlu.training_data import TrainingData, load_training_data  # noqa: E402

HELDOUT = ROOT / "tests" / "fixtures" / "nlu_heldout.yml"
FRESH_HELDOUT = ROOT / "tests" / "fixtures" / "nlu_heldout_fresh.yml"
TARGET_ACCURACY = 0.92
TARGET_FRESH_ACCURACY = 0.97
TARGET_CV_ACCURACY = 0.97
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def cross_validation(folds: int, threshold: float) -> tuple[float, Counter]:
    """Stratified k-fold accuracy on the training data: each intent's examples dealt round-robin
    into the folds (in file order, so the run is repeatable); each fold scored by a model
    trained on the others."""
    from nlu.classifier import _training_files

    data = load_training_data(_training_files(ROOT / "nlu"))
    buckets: list[list] = [[] for _ in range(folds)]
    for examples in data.by_intent().values():
        for index, example in enumerate(examples):
            buckets[index % folds].append(example)
    right, total, confusions = 0, 0, Counter()
    for held in range(folds):
        training = [e for i, bucket in enumerate(buckets) if i != held for e in bucket]
        nlu = EmbeddedNLU.train(TrainingData(training, data.synonyms, data.lookups), threshold)
        for example in buckets[held]:
            predicted = nlu.parse(example.text)["intent"]["name"]
            total += 1
            if predicted == example.intent:
                right += 1
            else:
                confusions[(example.intent, predicted)] += 1
    return right / total, confusions


def score(nlu: EmbeddedNLU, path: Path, show_errors: bool) -> float:
    """Accuracy on one held-out file, with its confusions (and errors) printed."""
    examples = load_training_data(path).examples
    confusions: Counter[tuple[str, str]] = Counter()
    errors = []
    for example in examples:
        predicted = nlu.parse(example.text)["intent"]["name"]
        if predicted != example.intent:
            confusions[(example.intent, predicted)] += 1
            errors.append((example.intent, predicted, example.text))
    accuracy = 1 - len(errors) / len(examples)
    print(
        f"{path.relative_to(ROOT)}: {accuracy:.1%} ({len(examples) - len(errors)}/{len(examples)})"
    )
    for (true, predicted), count in confusions.most_common(8):
        print(f"  {true} → {predicted}: {count}")
    if show_errors:
        for true, predicted, text in errors:
            print(f"  [{true} → {predicted}] {text}")
    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parses", type=int, default=2000)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--errors", action="store_true", help="print every misclassified line")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: none)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    nlu = EmbeddedNLU.load(cache_dir=args.cache_dir, threshold=args.threshold)
    load_seconds = time.perf_counter() - started
    threshold = nlu.threshold if args.threshold is None else args.threshold

    examples = load_training_data(HELDOUT).examples
    confusions: Counter[tuple[str, str]] = Counter()
    per_intent_total: Counter[str] = Counter()
    per_intent_right: Counter[str] = Counter()
    errors = []
    for example in examples:
        predicted = nlu.parse(example.text)["intent"]["name"]
        per_intent_total[example.intent] += 1
        if predicted == example.intent:
            per_intent_right[example.intent] += 1
        else:
            confusions[(example.intent, predicted)] += 1
            errors.append((example.intent, predicted, example.text))
    correct = sum(per_intent_right.values())
    accuracy = correct / len(examples)

    texts = [example.text for example in examples]
    for text in texts[:50]:  # warm-up
        nlu.parse(text)
    latencies = []
    for i in range(args.parses):
        text = texts[i % len(texts)]
        begin = time.perf_counter()
        nlu.parse(text)
        latencies.append((time.perf_counter() - begin) * 1000)
    p50 = percentile(latencies, 0.50)
    p99 = percentile(latencies, 0.99)

    print(f"model: {nlu.fingerprint}  intents: {len(nlu.intents)}  load: {load_seconds:.2f} s")
    print(f"threshold: {threshold} (default {DEFAULT_THRESHOLD})")
    print(f"held-out: {HELDOUT.relative_to(ROOT)}  utterances: {len(examples)}")
    print(
        f"intent accuracy: {accuracy:.1%} ({correct}/{len(examples)})  target ≥ {TARGET_ACCURACY:.0%}"
    )
    print("confusions (true → predicted: count):")
    for (true, predicted), count in confusions.most_common():
        print(f"  {true} → {predicted}: {count}")
    if not confusions:
        print("  none")
    weakest = sorted(per_intent_total, key=lambda i: per_intent_right[i] / per_intent_total[i])[:5]
    print(
        "weakest intents: "
        + ", ".join(f"{i} {per_intent_right[i]}/{per_intent_total[i]}" for i in weakest)
    )
    if args.errors:
        print("errors:")
        for true, predicted, text in errors:
            print(f"  [{true} → {predicted}] {text}")
    print(
        f"latency over {len(latencies)} parses (1 thread): p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
        f"max {max(latencies):.2f} ms  targets p50 < {TARGET_P50_MS} ms, p99 < {TARGET_P99_MS} ms"
    )
    fresh = score(nlu, FRESH_HELDOUT, args.errors)
    print(f"  target ≥ {TARGET_FRESH_ACCURACY:.0%}")
    ok = (
        accuracy >= TARGET_ACCURACY
        and fresh >= TARGET_FRESH_ACCURACY
        and p50 < TARGET_P50_MS
        and p99 < TARGET_P99_MS
    )
    if args.folds:
        cv, cv_confusions = cross_validation(args.folds, threshold)
        print(
            f"{args.folds}-fold cross-validation on nlu/data: {cv:.1%}  target ≥ {TARGET_CV_ACCURACY:.0%}"
        )
        for (true, predicted), count in cv_confusions.most_common(12):
            print(f"  {true} → {predicted}: {count}")
        ok = ok and cv >= TARGET_CV_ACCURACY
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
