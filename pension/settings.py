"""Settings: defaults < instance ``config.py`` < environment variables < explicit overrides.

Every key below may be set as an environment variable of the same name. Nothing is required:
with nothing set the service runs on its embedded defaults (SQLite in the instance folder,
in-memory stores, the embedded NLU, jobs inline, a demo roster). Plain Python, no Flask: the
CLI and the RQ workers read the same settings without building the web app.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from services.clock import FrozenClock

DEFAULTS: dict[str, object] = {
    "SECRET_KEY": None,  # generated once into the instance folder when not configured
    "DATABASE_URL": None,  # default: sqlite:///<instance>/pension.db
    "REDIS_URL": None,  # unset: in-memory stores, jobs run inline
    "REDIS_PREFIX": "pension:",
    "RASA_URL": None,  # set: dialogue by a Rasa server over HTTP
    "LOAD_DEMO_ROSTER": None,  # default: on with the embedded SQLite database only
    "AUTO_MIGRATE": None,  # default: on with the embedded SQLite database only
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,  # a phone photo fits; anything bigger is refused
    "PHOTO_DIR": None,  # default: <instance>/photos, outside the web root
    "FACE_VIDEO_DIR": None,  # default: <instance>/face-videos; clips wait there for the worker
    "FACE_VIDEO_MAX_BYTES": 40 * 1024 * 1024,  # a 10-second phone clip; the face page only
    "FACE_KEEP_VIDEOS": False,  # keep clips after the check (retention configured); else deleted
    "FACE_MATCH_THRESHOLD": 0.6,  # face distance at most this: the same person (bench/face_check.py)
    "CONVERSATION_TTL_SECONDS": 30 * 60,  # slots expire after 30 minutes of silence
    "DATABASE_STATEMENT_TIMEOUT_MS": 5000,  # web requests only; batch commands are unbounded
    "REGIONS_FILE": None,  # default: services/data/regions.yaml (an operator's own copy)
    # A services.clock.Clock; tests and simulations freeze it. From the environment: a
    # Beijing time such as "2026-12-01 10:00" stops the clock there (demos, rehearsals).
    "CLOCK": None,
    "WECHAT_TOKEN": None,
    "WECHAT_APPID": None,
    "WECHAT_SECRET": None,
    "WECHAT_AES_KEY": None,
    "WECHAT_TEMPLATE_ID": None,
    "WECHAT_API_BASE_URL": None,  # default: https://api.weixin.qq.com/cgi-bin/
    "WECHAT_REPLY_WAIT": 4.0,  # seconds a WeChat request waits for a passive reply (budget 5 s)
    "WECHAT_RETRY_SECONDS": None,  # "5,15,60,…": waits while WeChat's API is unreachable
    "ALIPAY_APP_ID": None,
    "ALIPAY_APP_PRIVATE_KEY": None,
    "ALIPAY_PUBLIC_KEY": None,
    "ALIPAY_SERVER_URL": None,
    "ALIPAY_MEDIA_URL": None,  # default: https://openfile.alipay.com/chat/multimedia.do
    "ALIPAY_GATEWAY_PATH": None,  # default: /alipay/gateway
    "ALIPAY_SIGNATURE_FAILURES_PER_MINUTE": 20,  # per client; then 429 without RSA work
    # Proxies whose X-Forwarded-For is believed: this host's own (deploy/nginx.conf); a caller
    # from outside cannot come from a loopback address. "" trusts none.
    "TRUSTED_PROXIES": "127.0.0.1,::1",
    "STAFF_HOURS": "1-5 08:30-12:00,14:30-17:30",  # when staff answer handed-off conversations
    "HANDOFF_WAIT_MINUTES": 30,  # an untaken handoff request times out after this
    "CONSOLE_IDLE_MINUTES": 30,  # a console session idle this long ends
    "WEBCHAT_IDLE_MINUTES": 30,  # a web-chat conversation idle this long is forgotten
    "PUBLIC_BASE_URL": None,  # e.g. https://rz.example.cn: links sent in WeChat/Alipay chats
    "REST_TOKEN": None,  # set: the REST channel and /model/parse need "Bearer <REST_TOKEN>"
    "CHANNEL_ACCOUNT_DAYS": 30,  # a REST / web sender that bound nobody is removed after this
    "IDENTITY_CHECKS_PER_ACCOUNT": 10,  # name + ID checks one chat account may make an hour
    "IDENTITY_MISSES_PER_ID": 5,  # wrong names for one ID number a day, from all senders
}

_INT_KEYS = {
    "MAX_CONTENT_LENGTH",
    "FACE_VIDEO_MAX_BYTES",
    "CONVERSATION_TTL_SECONDS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "ALIPAY_SIGNATURE_FAILURES_PER_MINUTE",
    "HANDOFF_WAIT_MINUTES",
    "CONSOLE_IDLE_MINUTES",
    "WEBCHAT_IDLE_MINUTES",
    "CHANNEL_ACCOUNT_DAYS",
    "IDENTITY_CHECKS_PER_ACCOUNT",
    "IDENTITY_MISSES_PER_ID",
}
_BOOL_KEYS = {"LOAD_DEMO_ROSTER", "AUTO_MIGRATE", "FACE_KEEP_VIDEOS"}
_FLOAT_KEYS = {"WECHAT_REPLY_WAIT", "FACE_MATCH_THRESHOLD"}


def default_instance_path() -> Path:
    """``instance/`` beside the package folders, where Flask would put it too."""
    return Path(__file__).resolve().parent.parent / "instance"


def _from_environment() -> dict[str, object]:
    found: dict[str, object] = {}
    for key in DEFAULTS:
        raw = os.environ.get(key)
        if raw is None or raw == "":
            continue
        try:
            if key in _INT_KEYS:
                found[key] = int(raw)
            elif key in _FLOAT_KEYS:
                found[key] = float(raw)
            elif key in _BOOL_KEYS:
                found[key] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif key == "CLOCK":
                found[key] = FrozenClock(raw.strip())
            else:
                found[key] = raw
        except ValueError as error:
            raise SettingsError(f"{key}={raw!r} is not a valid value") from error
    return found


class SettingsError(ValueError):
    """A setting has a value the service cannot use."""


def _from_instance_file(instance: Path) -> dict[str, object]:
    """Upper-case names of ``instance/config.py`` (Flask's ``from_pyfile`` convention)."""
    path = instance / "config.py"
    if not path.is_file():
        return {}
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_bytes(), str(path), "exec"), namespace)  # noqa: S102 — operator's file
    return {k: v for k, v in namespace.items() if k.isupper()}


def load_settings(
    overrides: dict | None = None, instance_path: str | Path | None = None
) -> dict[str, object]:
    """All settings in precedence order, with the embedded defaults derived."""
    instance = Path(instance_path) if instance_path else default_instance_path()
    config: dict[str, object] = dict(DEFAULTS)
    config.update(_from_instance_file(instance))
    config.update(_from_environment())
    config.update(overrides or {})
    config["INSTANCE_PATH"] = str(instance)

    embedded = not config["DATABASE_URL"]
    if embedded:
        instance.mkdir(parents=True, exist_ok=True)
        config["DATABASE_URL"] = f"sqlite:///{instance / 'pension.db'}"
    for key in ("LOAD_DEMO_ROSTER", "AUTO_MIGRATE"):
        if config[key] is None:
            config[key] = embedded
    if not config["PHOTO_DIR"]:
        config["PHOTO_DIR"] = str(instance / "photos")
    if not config["FACE_VIDEO_DIR"]:
        config["FACE_VIDEO_DIR"] = str(instance / "face-videos")
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _instance_secret(instance)
    return config


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so sessions survive a restart."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
