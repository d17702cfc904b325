"""The web chat page: ``GET /chat``, a mobile-first page for retirees and their relatives.

Everything the page needs is served by this app (no CDN): the template, one stylesheet and one
script. The script talks in the REST channel's format to its own endpoint (``POST /chat/messages``,
channel ``web``) and fetches what staff or a job sent later from ``POST /chat/inbox``. A strict
Content-Security-Policy keeps scripts to our own file; the script inserts every piece of user
and bot text with ``textContent``, never as HTML.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from bot.stores import Stores
from channels.rest import MAX_SENDER_CHARS, chat_turn, json_body, text_field
from services.outbound import Recipient
from services.regions import policy_for

blueprint = Blueprint(
    "webchat",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/chat/static",
)

CHANNEL = "web"
OUTBOX = "web-outbox"
OUTBOX_TTL_SECONDS = 7 * 24 * 3600  # a reviewed photo's answer waits a week for the page
MAX_FETCH = 20  # messages handed to the page per inbox check

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@blueprint.get("/chat")
def chat_page():
    # The whole JSON request (base64 photo included) must fit the app's request size limit.
    max_body = current_app.config.get("MAX_CONTENT_LENGTH") or 10 * 1024 * 1024
    response = current_app.make_response(
        render_template("webchat.html", max_body=max_body, hotline=policy_for(None).hotline)
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


class WebChatOutbound:
    """The outbound port for the web chat: messages wait in the page's inbox until it asks.

    The random sender id the page keeps is what unlocks its inbox: the same secret that
    already names its conversation.
    """

    def __init__(self, stores: Stores):
        self.outbox = stores.inbox(OUTBOX, OUTBOX_TTL_SECONDS)

    def deliver(self, recipient: Recipient, messages) -> None:
        for message in messages:
            self.outbox.push(recipient.external_id, message.to_rest(recipient.external_id))


@blueprint.post("/chat/messages")
def message():
    """The page's messages: the REST channel's shape, the web chat's channel."""
    return chat_turn(CHANNEL)


@blueprint.post("/chat/inbox")
def inbox():
    sender = text_field(json_body(), "sender", MAX_SENDER_CHARS)
    outbox = current_app.extensions["stores"].inbox(OUTBOX, OUTBOX_TTL_SECONDS)
    messages = []
    while len(messages) < MAX_FETCH and (message := outbox.pop(sender)) is not None:
        messages.append(message)
    return jsonify(messages)
