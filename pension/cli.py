"""The ``pension`` command: serve, import-roster, migrate, handoffs, worker, shell, ….

Every command reads the same settings as the service (environment variables or the instance
``config.py``), so ``DATABASE_URL=postgresql://… pension import-roster f.csv`` loads into
PostgreSQL and the bare command into the embedded SQLite file. Each builds only what it needs:
``pension handoffs`` opens the database and nothing else; only ``serve``, ``shell`` and
``worker`` load the dialogue. A database whose schema is behind gets one line — run
``pension migrate`` — not a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError

from bot.logmask import install_log_masking
from console.commands import staff_commands
from pension import gunicorn_conf
from pension.runtime import add_dialogue, build_runtime, prepare_database
from pension.settings import SettingsError, load_settings
from services.db import Database, SchemaBehind

# Worker class, threads and timeouts: pension/gunicorn_conf.py (deploy/gunicorn.conf.py too).
GUNICORN_CONFIG = "python:pension.gunicorn_conf"
WORKER_CLASS = gunicorn_conf.worker_class  # gthread, stamping each request's arrival


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """养老保险待遇领取资格认证助手 — pension certification assistant."""
    install_log_masking()


def _settings(overrides: dict | None = None) -> dict:
    try:
        return load_settings(overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A schema behind or a database out of reach: one line that says what to do."""
    try:
        yield
    except SchemaBehind as error:
        raise click.ClickException(str(error)) from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise click.ClickException(f"database unreachable: {reason}") from None


def _database(config: dict, *, migrated: bool = True) -> Database:
    """The configured database, checked: reachable and (unless migrating) at the newest schema."""
    database = Database(config["DATABASE_URL"])
    with _one_line_errors():
        if config["AUTO_MIGRATE"]:
            database.upgrade()
        database.check_schema() if migrated else database.ping()
    return database


def _runtime(config: dict, *, dialogue: bool = False):
    runtime = build_runtime(config)
    with _one_line_errors():
        prepare_database(runtime)
        runtime.database.check_schema()
    if dialogue:
        add_dialogue(runtime)
    return runtime


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, help="gunicorn workers (Redis only)")
def serve(host: str, port: int, workers: int) -> None:
    """Run the service under gunicorn: embedded defaults unless DATABASE_URL / REDIS_URL are set."""
    config = _settings()
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    click.echo(f"数据库 database: {Database(config['DATABASE_URL']).engine.url.render_as_string()}")
    if not config["REDIS_URL"]:
        # In-memory stores belong to one process: one process, many threads.
        workers = 1
        click.echo("embedded mode (one process, in-memory stores)")
    click.echo(f"gunicorn, {workers} worker(s), http://{host}:{port}/  — Ctrl+C to stop")
    options = ["-c", GUNICORN_CONFIG, "-w", str(workers), "-b", f"{host}:{port}"]
    os.execv(gunicorn, [gunicorn, *options, "pension.wsgi:app"])


