"""The web chat page: ``GET /chat``, a mobile-first page for retirees and their relatives.

Everything the page needs is served by this app (no CDN): the template, one stylesheet and one
script. The script talks to the REST channel (``POST /webhooks/rest/webhook`` with
``metadata.channel = "web"``), so the page is just another REST client. A strict
Content-Security-Policy keeps scripts to our own file; the script inserts every piece of user
and bot text with ``textContent``, never as HTML.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

blueprint = Blueprint(
    "webchat",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/chat/static",
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
    response = current_app.make_response(render_template("webchat.html", max_body=max_body))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
