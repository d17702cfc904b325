"""JSON error answers: every client mistake is a 4xx with a reason, never a 500 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from bot.rasa_engine import RasaUnavailable
from bot.stores import StoreUnavailable
from services.db import SchemaBehind

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify(error=error.name, message=error.description), error.code

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(RasaUnavailable)
    def part_unavailable(error: Exception):
        # Redis or the Rasa server is down: say so plainly; the platform may retry later.
        log.error("%s: %s", error.__class__.__name__, error)
        body = {"error": "Service Unavailable", "message": "服务暂时不可用，请稍后再试"}
        return jsonify(body), 503, {"Retry-After": "5"}

    @app.errorhandler(SchemaBehind)
    def schema_behind(error: SchemaBehind):
        log.error("%s", error)
        body = {"error": "Service Unavailable", "message": str(error)}
        return jsonify(body), 503
