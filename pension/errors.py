"""JSON error answers: every client mistake is a 4xx with a reason, never a 500 page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from bot.rasa_engine import RasaUnavailable
from bot.stores import LockTimeout, StoreUnavailable
from services.db import SchemaBehind

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify(error=error.name, message=error.description), error.code

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(RasaUnavailable)
    @app.errorhandler(LockTimeout)
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)  # every pooled connection busy (a stall being cut): wait
    def part_unavailable(error: Exception):
        # Redis, the database or a Rasa server is out of reach, or the sender's previous
        # message still holds the conversation: nothing was changed; try again shortly.
        log.error("%s: %s", error.__class__.__name__, str(error).splitlines()[0][:200])
        body = {"error": "Service Unavailable", "message": "服务暂时不可用，请稍后再试"}
        return jsonify(body), 503, {"Retry-After": "5"}

    @app.errorhandler(SchemaBehind)
    def schema_behind(error: SchemaBehind):
        log.error("%s", error)
        body = {"error": "Service Unavailable", "message": str(error)}
        return jsonify(body), 503
