"""Fuzz tests: the stand-ins of tests/channels on the path, and the tally printed at the end
of the run (requests sent per endpoint and their statuses; see fuzzing.py)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# fuzzing.py beside this file; the WeChat and Alipay stand-ins beside the channel tests.
sys.path[:0] = [str(HERE), str(HERE.parent / "channels")]


def pytest_terminal_summary(terminalreporter) -> None:
    from fuzzing import TALLY

    if not TALLY:
        return
    terminalreporter.section("requests sent by the fuzz tests")
    for endpoint, statuses in sorted(TALLY.items()):
        counts = ", ".join(f"{status}×{n}" for status, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{endpoint:32} {sum(statuses.values()):6}  {counts}")
