"""`pension staff add / unlock / reset-password` and `pension expire-handoffs` on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from pension.cli import main as cli
from services import staff
from services.handoffs import request_handoff
from services.models import Handoff
from services.staff import SignInResult

NEW_PASSWORD = "a long new password"


def env(postgres_url: str) -> dict:
    return {"DATABASE_URL": postgres_url, "AUTO_MIGRATE": "0", "LOAD_DEMO_ROSTER": "0"}


def run(postgres_url, *args, password: str | None = None):
    return CliRunner().invoke(
        cli, ["staff", *args], input=(password + "\n") if password else None, env=env(postgres_url)
    )


def test_add_unlock_and_reset(db, postgres_url):
    added = run(
        postgres_url,
        "add",
        "wang",
        "--role",
        "reviewer",
        "--region",
        "45",
        "--region",
        "610102",
        "--name",
        "王芳",
        "--password-stdin",
        password="correct horse battery",
    )
    assert added.exit_code == 0, added.output
    assert "regions 45、610102" in added.output
    again = run(
        postgres_url,
        "add",
        "wang",
        "--role",
        "admin",
        "--region",
        "45",
        "--password-stdin",
        password="correct horse battery",
    )
    assert again.exit_code == 1 and "已经存在" in again.output
    bad = run(postgres_url, "add", "zhao", "--role", "boss", "--region", "45", "--password-stdin")
    assert bad.exit_code == 2  # click refuses the role before any password is read

    with db.session() as session:
        for _ in range(3):
            staff.authenticate(session, "wang", "wrong")
        assert staff.authenticate(session, "wang", "correct horse battery").result == "locked"
    assert run(postgres_url, "unlock", "wang").exit_code == 0
    with db.session() as session:
        assert staff.authenticate(session, "wang", "correct horse battery").result == "ok"
    reset = run(postgres_url, "reset-password", "wang", "--password-stdin", password=NEW_PASSWORD)
    assert reset.exit_code == 0, reset.output
    with db.session() as session:
        assert staff.authenticate(session, "wang", NEW_PASSWORD).result == SignInResult.ok
        user = staff.find(session, "wang")
        assert user.display_name == "王芳" and user.role == "reviewer"
    assert run(postgres_url, "unlock", "nobody").exit_code == 1


def test_expire_handoffs_for_cron(db, postgres_url):
    with db.session() as session:
        request_handoff(
            session,
            "rest:someone",
            "rest",
            "人工",
            now=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1),
        )
    result = CliRunner().invoke(cli, ["expire-handoffs"], env=env(postgres_url))
    assert result.exit_code == 0, result.output
    assert "1 waiting request(s) timed out" in result.output
    with db.session() as session:
        assert session.query(Handoff).one().released_by == "timeout"
