"""Building the runtime: database, stores, clock, job queue, the outbound port and its channels.

The web app, the CLI and every RQ worker build the same :class:`services.runtime.Runtime`
from the same settings; only what a caller asks for is built (``dialogue=True`` loads the
NLU and the engine, which ``pension handoffs`` never needs).
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.logmask import install_log_masking
from bot.stores import make_stores
from pension.jobs import make_queue
from pension.settings import load_settings
from services import regions
from services.clock import system_clock
from services.db import Database
from services.outbound import OutboundRouter
from services.runtime import Runtime

log = logging.getLogger(__name__)


def build_runtime(config: dict, *, dialogue: bool = False, serving: bool = False) -> Runtime:
    """Everything a job or a request needs, from the settings (see :mod:`pension.settings`).

    ``serving``: for the web service and its workers, whose statements are bounded in time."""
    if config.get("REGIONS_FILE"):
        regions.use_data_file(config["REGIONS_FILE"])
    timeout = config.get("DATABASE_STATEMENT_TIMEOUT_MS") if serving else None
    database = Database(config["DATABASE_URL"], statement_timeout_ms=timeout)
    stores = make_stores(config["REDIS_URL"], config["REDIS_PREFIX"])
    runtime = Runtime(
        config=config,
        database=database,
        clock=config.get("CLOCK") or system_clock,
        outbound=OutboundRouter(),
        extensions={"db": database, "stores": stores},
    )
    runtime.jobs = make_queue(runtime)
    _channels(runtime)
    if dialogue:
        add_dialogue(runtime)
    return runtime


def _channels(runtime: Runtime) -> None:
    """Each channel's side of the outbound port, for the platforms that are configured."""
    from channels.alipay import AlipayChannel, AlipayOutbound
    from channels.webchat import WebChatOutbound
    from channels.wechat_api import WeChatOutbound

    config, stores = runtime.config, runtime.extensions["stores"]
    runtime.outbound.register("web", WebChatOutbound(stores))
    if config.get("WECHAT_APPID") and config.get("WECHAT_SECRET"):
        runtime.outbound.register("wechat", WeChatOutbound(runtime))
    alipay = AlipayChannel.from_settings(config, stores)
    runtime.extensions["alipay"] = alipay
    if alipay is not None:
        runtime.outbound.register("alipay", AlipayOutbound(alipay))


def add_dialogue(runtime: Runtime) -> None:
    """The embedded engine by default; a Rasa server when ``RASA_URL`` is set."""
    config, extensions = runtime.config, runtime.extensions
    if "engine" in extensions:
        return
    common = dict(
        stores=extensions["stores"],
        database=runtime.database,
        photo_dir=config["PHOTO_DIR"],
    )
    if config["RASA_URL"]:
        from bot.rasa_engine import RasaEngine, RasaNLU

        nlu = RasaNLU(config["RASA_URL"])
        engine = RasaEngine(url=config["RASA_URL"], **common)
    else:
        from bot.engine import EmbeddedEngine
        from nlu.classifier import EmbeddedNLU

        nlu = EmbeddedNLU.load(cache_dir=Path(config["INSTANCE_PATH"]) / "nlu-cache")
        from services.handoffs import HandoffPolicy
        from services.identity import CheckLimits

        engine = EmbeddedEngine(
            nlu=nlu,
            clock=runtime.clock,
            handoff_policy=HandoffPolicy.from_settings(config),
            check_limits=CheckLimits.from_settings(config),
            session_ttl_seconds=config["CONVERSATION_TTL_SECONDS"],
            jobs=lambda: runtime.jobs,
            public_url=config["PUBLIC_BASE_URL"] or "",
            **common,
        )
    extensions.update(nlu=nlu, engine=engine)


_worker_runtime: Runtime | None = None


def run_job(func, *args, **kwargs):
    """What an RQ worker runs (``pension.jobs.WORKER_ENTRY``): the job with the runtime this
    worker process builds once from its settings — the dialogue included, no web app."""
    global _worker_runtime
    if _worker_runtime is None:
        install_log_masking()  # RQ's own workers start without the web app that installs it
        _worker_runtime = build_runtime(load_settings(), dialogue=True)
    return func(_worker_runtime, *args, **kwargs)


def prepare_database(runtime: Runtime) -> None:
    """The embedded defaults: migrate at start-up and load the demo roster into an empty
    database (``AUTO_MIGRATE`` / ``LOAD_DEMO_ROSTER``, on with SQLite only)."""
    if runtime.config["AUTO_MIGRATE"]:
        runtime.database.upgrade()
    if runtime.config["LOAD_DEMO_ROSTER"]:
        from services.demo_roster import load_demo_roster_once

        created = load_demo_roster_once(runtime.database, runtime.clock.today())
        if created:
            log.info("demo roster loaded: %d people", created)
