"""刷脸认证页 /face/<链接>：先说明并征得同意，再一步一个动作地录一段自拍短视频，交给后台核验。

The chat sends the link (services/face_checks.py): random, single use, 15 minutes, bound to the
person and the account that asked. The page is large print with one instruction at a time,
spoken as well as shown. The camera is ``getUserMedia`` + ``MediaRecorder``; where an in-app
browser refuses it, a plain ``<input type=file accept="video/*" capture="user">`` records a clip
with the phone's own camera app. Every POST carries a form token signed for this link
(itsdangerous) and must come from this site (Origin); the clip is bounded by
``FACE_VIDEO_MAX_BYTES``. The result goes to the chat, not to this page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeSerializer

from services import face_checks
from services.models import FaceCheck

blueprint = Blueprint(
    "face",
    __name__,
    url_prefix="/face",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
GONE = {
    "unknown": "这个链接不对。",
    "expired": "这个链接已经过期了（15分钟内有效）。",
    "used": "这个链接已经用过了。",
    "no_consent": "请先看完说明并点“同意”。",
}


def _video_limit() -> int:
    return int(current_app.config.get("FACE_VIDEO_MAX_BYTES") or 40 * 1024 * 1024)


@blueprint.before_request
def _bounded_upload() -> None:
    # A phone's own camera app records more than a photo weighs: this route alone may take
    # FACE_VIDEO_MAX_BYTES; more is a 413 before anything is stored.
    if request.endpoint == "face.video":
        request.max_content_length = _video_limit()


def _runtime():
    return current_app.extensions["runtime"]


def _form_token(public_id: str) -> str:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="face-form").dumps(public_id)


def _check_post(public_id: str) -> None:
    """A POST from this site's page for this link: the signed form token and the Origin."""
    origin = request.headers.get("Origin")
    # "null": what a browser sends under this page's no-referrer policy; the token still holds
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        abort(400, description="请求来源不对")
    token = request.form.get("token") or request.headers.get("X-Face-Token") or ""
    try:
        ok = URLSafeSerializer(current_app.config["SECRET_KEY"], salt="face-form").loads(token)
    except BadSignature:
        ok = None
    if ok != public_id:
        abort(400, description="页面已失效，请回到聊天里重新打开链接")


def _page(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, **context), status))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is the key: never leak it
    response.headers["Cache-Control"] = "no-store"
    return response


def _gone(why: str):
    return _page("face_gone.html", 410, message=GONE.get(why, GONE["unknown"]))


def _open(session, public_id: str) -> FaceCheck:
    return face_checks.open_check(session, public_id, now=_runtime().clock.utcnow())


@blueprint.get("/<public_id>")
def check_page(public_id: str):
    with _runtime().database.session() as session:
        try:
            check = _open(session, public_id)
        except face_checks.CheckUnavailable as gone:
            return _gone(gone.why)
        words = face_checks.wording()
        context = {
            "public_id": public_id,
            "token": _form_token(public_id),
            "consent": words["consent"],
            "tips": words["tips"],
            "steps": [{"code": a, "text": words["prompts"][a]} for a in check.actions],
            "max_bytes": _video_limit(),
        }
        template = "face_consent.html" if check.status == "issued" else "face_check.html"
    return _page(template, **context)


@blueprint.post("/<public_id>/consent")
def consent(public_id: str):
    _check_post(public_id)
    with _runtime().database.session() as session:
        try:
            check = _open(session, public_id)
        except face_checks.CheckUnavailable as gone:
            return _gone(gone.why)
        if request.form.get("answer") != "agree":
            return _page("face_declined.html")
        if check.status == "issued":
            face_checks.record_consent(session, check, now=_runtime().clock.utcnow())
    return redirect(url_for("face.check_page", public_id=public_id), 303)


@blueprint.post("/<public_id>/video")
def video(public_id: str):
    _check_post(public_id)
    upload = request.files.get("video")
    data = upload.read() if upload else b""
    if len(data) < 1024:
        abort(400, description="没有收到视频，请再录一次")
    runtime = _runtime()
    with runtime.database.session() as session:
        try:
            check, path = face_checks.accept_video(
                session,
                public_id,
                data,
                Path(runtime.config["FACE_VIDEO_DIR"]),
                now=runtime.clock.utcnow(),
            )
        except face_checks.CheckUnavailable as gone:
            if request.accept_mimetypes.best == "application/json":
                return jsonify(error=GONE.get(gone.why, GONE["unknown"])), 410
            return _gone(gone.why)
        check_id = check.id
    runtime.jobs.enqueue(face_checks.run_check, check_id, str(path))
    message = "视频已收到，正在核验，结果会在聊天里告诉您。现在可以回到聊天了。"
    if request.accept_mimetypes.best == "application/json":
        return jsonify(status="checking", message=message), 202
    return _page("face_sent.html", 202, message=message)
