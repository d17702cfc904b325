"""The web chat page: ``GET /chat``, a mobile-first page for retirees and their relatives.

Everything the page needs is served by this app (no CDN): the template, one stylesheet and one
script. The script talks in the REST channel's format to its own endpoint (``POST /chat/messages``,
channel ``web``) and fetches what staff or a job sent later from ``POST /chat/inbox``.

Which conversation a browser is in is the server's choice, never the page's: a random id in a
signed (``SECRET_KEY``), HttpOnly, SameSite cookie; a ``sender`` in the body is ignored. The
cookie lapses after ``WEBCHAT_IDLE_MINUTES`` of silence, and "退出" / "解绑" ends it at once and
removes the bindings made in it — a phone shared in a family or at a service desk forgets who
was bound. A strict
Content-Security-Policy keeps scripts to our own file; the script inserts every piece of user
and bot text with ``textContent``, never as HTML.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, g, jsonify, render_template, request
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from bot.messages import BotMessage
from bot.stores import Stores
from channels.rest import answer_in_rest_format, chat_message, json_body
from services.accounts import account_for, bound_people, unbind
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
COOKIE = "pension_chat"
SIGN_OUT_WORDS = {"退出", "解绑", "退出登录", "解除绑定"}
SIGNED_OUT = (
    "已退出：这部手机不再记得您绑定的人{count}。下次要查询或认证，请重新告诉我姓名和身份证号。"
)

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

    The conversation id in the page's signed cookie is what unlocks its inbox: the same
    secret that already names its conversation.
    """

    def __init__(self, stores: Stores):
        self.outbox = stores.inbox(OUTBOX, OUTBOX_TTL_SECONDS)

    def deliver(self, recipient: Recipient, messages) -> None:
        for message in messages:
            self.outbox.push(recipient.external_id, message.to_rest(recipient.external_id))


class _ClockTimestampSigner(TimestampSigner):
    """itsdangerous' timed signature on the app's clock (tests and rehearsals freeze it)."""

    def __init__(self, *args, clock, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock.now().timestamp())


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"],
        salt="webchat-conversation",
        signer=_ClockTimestampSigner,
        signer_kwargs={"clock": current_app.extensions["runtime"].clock},
    )


def _idle_seconds() -> int:
    return int(current_app.config["WEBCHAT_IDLE_MINUTES"]) * 60


def conversation() -> str:
    """This browser's conversation id: the cookie's, or a new one when it is missing, forged,
    or idle longer than ``WEBCHAT_IDLE_MINUTES``."""
    if "web_conversation" not in g:
        found = conversation_in(request.cookies.get(COOKIE, ""))
        g.web_conversation = found or f"web-{secrets.token_hex(16)}"
    return g.web_conversation


def conversation_in(token: str) -> str | None:
    """The conversation a cookie names, if its signature holds and it has not been idle too long."""
    try:
        return _signer().loads(token, max_age=_idle_seconds())
    except BadSignature:  # also SignatureExpired: an idle conversation starts afresh
        return None


@blueprint.after_app_request
def keep_conversation(response):
    """Every answer to the page renews the cookie: the idle time runs from the last message."""
    if request.blueprint == "webchat" and request.method == "POST" and response.status_code < 500:
        response.set_cookie(
            COOKIE,
            _signer().dumps(conversation()),
            max_age=_idle_seconds(),
            path="/chat",
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
        )
    return response


@blueprint.post("/chat/messages")
def message():
    """The page's messages: the REST channel's shape, the web chat's channel and conversation."""
    body = json_body()
    user_message = chat_message(body, CHANNEL, conversation())
    if (user_message.text or "").strip() in SIGN_OUT_WORDS:
        return jsonify([sign_out(user_message.sender).to_rest(CHANNEL)])
    # recipient_id names the channel only: the conversation id stays in the HttpOnly cookie.
    return answer_in_rest_format(user_message, CHANNEL)


def sign_out(sender: str) -> BotMessage:
    """ "退出" / "解绑": the bindings made in this conversation end, and so does the conversation."""
    runtime = current_app.extensions["runtime"]
    with runtime.database.session() as session:
        account = account_for(session, CHANNEL, sender)
        people = [person for person, _ in bound_people(session, account)]
        for person in people:
            unbind(session, account, person)
    current_app.extensions["stores"].trackers.delete(f"{CHANNEL}:{sender}")
    g.web_conversation = f"web-{secrets.token_hex(16)}"
    count = f"（{len(people)}位）" if people else ""
    return BotMessage(text=SIGNED_OUT.format(count=count))


@blueprint.post("/chat/inbox")
def inbox():
    outbox = current_app.extensions["stores"].inbox(OUTBOX, OUTBOX_TTL_SECONDS)
    messages = []
    while len(messages) < MAX_FETCH and (message := outbox.pop(conversation())) is not None:
        messages.append(message)
    return jsonify(messages)