@main.command("import-roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_roster(file: Path) -> None:
    """Load pension recipients from a CSV (UTF-8 or GBK) or XLSX roster.

    Exits 1 when any row was rejected (the good rows are imported all the same).
    """
    from services.roster import import_roster_file

    config = _settings()
    database = _database(config)
    summary = import_roster_file(
        database,
        file,
        progress=sys.stderr.isatty(),
        today=_today(config),
    )
    click.echo(summary.format())
    if summary.errors or summary.rejected:
        sys.exit(1)  # scripts notice; the good rows are imported all the same


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest version (Alembic upgrade head)."""
    database = _database(_settings({"AUTO_MIGRATE": False}), migrated=False)
    database.upgrade()
    click.echo("database schema is up to date")


@main.command()
def handoffs() -> None:
    """List conversations waiting for a human (the bot is silent in them)."""
    from services.handoffs import open_handoffs

    config = _settings()
    with _database(config).session() as session:
        # "Open" is judged by the service's clock (CLOCK), the one the handoffs were made by.
        waiting = open_handoffs(session, _clock(config).now())
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

    with _database(_settings()).session() as session:
        released = release(session, conversation_id, staff)
    if not released:
        raise click.ClickException(f"no open handoff for {conversation_id}")
    click.echo(f"released {conversation_id}: the bot answers again")


@main.command("expire-handoffs")
def expire_handoffs() -> None:
    """Time out handoff requests nobody took (HANDOFF_WAIT_MINUTES) and tell the users; for cron."""
    from services.handoffs import expire_waiting_handoffs

    timed_out = expire_waiting_handoffs(_runtime(_settings()))
    click.echo(f"{timed_out} waiting request(s) timed out")


@main.command()
def worker() -> None:
    """Run an RQ worker for background jobs (needs REDIS_URL)."""
    import redis
    from rq import Worker

    from pension.jobs import QUEUE_NAME

    config = _settings()
    if not config["REDIS_URL"]:
        raise click.UsageError("REDIS_URL is not set: without Redis, jobs run inside `serve`")
    _database(config).dispose()
    connection = redis.Redis.from_url(config["REDIS_URL"])
    # The scheduler runs jobs enqueued for later (WeChat retries while its API is unreachable).
    Worker([QUEUE_NAME], connection=connection).work(with_scheduler=True)


@main.command("wechat-menu")
def wechat_menu() -> None:
    """Create the Official Account menu 我要认证 / 认证查询 / 常见问题 (needs WECHAT_APPID/SECRET)."""
    from wechatpy.exceptions import WeChatClientException

    from channels.wechat_api import MENU, create_menu

    runtime = build_runtime(_settings({"LOAD_DEMO_ROSTER": False, "AUTO_MIGRATE": False}))
    try:
        create_menu(runtime)
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
    engine = _runtime(_settings(), dialogue=True).extensions["engine"]
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


main.add_command(staff_commands(lambda: _database(_settings())))  # `pension staff …`

# --- the certification year (services/lifecycle.py and friends) -----------------------------


def _clock(config: dict):
    """The service's clock: CLOCK when set (a frozen Beijing time), else the system's."""
    from services.clock import system_clock

    return config["CLOCK"] or system_clock


def _today(config: dict):
    return _clock(config).today()


def _day(value: str | None):
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-07-01") from None


@main.command()
@click.option("--date", "day", default=None, help="run for this day (YYYY-MM-DD) instead of today")
def daily(day: str | None) -> None:
    """Today's reminders, suspensions, pending lists and public notices (safe to run twice);
    idle REST / web-chat accounts that bound nobody and photos nobody claimed are removed."""
    from bot.uploads import UploadParking
    from services.accounts import remove_idle_accounts
    from services.lifecycle import run_daily
    from services.processed import KEEP_DAYS, forget_processed

    day = _day(day)
    runtime = _runtime(_settings())  # the channels and the job queue deliver the notices
    for result in run_daily(runtime, day):
        click.echo(result.format())
    keep = dt.timedelta(days=int(runtime.config["CHANNEL_ACCOUNT_DAYS"]))
    with runtime.database.session() as session:
        forgotten = forget_processed(session, runtime.clock.now())
        removed = remove_idle_accounts(session, runtime.clock.now(), keep)
    click.echo(f"processed-message records older than {KEEP_DAYS} days removed: {forgotten}")
    click.echo(f"{removed} idle REST / web-chat account(s) that bound nobody removed")
    swept = UploadParking(runtime.config["PHOTO_DIR"]).sweep()
    click.echo(f"{swept} unclaimed photo(s) removed")


@main.command("import-comparison")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_comparison(file: Path) -> None:
    """Information-comparison records (CSV/XLSX: source, kind, id_number, date).

    Exits 1 when any row was rejected (the good rows are applied all the same).
    """
    from services.comparison import import_comparison_file

    config = _settings()
    summary = import_comparison_file(
        _database(config), file, progress=sys.stderr.isatty(), today=_today(config)
    )
    click.echo(summary.format())
    if summary.errors or summary.rejected:
        sys.exit(1)


@main.command("pending-list")
@click.option("--unit", default=None, help="the unit whose 待核实人员确认表 to write")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="an .xlsx file")
def pending_list(unit: str | None, out: Path | None) -> None:
    """Shanxi pending verification: units and deadlines, or one unit's sheet with --unit --out."""
    from services.verification import export_pending_sheet, pending_by_unit

    config = _settings()
    with _database(config).session() as session:
        if unit is None:
            for name, rows in pending_by_unit(session).items():
                deadline = min(pending.deadline for pending, _ in rows)
                click.echo(f"{name}\t{len(rows)} 人\t最早期限 {deadline.isoformat()}")
            return
        if out is None:
            raise click.UsageError("--unit needs --out FILE.xlsx")
        count = export_pending_sheet(session, unit, out, today=_today(config))
    click.echo(f"{out}: {count} 人 待核实")


@main.command("pending-return")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "staff", required=True, help="who records it (audit log)")
def pending_return(file: Path, staff: str) -> None:
    """Record a 待核实人员确认表 a unit sent back (XLSX)."""
    from services.verification import record_returned_sheet

    config = _settings()
    with _database(config).session() as session:
        summary = record_returned_sheet(session, file, operator=staff, today=_today(config))
    click.echo(summary.format())
    if summary.rejected:
        sys.exit(1)


