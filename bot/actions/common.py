"""Pieces every action uses: who is talking, whom the conversation is about, the menu."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.actions import context
from services import accounts
from services.models import ChannelAccount, Person
from services.policy import assess
from services.regions import policy_for

MENU = [
    {"title": "我要认证", "payload": "/start_certification"},
    {"title": "认证查询", "payload": "/check_status"},
    {"title": "帮家人认证", "payload": "/certify_for_relative"},
    {"title": "常见问题", "payload": "/faq_menu"},
]
HANDOFF_BUTTON = {"title": "转人工", "payload": "/human_handoff"}
# A button for one frequent question. "/faq/<name>" is no payload a Rasa server accepts (its
# domain knows the intent faq, not faq/<name>), so the question rides as an entity.
FAQ_TOPIC = "topic"
# Slots a finished flow clears, so the next flow never reuses another person's answers.
FLOW_SLOTS = ("person_name", "id_number", "relation", "subject", "method")
# Slot: the account's bindings as this conversation last read them, ``[[person_no, relation,
# region_code], …]`` in binding order — so an answer that needs only the province reads no
# roster. Bindings change only in the conversation itself (a bind clears it) or by signing out,
# which ends the conversation; the tracker expires with the session.
ACCOUNT_PEOPLE = "account_people"


@contextmanager
def unit_of_work() -> Iterator[Session]:
    with context.current().database.session() as session:
        yield session


# The certification methods of the region data (services/data/regions.yaml) as buttons;
# information comparison happens without the person, so it has none.
METHOD_BUTTONS = {
    "face": {"title": "刷脸认证", "payload": '/choose_method{"method":"face"}'},
    "photo_review": {"title": "拍照认证", "payload": '/choose_method{"method":"photo"}'},
    "home_visit": {"title": "上门认证", "payload": '/choose_method{"method":"visit"}'},
}


def methods_for(person: Person) -> tuple[str, ...]:
    """The methods ``person`` may certify by today: their region's, and none when they may
    not certify now (already certified, payment stopped)."""
    assessment = assess(person, today())
    return assessment.policy.methods if assessment.may_certify else ()


def method_buttons(person: Person, *, besides: str | None = None) -> list[dict]:
    return [
        button
        for method, button in METHOD_BUTTONS.items()
        if method != besides and method in methods_for(person)
    ]


def today() -> dt.date:
    """Beijing's date by the engine's clock (frozen in tests and simulations)."""
    return context.current().clock.today()


def now() -> dt.datetime:
    return context.current().clock.now()


def channel_and_user(tracker: Tracker) -> tuple[str, str]:
    """Conversation ids are ``<channel>:<platform user id>`` (see UserMessage)."""
    channel, _, user = tracker.sender_id.partition(":")
    return (channel, user) if user else ("rest", channel)


def account_of(session: Session, tracker: Tracker) -> ChannelAccount:
    channel, user = channel_and_user(tracker)
    return accounts.account_for(session, channel, user[:128])


def person_by_no(session: Session, person_no: str | None) -> Person | None:
    if not person_no:
        return None
    return session.scalars(select(Person).where(Person.person_no == person_no)).one_or_none()


def subject_person(session: Session, tracker: Tracker) -> Person | None:
    """The person this conversation is about: verified earlier, or the account's only binding.

    ``verified_person`` is only ever set by actions after a name + ID match or from the
    account's own bindings, so it cannot point at someone the user has not proven to know.
    """
    account = account_of(session, tracker)
    bound = accounts.bound_people(session, account)
    chosen = tracker.get_slot("verified_person")
    for person, _relation in bound:
        if person.person_no == chosen:
            return person
    return bound[0][0] if len(bound) == 1 else None


def account_people(tracker: Tracker) -> tuple[list[list[str]], list]:
    """The account's bindings ``[person_no, relation, region_code]``, and the events that keep
    them with the conversation when they had to be read."""
    kept = tracker.get_slot(ACCOUNT_PEOPLE)
    if isinstance(kept, list):
        return kept, []
    channel, user = channel_and_user(tracker)
    bound = accounts.bindings_of(context.current().database, channel, user[:128])
    people = [[person_no, relation, region or ""] for person_no, relation, region in bound]
    return people, [SlotSet(ACCOUNT_PEOPLE, people)]


def subject_region(tracker: Tracker) -> tuple[str | None, list]:
    """:func:`region_code` of :func:`subject_person`, from what the conversation keeps; plus
    the events that keep it."""
    people, events = account_people(tracker)
    chosen = tracker.get_slot("verified_person")
    subject = next((p for p in people if p[0] == chosen), people[0] if len(people) == 1 else None)
    return (subject[2] if subject and subject[2] else region_code(tracker)), events


def region_code(tracker: Tracker, person: Person | None = None) -> str | None:
    """The person's region; else the province the user named or their client reported last.

    A channel may say where its user is (REST ``metadata.region``, a 6-digit code). That rides
    on the user's messages, which both engines hand to the actions in ``tracker.events``, so
    reading it here works the same under either; a region the user picks later wins.
    """
    if person and person.region_code:
        return person.region_code
    for event in reversed(tracker.events):
        if event.get("event") == "slot" and event.get("name") == "region" and event.get("value"):
            return str(event["value"])
        if event.get("event") == "user":
            reported = str((event.get("metadata") or {}).get("region") or "")
            if re.fullmatch(r"\d{6}", reported):
                return reported
    return tracker.get_slot("region")


def hotline(tracker: Tracker, person: Person | None = None) -> str:
    return policy_for(region_code(tracker, person)).hotline or policy_for(None).hotline


def relation_label(relation: str) -> str:
    return "本人" if relation == "self" else relation


def people_buttons(bound: list[tuple[Person, str]], *, add_new: bool) -> list[dict]:
    """'为谁认证？' choices: people the account has already proven to know, by index."""
    buttons = [
        {
            "title": f"{relation_label(relation)} {person.name}",
            "payload": f'/choose_person{{"subject":"{index}"}}',
        }
        for index, (person, relation) in enumerate(bound)
    ]
    if add_new and len(bound) < accounts.bind_limit():
        buttons.append({"title": "添加家人", "payload": '/choose_person{"subject":"new"}'})
    if not any(relation == "self" for _person, relation in bound):
        buttons.append({"title": "我自己", "payload": '/choose_person{"subject":"self"}'})
    return buttons


def faq_button(title: str, name: str) -> dict:
    return {"title": title, "payload": f'/faq{{"{FAQ_TOPIC}":"{name}"}}'}


def faq_asked(tracker: Tracker) -> str | None:
    """Which frequent question (``faq/<name>``) the latest message asks, under either engine.

    A button names it; Rasa's ResponseSelector picks it (``response_selector``, the intent
    being plain ``faq``); the embedded NLU also names it in the intent itself.
    """
    latest = tracker.latest_message or {}
    for entity in latest.get("entities") or []:
        if entity.get("entity") == FAQ_TOPIC and entity.get("value"):
            return f"faq/{entity['value']}"
    selected = ((latest.get("response_selector") or {}).get("faq") or {}).get("response") or {}
    if str(selected.get("intent_response_key") or "").startswith("faq/"):
        return selected["intent_response_key"]
    intent = str((latest.get("intent") or {}).get("name") or "")
    return intent if intent.startswith("faq/") else None


def say(dispatcher: CollectingDispatcher, text: str, buttons: list[dict] | None = None) -> None:
    dispatcher.utter_message(text=text, buttons=buttons or [])
