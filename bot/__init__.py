"""The Flask application: settings, stores, dialogue and the channels' blueprints."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from bot import errors, health
from bot.jobs import make_queue
from bot.logmask import install_log_masking
from bot.settings import configure
from bot.stores import make_stores
from services.db import Database

log = logging.getLogger(__name__)


def create_app(overrides: dict | None = None, instance_path: str | None = None) -> Flask:
    """Application factory (Flask tutorial style): ``create_app({"DATABASE_URL": ...})`` in tests."""
    install_log_masking()
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.json.ensure_ascii = False  # Chinese as UTF-8, as Rasa answers, not \uXXXX escapes
    configure(app.config, app.instance_path, overrides)

    database = Database(app.config["DATABASE_URL"])
    if app.config["AUTO_MIGRATE"]:
        database.upgrade()
    stores = make_stores(app.config["REDIS_URL"], app.config["REDIS_PREFIX"])
    app.extensions.update(db=database, stores=stores)

    if app.config["LOAD_DEMO_ROSTER"]:
        from services.demo_roster import load_demo_roster_once

        created = load_demo_roster_once(database)
        if created:
            log.info("demo roster loaded: %d people", created)

    _dialogue(app, database, stores)
    app.extensions["jobs"] = make_queue(app)
    errors.register(app)
    _blueprints(app)
    return app


def _dialogue(app: Flask, database: Database, stores) -> None:
    """The embedded engine by default; a Rasa server when ``RASA_URL`` is set."""
    config = app.config
    if config["RASA_URL"]:
        from bot.rasa_engine import RasaEngine, RasaNLU

        nlu = RasaNLU(config["RASA_URL"])
        engine = RasaEngine(
            url=config["RASA_URL"], stores=stores, database=database, photo_dir=config["PHOTO_DIR"]
        )
    else:
        from bot.engine import EmbeddedEngine
        from nlu.classifier import EmbeddedNLU

        nlu = EmbeddedNLU.load(cache_dir=Path(app.instance_path) / "nlu-cache")
        engine = EmbeddedEngine(
            nlu=nlu,
            stores=stores,
            database=database,
            photo_dir=config["PHOTO_DIR"],
            session_ttl_seconds=config["CONVERSATION_TTL_SECONDS"],
        )
    app.extensions.update(nlu=nlu, engine=engine)


def _blueprints(app: Flask) -> None:
    from channels import alipay, rest, webchat, wechat

    for blueprint in (health, rest, webchat, wechat, alipay):
        app.register_blueprint(blueprint.blueprint)