@main.command("payroll-report")
@click.option("--from", "start", required=True, help="first day, YYYY-MM-DD")
@click.option("--to", "end", required=True, help="last day, YYYY-MM-DD")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", default="", help="region-code prefix, e.g. 36")
def payroll_report(start: str, end: str, out: Path, region: str) -> None:
    """Suspensions, resumptions (with back-pay months) and stops in a period, .csv or .xlsx."""
    from services.payroll import write_payroll_report

    first, last = _day(start), _day(end)
    with _database(_settings()).session() as session:
        count = write_payroll_report(session, first, last, out, region)
    click.echo(f"{out}: {count} 条变动")


@main.command("public-notice")
@click.option("--region", "region_code", required=True, help="6-digit region code")
@click.option("--year", type=int, default=None, help="default: this year")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def public_notice_command(region_code: str, year: int | None, out: Path) -> None:
    """Export a Jiangxi July public notice (names and masked ID numbers) for posting."""
    from services.public_notice import export_notice

    config = _settings()
    year = year or _today(config).year
    with _database(config).session() as session:
        try:
            count = export_notice(session, region_code, year, out)
        except LookupError as error:
            raise click.ClickException(f"{error} (the daily run posts it in July)") from None
    click.echo(f"{out}: {count} 人")


if __name__ == "__main__":
    main()


@main.command("import-reference-faces")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_reference_faces(folder: Path) -> None:
    """人脸建模: reference faces from roster photos named by person number (P0001.jpg).

    Exits 1 when a file had no face, several faces, or named nobody on the roster.
    """
    from services.faces import import_reference_folder

    report = import_reference_folder(_database(_settings()), folder, progress=sys.stderr.isatty())
    click.echo(report.format())
    if report.problems:
        sys.exit(1)


@main.command("precheck-photos")
def precheck_photos() -> None:
    """自动预检: compute the pre-checks of pending photo reviews that have none yet.

    The embedded engine queues them as each photo arrives; this is for a Rasa action server
    (which has no job queue) and for photos filed before the pre-checks existed.
    """
    from services.photo_prechecks import precheck_review, reviews_to_precheck

    runtime = _runtime(_settings())
    with runtime.database.session() as session:
        waiting = reviews_to_precheck(session)
    for review_id in waiting:
        precheck_review(runtime, review_id)
    click.echo(f"预检完成：{len(waiting)} 张照片")
