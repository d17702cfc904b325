"""Human handoff: idempotent requests, release, 24-hour expiry, and the 0002 migration."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from services.db import alembic_config
from services.handoffs import (
    HANDOFF_TTL,
    current_handoff,
    is_handed_off,
    open_handoffs,
    release,
    request_handoff,
)
from services.models import AuditLog, Base, Handoff

T0 = dt.datetime(2026, 11, 23, 2, 0)
CONVERSATION = "wechat:o-abc123"


@pytest.fixture(params=["db", "sqlite_db"])
def database(request):
    return request.getfixturevalue(request.param)


def test_request_and_release(database):
    with database.session() as session:
        assert not is_handed_off(session, CONVERSATION, now=T0)
        handoff = request_handoff(session, CONVERSATION, "wechat", "我要找人工", now=T0)
        assert handoff.requested_at == T0 and handoff.released_at is None
        assert is_handed_off(session, CONVERSATION, now=T0)
        assert not is_handed_off(session, "wechat:someone-else", now=T0)

    with database.session() as session:
        assert release(session, CONVERSATION, "zhangsan", now=T0 + dt.timedelta(minutes=5))
        assert not is_handed_off(session, CONVERSATION, now=T0 + dt.timedelta(minutes=6))
        assert release(session, CONVERSATION, "zhangsan") is False
        stored = session.get(Handoff, handoff.id)
        assert stored.released_by == "zhangsan"
        assert stored.released_at == T0 + dt.timedelta(minutes=5)


def test_request_is_idempotent_while_open(database):
    with database.session() as session:
        first = request_handoff(session, CONVERSATION, "wechat", "人工", now=T0)
        again = request_handoff(
            session, CONVERSATION, "wechat", "怎么没人理我", now=T0 + dt.timedelta(hours=1)
        )
        assert again.id == first.id
        assert again.reason == "人工"
        assert session.scalar(select(func.count()).select_from(Handoff)) == 1


def test_a_new_request_after_release_opens_a_new_handoff(database):
    with database.session() as session:
        first = request_handoff(session, CONVERSATION, "wechat", "人工", now=T0)
        release(session, CONVERSATION, "lisi", now=T0 + dt.timedelta(minutes=1))
        second = request_handoff(
            session, CONVERSATION, "wechat", "还有问题", now=T0 + dt.timedelta(minutes=2)
        )
        assert second.id != first.id
        assert is_handed_off(session, CONVERSATION, now=T0 + dt.timedelta(minutes=3))


def test_handoff_expires_after_24_hours(database):
    with database.session() as session:
        first = request_handoff(session, CONVERSATION, "wechat", "人工", now=T0)
        just_before = T0 + HANDOFF_TTL - dt.timedelta(seconds=1)
        assert is_handed_off(session, CONVERSATION, now=just_before)
        assert [h.id for h in open_handoffs(session, now=just_before)] == [first.id]

        after = T0 + HANDOFF_TTL
        assert not is_handed_off(session, CONVERSATION, now=after)
        assert current_handoff(session, CONVERSATION, now=after) is None
        assert open_handoffs(session, now=after) == []

        # Asking again a day later starts over; the stale row is closed as expired.
        later = T0 + dt.timedelta(hours=30)
        second = request_handoff(session, CONVERSATION, "wechat", "又来了", now=later)
        assert second.id != first.id
        assert is_handed_off(session, CONVERSATION, now=later)
        stale = session.get(Handoff, first.id)
        assert stale.released_by == "expired"
        assert stale.released_at == T0 + HANDOFF_TTL


def test_default_now_is_the_current_time(database):
    with database.session() as session:
        request_handoff(session, CONVERSATION, "rest", None)
        assert is_handed_off(session, CONVERSATION)
        assert len(open_handoffs(session)) == 1


def test_open_handoffs_oldest_first(database):
    with database.session() as session:
        for n in range(3):
            request_handoff(session, f"c{n}", "wechat", None, now=T0 - dt.timedelta(minutes=n))
        release(session, "c1", "wangwu", now=T0)
        assert [h.conversation_id for h in open_handoffs(session, now=T0)] == ["c2", "c0"]


def test_reason_is_masked_and_limited(database):
    number = "610102195203150020"
    with database.session() as session:
        handoff = request_handoff(
            session, CONVERSATION, "wechat", f"我的身份证{number}查不到" + "啊" * 300, now=T0
        )
        assert number not in handoff.reason
        assert "6101**********0020" in handoff.reason
        assert len(handoff.reason) == 256 and handoff.reason.endswith("…")


def test_a_mobile_number_in_the_reason_is_masked(database):
    with database.session() as session:
        handoff = request_handoff(session, CONVERSATION, "web", "打我电话13912345678", now=T0)
        assert handoff.reason == "打我电话139****5678"


def test_request_and_release_are_audited(database):
    with database.session() as session:
        handoff = request_handoff(session, CONVERSATION, "wechat", "人工 610102195203150020")
        release(session, CONVERSATION, "zhaoliu")
        entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [(e.actor, e.action, e.target_type, e.target_id) for e in entries] == [
            ("bot", "handoff.requested", "handoff", str(handoff.id)),
            ("zhaoliu", "handoff.released", "handoff", str(handoff.id)),
        ]
        assert entries[0].detail == {"conversation_id": CONVERSATION, "channel": "wechat"}


def test_bad_arguments(database):
    with database.session() as session:
        with pytest.raises(ValueError):
            request_handoff(session, "", "wechat", None)
        with pytest.raises(ValueError):
            request_handoff(session, "x" * 129, "wechat", None)
        with pytest.raises(ValueError):
            request_handoff(session, CONVERSATION, "", None)
        with pytest.raises(ValueError):
            release(session, CONVERSATION, " ")


def test_one_open_handoff_per_conversation_in_the_schema(database):
    with database.session() as session:
        session.add(Handoff(conversation_id="c", channel="wechat", released_at=T0))
        session.add(Handoff(conversation_id="c", channel="wechat", released_at=T0))
        session.add(Handoff(conversation_id="c", channel="wechat"))  # closed ones may repeat
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Handoff(conversation_id="c", channel="wechat"))


def test_concurrent_requests_open_one_handoff(db):
    barrier = threading.Barrier(8)
    ids, errors = [], []

    def worker():
        try:
            barrier.wait()
            with db.session() as session:
                ids.append(request_handoff(session, CONVERSATION, "wechat", "人工").id)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(set(ids)) == 1
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Handoff)) == 1


def test_models_match_the_migrations(database):
    """The hand-written migrations give exactly the schema of models.py, on either engine."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        indexes = {index["name"]: index for index in inspect(connection).get_indexes("handoffs")}
    assert set(indexes) == {
        "ix_handoffs_conversation_id",
        "uq_handoffs_conversation_id",
        "ix_handoffs_public_id",  # 0003: the console's URLs
    }
    assert indexes["uq_handoffs_conversation_id"]["unique"]


def test_migration_downgrades_and_upgrades_on_sqlite(sqlite_db):
    with sqlite_db.engine.begin() as connection:
        config = alembic_config(sqlite_db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        assert "handoffs" not in inspect(connection).get_table_names()
        assert "persons" in inspect(connection).get_table_names()
    sqlite_db.upgrade()
    with sqlite_db.session() as session:
        request_handoff(session, CONVERSATION, "web", "人工", now=T0)
        assert is_handed_off(session, CONVERSATION, now=T0)
