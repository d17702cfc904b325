"""Fault tests: the WeChat stand-ins of tests/channels on the path, and the proxies."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "channels")]
