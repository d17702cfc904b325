"""Rasa-compatible HTTP API: the REST channel and the NLU parse endpoint.

* ``POST /webhooks/rest/webhook`` — Rasa's REST input channel
  (https://rasa.com/docs/rasa/connectors/your-own-website#rest-channels):
  ``{"sender", "message", "metadata"}`` in, a list of ``{"recipient_id", "text", "buttons", …}`` out.
  A photo comes as ``"message": "/image"`` with ``metadata.image_base64``; ``metadata.region``
  (a 6-digit code) is the only other metadata kept. The web chat page has its own endpoint
  (``POST /chat/messages``, same shape): a caller cannot choose its channel.
* ``POST /model/parse`` — Rasa's NLU HTTP API (https://rasa.com/docs/rasa/pages/http-api).

With ``REST_TOKEN`` set both need ``Authorization: Bearer <REST_TOKEN>`` (else 401). Both are
described for clients in ``channels/openapi.yaml`` (served as ``GET /openapi.json``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
from pathlib import Path

import yaml
from flask import Blueprint, abort, current_app, jsonify, request

from bot.messages import UserMessage

blueprint = Blueprint("rest", __name__)

OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.yaml")

MAX_MESSAGE_CHARS = 5000
MAX_SENDER_CHARS = 100  # conversation ids are "<channel>:<sender>", at most 128
SENDER_RATE_LIMIT = (30, 60)  # messages per sender per minute: a person never types faster
PHOTO_RATE_LIMIT = (10, 600)  # photos per sender per 10 minutes: each may be kept for review


REGION_CODE = re.compile(r"\d{6}")
# A sender id names a conversation: printable, no control characters (a NUL breaks PostgreSQL).
SENDER = re.compile(r"[^\x00-\x1f\x7f]+")


def json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested thousands deep: nobody's chat message
        abort(400, description="request body is nested too deeply")
    if not isinstance(body, dict):
        abort(400, description="request body must be a JSON object")
    return body


def text_field(body: dict, name: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        abort(400, description=f"'{name}' must be a non-empty string")
    if len(value) > limit:
        abort(413, description=f"'{name}' is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is no text anyone typed
        abort(400, description=f"'{name}' is not valid Unicode text")
    return value


def sender_field(body: dict) -> str:
    sender = text_field(body, "sender", MAX_SENDER_CHARS)
    if not SENDER.fullmatch(sender):
        abort(400, description="'sender' must not contain control characters")
    return sender


def chat_message(body: dict, channel: str, sender: str) -> UserMessage:
    """One message of a REST-shaped chat client. The channel is the endpoint's (REST, the web
    chat page), never what the caller claims; so is the sender on the web chat."""
    text = text_field(body, "message", MAX_MESSAGE_CHARS).replace("\x00", "")
    metadata = {} if body.get("metadata") is None else body["metadata"]
    if not isinstance(metadata, dict):
        abort(400, description="'metadata' must be an object")

    within_rate_limit(f"{channel}:{sender}")

    image = _image(metadata) if text.strip() == "/image" else None
    if image is not None:
        within_rate_limit(f"photo:{channel}:{sender}", PHOTO_RATE_LIMIT)
    region = metadata.get("region")
    return UserMessage(
        sender=sender,
        channel=channel,
        text=None if image is not None else text,
        image=image,
        # Only a region code is kept from the caller's metadata, and only a well-formed one.
        metadata={"region": region}
        if isinstance(region, str) and REGION_CODE.fullmatch(region)
        else {},
    )


def answer_in_rest_format(message: UserMessage, recipient_id: str):
    replies = current_app.extensions["engine"].handle(message)
    return jsonify([reply.to_rest(recipient_id) for reply in replies])


def require_rest_token() -> None:
    """``REST_TOKEN`` set: only a caller holding it may speak on the REST channel."""
    token = current_app.config.get("REST_TOKEN")
    if not token:
        return
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(401, description="this endpoint needs 'Authorization: Bearer <REST_TOKEN>'")


@blueprint.post("/webhooks/rest/webhook")
def rest_webhook():
    require_rest_token()
    body = json_body()
    sender = sender_field(body)
    return answer_in_rest_format(chat_message(body, "rest", sender), sender)


def within_rate_limit(key: str, rate: tuple[int, int] = SENDER_RATE_LIMIT) -> None:
    limit, per = rate
    if not current_app.extensions["stores"].rate_limits.allow(key, limit, per):
        abort(429, description="too many messages; please wait a minute")


def _image(metadata: dict) -> bytes:
    encoded = metadata.get("image_base64")
    if not isinstance(encoded, str) or not encoded:
        abort(400, description="a '/image' message needs metadata.image_base64")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        abort(400, description="metadata.image_base64 is not valid base64")


@blueprint.post("/model/parse")
def model_parse():
    """The REST channel's door and limits: its token, its size limit, a rate per client."""
    require_rest_token()
    text = text_field(json_body(), "text", MAX_MESSAGE_CHARS, required=False) or ""
    within_rate_limit(f"parse:{request.remote_addr}")
    return jsonify(current_app.extensions["nlu"].parse(text))


@blueprint.get("/openapi.json")
def openapi_document():
    """The HTTP API for clients (REST, parse, the web chat, health), as OpenAPI 3."""
    return jsonify(_openapi())


@functools.cache
def _openapi() -> dict:
    return yaml.safe_load(OPENAPI_DOCUMENT.read_text(encoding="utf-8"))
