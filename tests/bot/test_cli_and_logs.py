"""The command line a clerk uses, and what reaches the logs."""

from __future__ import annotations

import logging

from click.testing import CliRunner

from bot.logmask import install_log_masking
from pension.cli import main as cli
from services.demo_roster import fictional_id_number

HEADER = "person_no,name,id_number,region_code,benefit_type,phone,unit_name,status,last_certified_on,address,overseas\n"


def _env(app_config) -> dict:
    return {
        "DATABASE_URL": app_config["DATABASE_URL"],
        "REDIS_URL": app_config["REDIS_URL"],
        "REDIS_PREFIX": app_config["REDIS_PREFIX"],
        "LOAD_DEMO_ROSTER": "0",
    }


def test_import_roster_reports_rows_and_is_idempotent(app_config, db, tmp_path):
    import datetime as dt

    good = fictional_id_number("610102", dt.date(1950, 1, 2), 7, True)
    roster = tmp_path / "roster.csv"
    roster.write_bytes(
        (
            HEADER
            + f"P1,王秀兰,{good},610102,institution,13800000000,,normal,2026-03-05,,0\n"
            + f"P2,劉德華,{good[:-1]}0,610102,enterprise,,,normal,,,0\n"
        ).encode("gbk")
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["import-roster", str(roster)], env=_env(app_config))
    assert first.exit_code == 1  # one row rejected
    assert "3" in first.output and "劉" in first.output  # row 3, the traditional character
    again = runner.invoke(cli, ["import-roster", str(roster)], env=_env(app_config))
    assert "unchanged" in again.output.lower() or "未变" in again.output


def test_migrate_command(app_config, db):
    result = CliRunner().invoke(cli, ["migrate"], env=_env(app_config))
    assert result.exit_code == 0 and "up to date" in result.output


def test_id_and_phone_numbers_are_masked_in_every_log_record(caplog):
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything").info("user %s typed 610102195203150020 and 13912345678", "x")
    assert "610102195203150020" not in caplog.text and "13912345678" not in caplog.text
    assert "6101**********0020" in caplog.text and "139****5678" in caplog.text
