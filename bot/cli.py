"""The ``pension`` command: serve, import-roster, migrate, shell.

Each command builds the app from the same settings as the service (environment variables or
the instance ``config.py``), so ``DATABASE_URL=postgresql://… pension import-roster f.csv``
loads into PostgreSQL and the bare command into the embedded SQLite file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from bot import create_app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """养老保险待遇领取资格认证助手 — pension certification assistant."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, help="gunicorn workers (Redis only)")
def serve(host: str, port: int, workers: int) -> None:
    """Run the service: embedded defaults unless DATABASE_URL / REDIS_URL are set."""
    app = create_app()
    click.echo(f"数据库 database: {app.extensions['db'].engine.url.render_as_string()}")
    if app.config["REDIS_URL"] and shutil.which("gunicorn"):
        # Shared state lives in Redis, so several processes can serve side by side.
        click.echo(f"gunicorn, {workers} workers, http://{host}:{port}/")
        gunicorn = shutil.which("gunicorn")
        # Threads: a WeChat request may wait up to WECHAT_REPLY_WAIT seconds for its answer.
        options = ["-w", str(workers), "-k", "gthread", "--threads", "32"]
        os.execv(gunicorn, [gunicorn, *options, "-b", f"{host}:{port}", "bot.wsgi:app"])
    # In-memory stores belong to one process: one process, many threads.
    click.echo(f"embedded mode (one process): http://{host}:{port}/  — Ctrl+C to stop")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@main.command("import-roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_roster(file: Path) -> None:
    """Load pension recipients from a CSV (UTF-8 or GBK) or XLSX roster.

    Exits 1 when any row was rejected (the good rows are imported all the same).
    """
    from services.roster import import_roster_file

    app = create_app({"LOAD_DEMO_ROSTER": False})
    summary = import_roster_file(app.extensions["db"], file, progress=sys.stderr.isatty())
    click.echo(summary.format())
    if summary.errors or summary.rejected:
        sys.exit(1)  # scripts notice; the good rows are imported all the same


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest version (Alembic upgrade head)."""
    app = create_app({"LOAD_DEMO_ROSTER": False, "AUTO_MIGRATE": False})
    app.extensions["db"].upgrade()
    click.echo("database schema is up to date")


@main.command()
def handoffs() -> None:
    """List conversations waiting for a human (the bot is silent in them)."""
    from services.handoffs import open_handoffs

    app = create_app({"LOAD_DEMO_ROSTER": False})
    with app.extensions["db"].session() as session:
        waiting = open_handoffs(session)
        for handoff in waiting:
            click.echo(
                f"{handoff.conversation_id}\t{handoff.requested_at:%Y-%m-%d %H:%M}\t{handoff.reason or ''}"
            )
        click.echo(f"{len(waiting)} conversation(s) with a human")


@main.command("release-handoff")
@click.argument("conversation_id")
@click.option("--by", "staff", required=True, help="who releases it (audit log)")
def release_handoff(conversation_id: str, staff: str) -> None:
    """Give a conversation back to the bot (CONVERSATION_ID as listed by `handoffs`)."""
    from services.handoffs import release

    app = create_app({"LOAD_DEMO_ROSTER": False})
    with app.extensions["db"].session() as session:
        released = release(session, conversation_id, staff)
    if not released:
        raise click.ClickException(f"no open handoff for {conversation_id}")
    click.echo(f"released {conversation_id}: the bot answers again")


@main.command()
def worker() -> None:
    """Run an RQ worker for background jobs (needs REDIS_URL)."""
    import redis
    from rq import Worker

    from bot.jobs import QUEUE_NAME, worker_app

    app = worker_app()
    if not app.config["REDIS_URL"]:
        raise click.UsageError("REDIS_URL is not set: without Redis, jobs run inside `serve`")
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    Worker([QUEUE_NAME], connection=connection).work(with_scheduler=False)


@main.command("wechat-menu")
def wechat_menu() -> None:
    """Create the Official Account menu 我要认证 / 认证查询 / 常见问题 (needs WECHAT_APPID/SECRET)."""
    from wechatpy.exceptions import WeChatClientException

    from channels.wechat_api import MENU, create_menu

    app = create_app({"LOAD_DEMO_ROSTER": False, "AUTO_MIGRATE": False})
    try:
        create_menu(app)
    except (RuntimeError, WeChatClientException) as error:
        raise click.ClickException(f"menu not created: {error}") from error
    click.echo("menu created: " + " / ".join(b["name"] for b in MENU["button"]))


@main.command()
@click.option("--sender", default="shell-user", show_default=True, help="conversation id to use")
@click.option("--region", default=None, help="6-digit region code sent with each message")
def shell(sender: str, region: str | None) -> None:
    """Chat with the bot in the terminal, like `rasa shell` (/stop, Ctrl+D or Ctrl+C to quit)."""
    from bot.messages import UserMessage

    if region is not None and not (region.isdigit() and len(region) == 6):
        raise click.BadParameter("a region code has 6 digits, e.g. 610102", param_hint="--region")
    app = create_app()
    engine = app.extensions["engine"]
    metadata = {"region": region} if region else {}
    click.echo("机器人已就绪，请输入消息后按回车；输入数字选择按钮，输入 /stop 退出。")
    click.echo("Bot loaded. Type a message and press enter (use '/stop' to exit).")
    while True:
        try:
            line = input("您 > ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            break
        text = line.strip()
        if not text:
            continue
        if text == "/stop":
            break
        message = UserMessage(sender=sender, channel="shell", text=text, metadata=dict(metadata))
        for reply in engine.handle(message):
            _print_reply(reply)
    click.echo("再见！Goodbye.")


def _print_reply(reply) -> None:
    """One bot message as terminal lines: the text, then the buttons numbered from 1."""
    if reply.text:
        lines = reply.text.splitlines() or [""]
        click.echo(f"助手 > {lines[0]}")
        for line in lines[1:]:
            click.echo(f"       {line}")
    for number, button in enumerate(reply.buttons, start=1):
        click.echo(f"       {number}. {button.title}")
    if reply.image:
        click.echo(f"       [图片] {reply.image}")
    if reply.link:
        click.echo(f"       [链接] {reply.link}")


if __name__ == "__main__":
    main()
