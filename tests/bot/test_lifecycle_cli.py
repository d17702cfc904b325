"""The certification-year commands a clerk or cron runs: daily, import-comparison, reports."""

from __future__ import annotations

import datetime as dt
import logging

from click.testing import CliRunner
from sqlalchemy import select

from pension.cli import main as cli
from services.models import CycleNotice, PaymentStatusChange
from tests.support import id_number, make_person


def _env(postgres_url) -> dict:
    return {"DATABASE_URL": postgres_url, "LOAD_DEMO_ROSTER": "0", "REDIS_URL": ""}


def test_daily_twice_sends_once_and_sms_logs_a_masked_number(postgres_url, db, caplog):
    with db.session() as session:
        make_person(
            session,
            region_code="140105",
            last_certified_on=dt.date(2025, 5, 20),
            phone="13912345678",
        )
    runner = CliRunner()
    with caplog.at_level(logging.INFO, logger="services.sms"):
        first = runner.invoke(cli, ["daily", "--date", "2026-02-20"], env=_env(postgres_url))
        again = runner.invoke(cli, ["daily", "--date", "2026-02-20"], env=_env(postgres_url))
    assert first.exit_code == 0 and "remind_3m 1" in first.output, first.output
    assert again.exit_code == 0 and "remind_3m" not in again.output
    assert "139****5678" in caplog.text and "13912345678" not in caplog.text
    with db.session() as session:
        assert [n.kind for n in session.scalars(select(CycleNotice))] == ["remind_3m"]


def test_daily_rejects_a_bad_date(postgres_url, db):
    result = CliRunner().invoke(cli, ["daily", "--date", "2026-02-30"], env=_env(postgres_url))
    assert result.exit_code == 2 and "2026-02-30" in result.output


def test_import_comparison_then_payroll_report(postgres_url, db, tmp_path):
    with db.session() as session:
        make_person(session, seq=41, region_code="140105", last_certified_on=dt.date(2025, 5, 20))
    records = tmp_path / "records.csv"
    records.write_text(
        "source,kind,id_number,date\n"
        f"民政,death,{id_number(41)},2020-01-05\n"
        f"铁路,train,{id_number(99)},2020-01-05\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["import-comparison", str(records)], env=_env(postgres_url))
    assert result.exit_code == 1 and "第 3 行" in result.output  # the unknown ID
    assert id_number(99) not in result.output
    with db.session() as session:
        assert [c.status for c in session.scalars(select(PaymentStatusChange))] == ["stopped"]
    out = tmp_path / "payroll.xlsx"
    report = runner.invoke(
        cli,
        ["payroll-report", "--from", "2020-01-01", "--to", "2020-01-31", "--out", str(out)],
        env=_env(postgres_url),
    )
    assert report.exit_code == 0 and "1 条" in report.output and out.exists()


def test_public_notice_before_july_says_so(postgres_url, db, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["public-notice", "--region", "360734", "--year", "2026", "--out", str(tmp_path / "n.csv")],
        env=_env(postgres_url),
    )
    assert result.exit_code == 1 and "July" in result.output


def test_daily_removes_idle_rest_accounts_that_bound_nobody(postgres_url, db):
    from services.accounts import account_for
    from services.models import ChannelAccount

    with db.session() as session:
        account_for(session, "rest", "gone-stranger").created_at = dt.datetime(2026, 9, 1)
        account_for(session, "rest", "yesterday").created_at = dt.datetime(2026, 11, 30)
    env = {**_env(postgres_url), "CLOCK": "2026-12-01 10:00"}

    result = CliRunner().invoke(cli, ["daily", "--date", "2026-12-01"], env=env)

    assert result.exit_code == 0, result.output
    assert "1 idle REST / web-chat account(s) that bound nobody removed" in result.output
    with db.session() as session:
        assert list(session.scalars(select(ChannelAccount.external_id))) == ["yesterday"]
