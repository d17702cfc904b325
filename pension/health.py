"""GET /health — 200 when the database (at the newest schema), the stores and the NLU are usable,
else 503 naming the part ("run `pension migrate`" when the schema is behind)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

blueprint = Blueprint("health", __name__)


def _check(probe) -> str | None:
    try:
        probe()
    except Exception as error:  # noqa: BLE001 — any failure makes the part unusable
        return f"{error.__class__.__name__}: {error}"[:200]
    return None


@blueprint.get("/health")
def health():
    extensions = current_app.extensions
    parts = {
        "database": extensions["db"].check_schema,
        "redis": extensions["stores"].ping,
    }
    if "nlu" in extensions:
        parts["nlu"] = lambda: extensions["nlu"].parse("你好")
    failing = {name: error for name, probe in parts.items() if (error := _check(probe))}
    body = {name: ("ok" if name not in failing else "unavailable") for name in parts}
    if not current_app.config["REDIS_URL"]:
        body["redis"] = "not configured (in-memory stores)"
    if failing:
        return jsonify(status="unavailable", failing=failing, **body), 503
    return jsonify(status="ok", **body)
