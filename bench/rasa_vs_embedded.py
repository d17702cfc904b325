"""Rasa's DIET pipeline beside the embedded NLU, on the same training file and held-out set.

    .venv/bin/python bench/rasa_vs_embedded.py [--train] [--model MODEL] [--parses 1000]

One run measures both engines: intent accuracy on ``tests/fixtures/nlu_heldout.yml`` (a FAQ
counts as right when the FAQ itself is: Rasa's intent ``faq`` plus its ResponseSelector's
choice; ``nlu_fallback`` is wrong), and the latency of one in-process parse, p50 / p99, one
thread each. Training time and peak memory (the largest resident set of the training process):
the embedded NLU is trained here in a child process; Rasa's full-epoch model (``nlu/config.yml``
as it is) is trained by ``--train`` through ``scripts/rasa-train`` — half an hour or more on two
cores — which records its figures beside the model (``<model>.train.json``), so later runs
reuse them. Rasa parses in the Rasa venv (``scripts/rasa-setup``), through ``rasa.core.agent``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "fixtures" / "nlu_heldout.yml"
ONE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    )
}

# Run inside the Rasa venv: parse every held-out text, then time parses; JSON on stdout.
RASA_SIDE = r"""
import asyncio, json, sys, time
from rasa.core.agent import Agent

model, texts, parses = sys.argv[1], json.loads(sys.stdin.read()), int(sys.argv[2])
started = time.perf_counter()
agent = Agent.load(model)
load = time.perf_counter() - started

def full_intent(parse):
    name = parse["intent"]["name"]
    if name == "faq":
        selected = parse.get("response_selector", {}).get("faq", {}).get("response", {})
        name = selected.get("intent_response_key") or name
    return name

async def run():
    predicted = [full_intent(await agent.parse_message(t)) for t in texts]
    latencies = []
    for i in range(parses):
        begin = time.perf_counter()
        await agent.parse_message(texts[i % len(texts)])
        latencies.append((time.perf_counter() - begin) * 1000)
    return predicted, latencies

predicted, latencies = asyncio.run(run())
print(json.dumps({"load_seconds": load, "predicted": predicted, "latencies": latencies}))
"""

# Run in this project's venv: train the embedded NLU from scratch (no cache); seconds on stdout.
EMBEDDED_TRAINING = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from nlu.classifier import EmbeddedNLU
from nlu.training_data import load_training_data
from pathlib import Path
started = time.perf_counter()
EmbeddedNLU.train(load_training_data(Path(sys.argv[1]) / "nlu" / "data" / "nlu.yml"))
print(time.perf_counter() - started)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def measured_child(command: list[str], **kwargs) -> tuple[str, float, float]:
    """stdout, seconds, and the largest resident set of any child so far in MB (KiB on Linux)."""
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    return done.stdout, seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def train_rasa() -> Path:
    env = os.environ | {"RASA_EPOCHS": ""}
    stdout, seconds, peak = measured_child(
        [str(ROOT / "scripts" / "rasa-train")], cwd=ROOT, env=env
    )
    model = ROOT / stdout.strip().splitlines()[-1]  # relative to ROOT, or absolute
    figures = {"train_seconds": seconds, "peak_mb": peak, "epochs": "config.yml"}
    model.with_name(model.name + ".train.json").write_text(json.dumps(figures))
    return model


def rasa_venv() -> Path:
    return Path(
        subprocess.run(
            [str(ROOT / "scripts" / "rasa-setup")], check=True, capture_output=True, text=True
        ).stdout.strip()
    )


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from nlu.classifier import EmbeddedNLU
    from nlu.training_data import load_training_data
    from tests.rasa_server import find_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train Rasa's full-epoch model first")
    parser.add_argument("--model", type=Path, help="a Rasa model (default: the newest for nlu/)")
    parser.add_argument("--parses", type=int, default=1000)
    args = parser.parse_args(argv)

    # embedded training first: the peak of the children so far is then its own
    out, _wall, embedded_peak = measured_child(
        [sys.executable, "-c", EMBEDDED_TRAINING, str(ROOT)], env=os.environ | ONE_THREAD
    )
    embedded_train = float(out.strip())
    model = train_rasa() if args.train else (args.model or find_model())
    figures_file = model.with_name(model.name + ".train.json")
    rasa_training = json.loads(figures_file.read_text()) if figures_file.exists() else {}

    examples = load_training_data(HELDOUT).examples
    texts = [example.text for example in examples]
    truth = [example.intent for example in examples]
    with tempfile.TemporaryDirectory() as cache:
        nlu = EmbeddedNLU.load(cache_dir=Path(cache))
    embedded_predicted = [nlu.parse(text)["intent"]["name"] for text in texts]
    latencies = []
    for i in range(args.parses):
        begin = time.perf_counter()
        nlu.parse(texts[i % len(texts)])
        latencies.append((time.perf_counter() - begin) * 1000)

    # Rasa: its own venv, the same texts
    python = rasa_venv() / "bin" / "python"
    env = (
        os.environ
        | ONE_THREAD
        | {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        }
    )
    done = subprocess.run(
        [str(python), "-c", RASA_SIDE, str(model), str(args.parses)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    rasa = json.loads(done.stdout.strip().splitlines()[-1])

    def accuracy(predicted: list[str]) -> str:
        right = sum(p == t for p, t in zip(predicted, truth, strict=True))
        return f"{right / len(truth):.1%} ({right}/{len(truth)})"

    rows = [
        ("", "embedded NLU", f"Rasa DIET ({model.name})"),
        ("held-out intent accuracy", accuracy(embedded_predicted), accuracy(rasa["predicted"])),
        (
            "parse p50",
            f"{percentile(latencies, 0.5):.2f} ms",
            f"{percentile(rasa['latencies'], 0.5):.2f} ms",
        ),
        (
            "parse p99",
            f"{percentile(latencies, 0.99):.2f} ms",
            f"{percentile(rasa['latencies'], 0.99):.2f} ms",
        ),
        (
            "training time",
            f"{embedded_train:.1f} s",
            f"{rasa_training['train_seconds']:.0f} s" if rasa_training else "unknown (run --train)",
        ),
        (
            "training peak memory",
            f"{embedded_peak:.0f} MB",
            f"{rasa_training['peak_mb']:.0f} MB" if rasa_training else "unknown (run --train)",
        ),
    ]
    print(
        f"held-out: {HELDOUT.relative_to(ROOT)}, {len(texts)} utterances; {args.parses} timed parses each, one thread"
    )
    for label, left, right in rows:
        print(f"| {label:<24} | {left:<20} | {right:<28} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
