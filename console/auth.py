"""登录、登出、CSRF、空闲超时、角色、安全响应头和错误页。

* flask-login keeps the signed-in user; its user id is the staff row's ``session_token``, so a
  password reset ends every session signed in with the old password.
* CSRF: every POST under /console must carry flask-wtf's token (form field ``csrf_token``);
  a missing or forged one is a 400. Only this blueprint is checked: the platforms' webhooks
  are signed by the platforms, not by a browser session.
* The session cookie is HttpOnly, SameSite=Lax, and Secure whenever the request came over
  HTTPS (directly, or through nginx saying ``X-Forwarded-Proto: https``).
* A session idle for ``CONSOLE_IDLE_MINUTES`` ends (measured with the runtime's clock).
"""

from __future__ import annotations

import datetime as dt
import functools
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from console import blueprint, clock, database, page
from services import audit, staff
from services.clock import SHANGHAI
from services.policy import format_date

IDLE_DEFAULT_MINUTES = 30


class Staff(UserMixin):
    """The signed-in staff user; ``record`` is the (detached) StaffUser row for services."""

    def __init__(self, record):
        self.record = record

    def get_id(self) -> str:
        return self.record.session_token

    @property
    def username(self) -> str:
        return self.record.username

    @property
    def is_admin(self) -> bool:
        return self.record.role == "admin"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over HTTPS, whatever the configuration says."""

    def get_cookie_secure(self, app) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        if not request:
            return False
        # Behind nginx the request arrives over HTTP with X-Forwarded-Proto. Trusting the
        # header is safe here: a forged one can only make the sender's own cookie stricter.
        return request.is_secure or request.headers.get("X-Forwarded-Proto", "") == "https"


login_manager = LoginManager()
login_manager.login_view = "console.login"
login_manager.login_message = "请先登录"
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load(token: str):
    with database().session() as db:
        record = staff.by_session_token(db, token)
    return Staff(record) if record is not None else None


@blueprint.record_once
def _setup(state) -> None:
    app = state.app
    login_manager.init_app(app)
    if not app.config.get("SESSION_COOKIE_SAMESITE"):  # Flask's default is None
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's lifetime is the limit
    app.session_interface = ConsoleSessionInterface()
    app.jinja_env.globals["csrf_token"] = generate_csrf


def me():
    """The StaffUser row of the signed-in user, for the services."""
    return current_user.record


@blueprint.before_request
def _guard():
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token") or request.headers.get("X-CSRFToken"))
        except (ValidationError, CSRFError):
            abort(400, description="表单已失效（CSRF），请刷新页面后重试")
    if request.endpoint in ("console.login", "console.static"):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    now = clock().now().timestamp()
    idle = 60 * int(current_app.config.get("CONSOLE_IDLE_MINUTES") or IDLE_DEFAULT_MINUTES)
    seen = session.get("console_seen")
    if seen is not None and now - float(seen) > idle:
        logout_user()
        session.clear()
        flash("长时间没有操作，已自动退出，请重新登录")
        return redirect(url_for("console.login"))
    session["console_seen"] = now
    return None


@blueprint.after_request
def _headers(response):
    # Pages and photos carry personal data: never cached, never framed, no referrer leaves.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def require_admin(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            forbidden("admin")
        return view(*args, **kwargs)

    return wrapper


def forbidden(what: str):
    """403, written to the audit log (who tried what)."""
    with database().session() as db:
        audit.record(
            db,
            current_user.username if current_user.is_authenticated else "anonymous",
            "access.denied",
            "page",
            request.path[:64],
            {"needs": what},
            at=clock().utcnow(),
        )
    abort(403)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not urlsplit(target).netloc:
        return target
    return url_for("console.home")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("console.home"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with database().session() as db:
            result = staff.authenticate(db, username, password, now=clock().utcnow())
        if result.result == staff.SignInResult.ok:
            session.clear()  # a fresh session: nothing from before the sign-in carries over
            login_user(Staff(result.staff))
            session["console_seen"] = clock().now().timestamp()
            return redirect(_safe_next(request.args.get("next")))
        if result.result == staff.SignInResult.locked:
            until = _beijing(result.locked_until)
            error = (
                f"密码连续输错{staff.MAX_FAILED_LOGINS}次，账号已锁定，"
                f"{format_date(until.date())} {until:%H:%M} 后自动解锁，或请管理员解锁。"
            )
        elif result.result == staff.SignInResult.inactive:
            error = "这个账号已停用，请联系管理员。"
        elif result.attempts_left:
            error = f"用户名或密码不对。再错{result.attempts_left}次账号将锁定24小时。"
        else:
            error = "用户名或密码不对。"
    return page("login.html", error=error), (401 if error else 200)


@blueprint.route("/logout", methods=["POST"])
def logout():
    with database().session() as db:
        audit.record(db, current_user.username, "staff.signed_out", "staff", current_user.username)
    logout_user()
    session.clear()
    return redirect(url_for("console.login"))


@blueprint.route("/")
def home():
    return redirect(url_for("console.review_queue"))


def _beijing(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC).astimezone(SHANGHAI)


@blueprint.errorhandler(400)
@blueprint.errorhandler(403)
@blueprint.errorhandler(404)
@blueprint.errorhandler(405)
@blueprint.errorhandler(409)
@blueprint.errorhandler(413)
def _error(error):
    titles = {
        400: "请求无效",
        403: "没有权限",
        404: "找不到",
        405: "不支持的操作",
        409: "已被处理",
        413: "内容太大",
    }
    code = getattr(error, "code", 400)
    return (
        page(
            "error.html",
            code=code,
            title=titles.get(code, "出错了"),
            message=getattr(error, "description", ""),
        ),
        code,
    )
