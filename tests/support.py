"""Where the test servers are, and what to do when one is missing (shared by every test).

Addresses come from ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` (else ``DATABASE_URL`` /
``REDIS_URL``, else this machine's local servers). A missing server skips the tests that need
it on a developer's machine and fails them loudly under CI (``CI=true``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from pathlib import Path

import pytest
from stdnum.cn import ric

from services.clock import FrozenClock
from services.db import Database, normalise_url
from services.models import Base, BenefitType, PaymentStatus, Person

POSTGRES_URL = normalise_url(
    os.environ.get("TEST_DATABASE_URL")
    or os.environ.get("DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
RUN_ID = uuid.uuid4().hex[:8]

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FACES = FIXTURES / "faces"  # face photos and a clip; licence note in its README.md
REGULATIONS = REPO / "docs" / "regulations"  # the seeds every rule and answer cites

# The day the app's clock stands still on in tests (services.clock): the day a date-bound
# suite once failed. Nothing in the suite reads the machine's date.
NOW = "2026-12-01 10:00"
TODAY = dt.date(2026, 12, 1)


def demo_person(person_no: str) -> dict:
    """A row of the demo roster as loaded on :data:`TODAY`."""
    from services.demo_roster import demo_rows

    return next(row for row in demo_rows(TODAY) if row["person_no"] == person_no)


def ident(person_no: str) -> tuple[str, str]:
    """Name and ID number of a demo-roster person: what a user types to identify them."""
    row = demo_person(person_no)
    return row["name"], row["id_number"]


def frozen_clock(moment: str = NOW) -> FrozenClock:
    return FrozenClock(moment)


def service_missing(what: str, error: Exception):
    """Skip here, fail under CI: a test needing a server never passes silently without it."""
    message = f"{what} is not reachable ({error.__class__.__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message} — CI must run against it", pytrace=False)
    pytest.skip(message)


def schema_url(url: str, schema: str) -> str:
    """The same database with ``search_path`` set to one schema (libpq ``options``)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def empty_tables(database: Database) -> None:
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def id_number(seq: int) -> str:
    """A checksum-valid resident ID (a woman born 1952-03-15 in Xi'an Xincheng), one per seq."""
    body = "610102195203150" + f"{seq:02d}"
    return body + ric.calc_check_digit(body + "0")


def make_person(session, name: str = "王秀兰", seq: int = 2, **overrides) -> Person:
    """A roster person, flushed so it has an id."""
    values = dict(
        person_no=f"P{seq:04d}",
        name=name,
        id_number=id_number(seq),
        gender="M" if seq % 2 else "F",
        birth_date=dt.date(1952, 3, 15),
        region_code="610102",
        benefit_type=BenefitType.enterprise,
        status=PaymentStatus.normal,
    )
    person = Person(**(values | overrides))
    session.add(person)
    session.flush()
    return person


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The intent catalogue (docs/spec/intents.md): a contract, names fixed.
CATALOGUE_TASK_INTENTS = [
    "greet",
    "goodbye",
    "thanks",
    "affirm",
    "deny",
    "start_certification",
    "certify_for_relative",
    "check_status",
    "manual_review",
    "request_home_visit",
    "human_handoff",
    "out_of_scope",
]
CATALOGUE_FAQ_INTENTS = [
    "faq/grey_button",
    "faq/person_not_found",
    "faq/account_locked",
    "faq/phone_registered",
    "faq/overseas",
    "faq/face_failed",
    "faq/face_tips",
    "faq/cycle",
    "faq/suspended",
    "faq/download_app",
    "faq/register",
    "faq/login",
    "faq/who_needs",
    "faq/photo_requirements",
    "faq/info_comparison",
    "faq/fraud_penalty",
    "faq/dependents",
    "faq/contact",
    "faq/no_smartphone",
    "faq/is_free",
    "faq/bind_limit",
    "faq/why_certify",
]


FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "correct horse battery"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_staff(session, username: str = "li", *, role: str = "reviewer", regions=("61",)):
    """A console staff user (password :data:`PASSWORD`)."""
    from services.staff import add_staff

    return add_staff(session, username, PASSWORD, role=role, regions=list(regions))


def make_review(session, photo_dir, person, account=None, *, submitted_at=None):
    """A pending photo review of ``person`` sent by ``account`` (a real JPEG on disk)."""
    from services.photos import store_review_photo

    review = store_review_photo(
        session,
        photo_dir,
        fixture_bytes("faces/photo_with_paper.jpg"),
        person=person,
        account=account,
    )
    if submitted_at is not None:
        review.submitted_at = submitted_at
        session.flush()
    return review


class ImmediateJobs:
    """A job queue that runs each job at once, in the caller's thread (services tests)."""

    def __init__(self):
        self.runtime = None
        self.ran: list[str] = []

    def enqueue(self, func, *args, **kwargs):
        self.ran.append(func.__name__)
        return func(self.runtime, *args, **kwargs)


def make_runtime(database, clock=None):
    """A Runtime over ``database`` that collects outbound messages for every channel."""
    from services.clock import FrozenClock
    from services.outbound import CollectingOutbound, OutboundRouter
    from services.runtime import Runtime

    collected = CollectingOutbound()
    router = OutboundRouter({c: collected for c in ("wechat", "alipay", "rest", "web")})
    jobs = ImmediateJobs()
    runtime = Runtime(
        config={},
        database=database,
        clock=clock or FrozenClock("2026-12-01 10:00"),
        outbound=router,
    )
    runtime.jobs = jobs
    jobs.runtime = runtime
    runtime.extensions["collected"] = collected
    return runtime


# --- the browser tests: Debian's Chromium driven by Playwright (scripts/ensure-chromium) -----

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def find_chromium(path: str = CHROMIUM) -> str:
    """The browser to drive, or a skip (a loud failure under CI) when it is not installed."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        service_missing(
            "Chromium", FileNotFoundError(f"{path} (install it with scripts/ensure-chromium)")
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        service_missing("Playwright", error)
    return path


def web_chat_conversation(app, client) -> str:
    """The conversation id the web chat gave ``client`` (its signed cookie), a new one if none."""
    from channels import webchat

    cookie = client.get_cookie(webchat.COOKIE, path="/chat")
    if cookie is None:
        client.post("/chat/inbox", json={})
        cookie = client.get_cookie(webchat.COOKIE, path="/chat")
    with app.test_request_context():
        return webchat.conversation_in(cookie.value)
