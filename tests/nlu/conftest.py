"""Fixtures for the NLU tests: one trained embedded NLU per test session (cached on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.classifier import EmbeddedNLU
from nlu.training_data import load_training_data

ROOT = Path(__file__).resolve().parents[2]
TRAINING_FILE = ROOT / "nlu" / "data" / "nlu.yml"
HELDOUT_FILE = ROOT / "tests" / "fixtures" / "nlu_heldout.yml"


@pytest.fixture(scope="session")
def embedded_nlu() -> EmbeddedNLU:
    """Trained from nlu/data once; later sessions load it from the default on-disk cache."""
    return EmbeddedNLU.load()


@pytest.fixture(scope="session")
def training_data():
    return load_training_data(TRAINING_FILE)


@pytest.fixture(scope="session")
def heldout_data():
    return load_training_data(HELDOUT_FILE)
