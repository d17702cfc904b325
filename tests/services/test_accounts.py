"""Channel accounts and person bindings: get-or-create, the 4-person limit, unbinding."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from services.accounts import (
    BindingLimitReached,
    account_for,
    actor_for,
    bind_limit,
    bind_person,
    bound_people,
    remove_idle_accounts,
    unbind,
)
from services.models import (
    AuditLog,
    Binding,
    ChannelAccount,
    Person,
)
from tests.support import make_person

NAMES = ["王秀兰", "李建国", "张桂英", "刘德明", "陈玉珍", "杨志强", "赵淑芬", "黄国华"]


def test_account_for_gets_or_creates(db):
    with db.session() as session:
        first = account_for(session, "wechat", "o-openid-1")
        again = account_for(session, "wechat", "o-openid-1")
        other_channel = account_for(session, "alipay", "o-openid-1")
        assert first is again
        assert first.id != other_channel.id
        assert first.last_inbound_at is None
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ChannelAccount)) == 2


def test_account_for_records_inbound_time(db):
    moment = dt.datetime(2026, 11, 23, 9, 30)
    with db.session() as session:
        account = account_for(session, "wechat", "o-1", inbound=True, now=moment)
        assert account.last_inbound_at == moment
    aware = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with db.session() as session:
        account = account_for(session, "wechat", "o-1", inbound=True, now=aware)
        assert account.last_inbound_at == dt.datetime(2026, 11, 23, 10, 0)
        account_for(session, "wechat", "o-1")  # not told: unchanged
        assert account.last_inbound_at == dt.datetime(2026, 11, 23, 10, 0)


@pytest.mark.parametrize(("channel", "external_id"), [("", "x"), ("wechat", ""), ("w" * 17, "x")])
def test_account_for_rejects_bad_keys(db, channel, external_id):
    with db.session() as session, pytest.raises(ValueError):
        account_for(session, channel, external_id)


def test_account_for_is_safe_under_concurrency(db):
    barrier = threading.Barrier(6)
    ids, errors = [], []

    def worker():
        try:
            barrier.wait()
            with db.session() as session:
                ids.append(account_for(session, "wechat", "o-race").id)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(set(ids)) == 1


@pytest.fixture(params=["db", "sqlite_db"])
def database(request):
    return request.getfixturevalue(request.param)


def test_fifth_person_is_refused(database):
    with database.session() as session:
        account = account_for(session, "wechat", "o-family")
        people = [make_person(session, name, i) for i, name in enumerate(NAMES[:5], start=1)]
        for person, relation in zip(people[:4], ["self", "妈妈", "父亲", "岳母"], strict=True):
            bind_person(session, account, person, relation)

        with pytest.raises(BindingLimitReached) as refused:
            bind_person(session, account, people[4], "姑妈")
        assert refused.value.limit == bind_limit() == 4
        assert [(p.name, r) for p, r in refused.value.bound] == [
            ("王秀兰", "self"),
            ("李建国", "妈妈"),
            ("张桂英", "父亲"),
            ("刘德明", "岳母"),
        ]
        assert "最多可为4位参保人认证" in str(refused.value)
        assert len(bound_people(session, account)) == 4


def test_binding_again_is_idempotent_and_updates_relation(db):
    with db.session() as session:
        account = account_for(session, "wechat", "o-family")
        people = [make_person(session, name, i) for i, name in enumerate(NAMES[:4], start=1)]
        for person in people:
            bind_person(session, account, person, "亲属")
        # Full, yet re-binding someone already bound is fine.
        binding = bind_person(session, account, people[1], " 妈妈 ")
        assert binding.relation == "妈妈"
        assert session.scalar(select(func.count()).select_from(Binding)) == 4
        assert bound_people(session, account)[1] == (people[1], "妈妈")


def test_unbind_frees_a_place(database):
    with database.session() as session:
        account = account_for(session, "alipay", "2088-1")
        people = [make_person(session, name, i) for i, name in enumerate(NAMES[:5], start=1)]
        for person in people[:4]:
            bind_person(session, account, person, "亲属")
        assert unbind(session, account, people[0]) is True
        assert unbind(session, account, people[0]) is False
        bind_person(session, account, people[4], "舅舅")
        assert [p.name for p, _ in bound_people(session, account)] == NAMES[1:5]


def test_same_person_on_several_accounts(db):
    """The limit is per account: a person may be bound from a son's and a daughter's phone."""
    with db.session() as session:
        mother = make_person(session, "王秀兰", 1)
        for n in range(6):
            bind_person(session, account_for(session, "wechat", f"o-{n}"), mother, "妈妈")
        assert session.scalar(select(func.count()).select_from(Binding)) == 6


def test_binding_changes_are_audited(db):
    with db.session() as session:
        account = account_for(session, "wechat", "o-audit")
        person = make_person(session, "王秀兰", 1)
        bind_person(session, account, person, "self")
        bind_person(session, account, person, "self")  # no second entry
        unbind(session, account, person)
        entries = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [e.action for e in entries] == ["binding.created", "binding.removed"]
        assert {e.actor for e in entries} == {actor_for(account)} == {f"wechat#{account.id}"}
        assert entries[0].target_id == str(person.id)
        assert person.id_number not in str(entries[0].detail)


@pytest.mark.parametrize("relation", ["", "   ", "很" * 17])
def test_bad_relation_is_refused(db, relation):
    with db.session() as session:
        account = account_for(session, "wechat", "o-1")
        person = make_person(session, "王秀兰", 1)
        with pytest.raises(ValueError):
            bind_person(session, account, person, relation)


def test_concurrent_binds_never_exceed_the_limit(db):
    with db.session() as session:
        account_id = account_for(session, "wechat", "o-race").id
        person_ids = [make_person(session, name, i).id for i, name in enumerate(NAMES, start=1)]

    barrier = threading.Barrier(len(person_ids))
    outcomes, errors = [], []

    def worker(person_id):
        try:
            barrier.wait()
            with db.session() as session:
                account = session.get(ChannelAccount, account_id)
                bind_person(session, account, session.get(Person, person_id), "亲属")
            outcomes.append("bound")
        except BindingLimitReached:
            outcomes.append("refused")
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(pid,)) for pid in person_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sorted(outcomes) == ["bound"] * 4 + ["refused"] * 4
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Binding)) == 4


def test_idle_rest_and_web_accounts_that_bound_nobody_are_removed(db):
    now = dt.datetime(2026, 12, 1, 2, 0)
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=3)
    with db.session() as session:
        for channel, external_id, created in [
            ("rest", "old-stranger", old),
            ("web", "web-old", old),
            ("rest", "recent", recent),
            ("wechat", "o-old", old),  # a platform's user: its own account, kept
            ("rest", "old-but-bound", old),
        ]:
            account = account_for(session, channel, external_id)
            account.created_at = created
        bind_person(session, account, make_person(session), "self")

    with db.session() as session:
        removed = remove_idle_accounts(session, now, dt.timedelta(days=30))
    with db.session() as session:
        left = set(session.scalars(select(ChannelAccount.external_id)))

    assert removed == 2
    assert left == {"recent", "o-old", "old-but-bound"}
