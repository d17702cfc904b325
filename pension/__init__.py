"""The composition root: settings, the runtime, the Flask app and its blueprints, the CLI.

Nothing imports this package; it imports everything else and wires it::

    pension/   create_app · settings · runtime (database, stores, clock, jobs, outbound port)
               · cli · wsgi · health · errors
    ├── channels/  REST, WeChat, Alipay, web chat (each also the outbound port of its platform)
    ├── bot/       the dialogue: engine, actions, stores
    ├── console/   the staff console
    ├── face/      the face-check page the chat links to
    └── services/  the domain, no Flask
"""

from __future__ import annotations

from flask import Flask, request

from bot.logmask import install_log_masking
from pension import errors, health
from pension.runtime import add_dialogue, build_runtime, prepare_database
from pension.settings import load_settings

__all__ = ["create_app"]


def create_app(overrides: dict | None = None, instance_path: str | None = None) -> Flask:
    """Application factory (Flask tutorial style): ``create_app({"DATABASE_URL": ...})`` in tests."""
    install_log_masking()
    config = load_settings(overrides, instance_path)
    app = Flask(__name__, instance_path=config["INSTANCE_PATH"])
    app.json.ensure_ascii = False  # Chinese as UTF-8, as Rasa answers, not \uXXXX escapes
    app.config.update(config)
    # //health must not redirect to a Location built from the caller's Host header.
    app.url_map.merge_slashes = False

    runtime = build_runtime(app.config, serving=True)
    prepare_database(runtime)
    add_dialogue(runtime)
    # One dictionary for both: what a channel keeps on the runtime (its API client, delivery
    # state) is the same object in a request and in a job run by this process.
    app.extensions.update(runtime.extensions, runtime=runtime)
    runtime.extensions = app.extensions

    errors.register(app)
    _blueprints(app)

    @app.before_request
    def schema_is_current() -> None:
        # A database that was not migrated answers every request with the one-line fix
        # (503), not with a traceback per message; /health says the same in its own words.
        if request.blueprint != "health":
            runtime.database.require_schema()

    return app


def _blueprints(app: Flask) -> None:
    import console
    import face
    from channels import alipay, rest, webchat, wechat

    for blueprint in (health, rest, webchat, wechat, alipay, console, face):
        app.register_blueprint(blueprint.blueprint)
