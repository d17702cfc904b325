"""GET /health — 200 when the database (at the newest schema), the stores and the NLU are usable,
else 503 naming the part ("run `pension migrate`" when the schema is behind).

The parts are probed at once, each on its own thread, and the answer never waits longer than
:data:`DEADLINE_SECONDS`: a part that has not answered by then is reported unavailable (a
stalled database is a 503 in a second or two, not a hung check; its thread is freed by the
database's own stall guard, see :class:`services.db.StallGuard`).
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)

DEADLINE_SECONDS = 1.5


class _Probe(threading.Thread):
    def __init__(self, name: str, check) -> None:
        super().__init__(name=f"health-{name}", daemon=True)
        self.check = check
        self.error: str | None = "TimeoutError: no answer within the health deadline"

    def run(self) -> None:
        try:
            self.check()
        except Exception as error:  # noqa: BLE001 — any failure makes the part unusable
            self.error = f"{error.__class__.__name__}: {error}"[:200]
        else:
            self.error = None


def _failing(parts: dict) -> dict[str, str]:
    probes = {name: _Probe(name, check) for name, check in parts.items()}
    for probe in probes.values():
        probe.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    for probe in probes.values():
        probe.join(max(0.0, deadline - time.monotonic()))
    return {name: probe.error for name, probe in probes.items() if probe.error}


@blueprint.get("/health")
def health():
    extensions = current_app.extensions
    parts = {
        "database": extensions["db"].check_schema,
        "redis": extensions["stores"].ping,
    }
    if "nlu" in extensions:
        parts["nlu"] = lambda: extensions["nlu"].parse("你好")
    failing = _failing(parts)
    body = {name: ("ok" if name not in failing else "unavailable") for name in parts}
    if not current_app.config["REDIS_URL"]:
        body["redis"] = "not configured (in-memory stores)"
    if failing:
        return jsonify(status="unavailable", failing=failing, **body), 503
    return jsonify(status="ok", **body)
