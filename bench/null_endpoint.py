"""The do-nothing baseline of bench/message_path.py: the same libraries, no dialogue.

``POST /wechat`` verifies the signature, parses the XML and answers a fixed passive reply
(Flask + wechatpy, as channels/wechat.py does before any work); ``POST
/webhooks/rest/webhook`` reads the JSON and answers one fixed message. What is left between
this and the project is the project's own cost.

    gunicorn -w 2 -k gthread --threads 32 --chdir bench null_endpoint:app
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort, jsonify, request
from wechatpy import parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

TOKEN = os.environ.get("WECHAT_TOKEN", "bench-token")
ANSWER = "您好，我是养老金认证小助手。"

app = Flask(__name__)


@app.post("/wechat")
def wechat():
    try:
        check_signature(
            TOKEN,
            request.args.get("signature", ""),
            request.args.get("timestamp", ""),
            request.args.get("nonce", ""),
        )
    except InvalidSignatureException:
        abort(403)
    message = parse_message(request.get_data(as_text=True))
    return Response(TextReply(message=message, content=ANSWER).render(), mimetype="application/xml")


@app.post("/webhooks/rest/webhook")
def rest():
    body = request.get_json(force=True)
    return jsonify([{"recipient_id": str(body.get("sender")), "text": ANSWER}])


@app.get("/health")
def health():
    return "ok"
