"""The dialogue engine: one interface, two implementations.

* :class:`EmbeddedEngine` (default) runs the Rasa project in-process: the embedded NLU parses,
  the rules and forms of ``nlu/`` decide, and the ``rasa_sdk`` actions of ``bot.actions`` act —
  called through rasa_sdk's own ``ActionExecutor``, exactly as an action server would call them.
* :class:`bot.rasa_engine.RasaEngine` (``RASA_URL`` set) hands each message to a Rasa server.

Both take a per-sender lock, so one person's messages are handled one at a time, and both stay
silent while a human has taken the conversation over.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rasa_sdk.executor import ActionExecutor

from bot import exchange
from bot.actions import context as action_context
from bot.domain import Domain, RuleBook
from bot.messages import BotMessage, UserMessage
from bot.stores import Stores
from bot.uploads import UploadParking
from services import handoffs
from services.clock import Clock, system_clock
from services.db import Database
from services.handoffs import HandoffPolicy
from services.identity import CheckLimits
from services.runtime import JobQueue

log = logging.getLogger(__name__)

MAX_EVENTS = 80  # events kept per tracker: enough for the fallback count and forms
MAX_ACTIONS_PER_TURN = 10  # a loop guard against rules that chain forever
# Payload entities a button may carry; everything else in a typed "/intent{…}" is ignored,
# so nobody can set e.g. verified_person by typing a payload.
PAYLOAD_ENTITIES = {"subject", "method", "region", "topic", "relation"}
NO_HANDOFF = "no_handoff"  # tracker key: no handoff was open after the last turn (see _handed_off)
PAYLOAD = re.compile(r"^/(?P<intent>[\w/]+)(?P<entities>\{.*\})?$", re.S)


class DialogueEngine(Protocol):
    def handle(self, message: UserMessage) -> list[BotMessage]: ...


class Conversation:
    """One turn's view of a tracker: the Rasa tracker state plus what the bot said."""

    def __init__(self, state: dict):
        self.state = state
        self.replies: list[BotMessage] = []

    @classmethod
    def new(cls, sender_id: str) -> Conversation:
        return cls(
            {
                "sender_id": sender_id,
                "slots": {},
                "latest_message": {},
                "events": [],
                "active_loop": {},
                "latest_action_name": None,
                "paused": False,
                "followup_action": None,
                "last_buttons": [],
            }
        )

    @property
    def slots(self) -> dict:
        return self.state["slots"]

    @property
    def active_loop(self) -> str | None:
        return (self.state.get("active_loop") or {}).get("name")

    def add_event(self, event: dict) -> None:
        self.state["events"].append(event)
        del self.state["events"][:-MAX_EVENTS]

    def set_slot(self, name: str, value) -> None:
        self.slots[name] = value
        self.add_event({"event": "slot", "name": name, "value": value})

    def set_loop(self, form: str | None) -> None:
        self.state["active_loop"] = {"name": form} if form else {}
        self.add_event({"event": "active_loop", "name": form})

    def say(self, message: BotMessage) -> None:
        self.replies.append(message)
        self.add_event({"event": "bot", "text": message.text})
        if message.buttons:
            self.state["last_buttons"] = [
                {"title": b.title, "payload": b.payload} for b in message.buttons
            ]


class EmbeddedEngine:
    def __init__(
        self,
        *,
        nlu,
        stores: Stores,
        database: Database,
        photo_dir: str | Path,
        clock: Clock = system_clock,
        session_ttl_seconds: int = 30 * 60,
        domain: Domain | None = None,
        rules: RuleBook | None = None,
        handoff_policy: HandoffPolicy | None = None,
        jobs: Callable[[], JobQueue] | None = None,
        check_limits: CheckLimits | None = None,
        public_url: str = "",
    ):
        self.nlu = nlu
        self.handoff_policy = handoff_policy or HandoffPolicy()
        self.check_limits = check_limits or CheckLimits()
        self.public_url = public_url  # where the service's own pages are (links in chats)
        self.stores = stores
        self.database = database
        self.photo_dir = Path(photo_dir)
        self.clock = clock
        self.jobs = jobs  # asked at each turn: a test may swap the runtime's queue
        self.uploads = UploadParking(photo_dir)
        self.session_ttl_seconds = session_ttl_seconds
        self.domain = domain or Domain.load()
        self.rules = rules or RuleBook.load()
        self.executor = ActionExecutor()
        self.executor.register_package("bot.actions")
        self._domain_dict = self.domain.as_rasa_dict()

    # -- the turn ---------------------------------------------------------------------------
    def handle(self, message: UserMessage) -> list[BotMessage]:
        conversation_id = message.conversation_id
        with self.stores.turns.begin(conversation_id) as turn:
            stored = turn.tracker
            conversation = Conversation(stored) if stored else Conversation.new(conversation_id)
            # The handoff table is what says whether a human has the conversation; "paused"
            # only stops the rest of this turn once an action hands it over.
            handed_off = self._handed_off(conversation)
            parse = self.understand(message, conversation, park_photo=not handed_off)
            if parse is None:
                return []
            self._record_user(conversation, parse)
            conversation.state["last_buttons"] = []  # numbers typed later refer to new buttons
            conversation.state["paused"] = False
            if handed_off:
                # Waiting for a person, or with one: the action says so, keeps the message for
                # the staff user, or lets the user leave the queue (ConversationResumed).
                conversation.state["resumed"] = False
                self._run(conversation, "action_handoff_waiting")
                if conversation.state.pop("resumed", False):
                    self._decide(conversation, parse["intent"]["name"])
            else:
                self._decide(conversation, parse["intent"]["name"])
            turn.save(conversation.state, self.session_ttl_seconds)
            return conversation.replies

    def understand(
        self, message: UserMessage, conversation: Conversation, park_photo: bool = True
    ) -> dict | None:
        """Turn what the user did into a Rasa parse result (intent, entities, metadata).

        A photo is parked for the action that files it — unless nothing will run to claim it
        (a human has the conversation): then only the fact that one was sent is kept.
        """
        incoming = exchange.rasa_message(
            message,
            self.uploads if park_photo else None,
            conversation.state.get("last_buttons") or [],
        )
        if incoming is None:
            return None
        if payload := self._payload(incoming.text, incoming.metadata):
            return payload
        parse = self.nlu.parse(incoming.text)
        parse["metadata"] = incoming.metadata
        return parse

    def _payload(self, text: str, metadata: dict) -> dict | None:
        match = PAYLOAD.match(text)
        if not match:
            return None
        intent = match["intent"]
        if intent.split("/")[0] not in self.domain.intents:
            return None
        try:
            values = json.loads(match["entities"] or "{}")
        except json.JSONDecodeError:
            values = {}
        entities = [
            {"entity": name, "value": str(value), "start": 0, "end": 0, "extractor": "payload"}
            for name, value in (values.items() if isinstance(values, dict) else ())
            if name in PAYLOAD_ENTITIES
        ]
        return _parse_result(text, intent, metadata, entities)

    def _record_user(self, conversation: Conversation, parse: dict) -> None:
        conversation.state["latest_message"] = parse
        conversation.add_event(
            {
                "event": "user",
                "text": parse.get("text"),
                "parse_data": {k: parse[k] for k in ("intent", "entities") if k in parse},
                "metadata": parse.get("metadata", {}),
            }
        )

    def _handed_off(self, conversation: Conversation) -> bool:
        """Does a human have the conversation (or is one asked for)? The handoff table says.

        Only a turn of the conversation itself opens a handoff (the handoff action, under the
        conversation's lock; it pauses the turn), while staff, the CLI and cron only close
        them. So "none open" is kept in the tracker and trusted until a turn pauses: no query
        on an ordinary turn, and nothing to invalidate in other processes when a handoff ends.
        """
        if conversation.state.get(NO_HANDOFF):
            return False
        with self.database.session() as session:
            handed_off = handoffs.is_handed_off(
                session, conversation.state["sender_id"], self.clock.utcnow()
            )
        conversation.state[NO_HANDOFF] = not handed_off
        return handed_off

    # -- policy: rules and forms ---------------------------------------------------------
    def _decide(self, conversation: Conversation, intent: str) -> None:
        """Rasa's order: slots from the message first; an active form runs first and takes an
        answer; a form that got nothing it asks for is rejected and the rules decide."""
        form = conversation.active_loop
        candidates = self._slot_candidates(conversation, form)
        if form:
            if set(self.domain.form_slots(form)) & candidates.keys():
                self._form_step(conversation, form, candidates)
                return
            self._set_slots(conversation, candidates)
            rule = self.rules.for_intent(intent, form)
            if rule:
                self._run_rule(conversation, rule)
            if conversation.active_loop == form and not (rule and rule.resumes_form):
                # No rule leads back to the form (Rasa's TEDPolicy would guess): ask again.
                self._form_step(conversation, form, {})
            return
        self._set_slots(conversation, candidates)
        rule = self.rules.for_intent(intent, None)
        if rule:
            self._run_rule(conversation, rule)
        else:
            self._run(
                conversation, "action_clarify" if intent == "nlu_fallback" else "utter_what_next"
            )

    def _run_rule(self, conversation: Conversation, rule) -> None:
        for action in rule.actions:
            followed_up = self._run(conversation, action)
            if conversation.state["paused"]:
                return
            if followed_up:  # Rasa runs a FollowupAction instead of the rule's next step
                break
        if rule.resumes_form and conversation.active_loop == rule.resumes_form:
            self._form_step(conversation, rule.resumes_form, {})

    def _run(self, conversation: Conversation, action: str, depth: int = 0) -> bool:
        """Run ``action``; True when it handed over to a follow-up action."""
        if depth > MAX_ACTIONS_PER_TURN:
            log.error("too many chained actions in %s", conversation.state["sender_id"])
            return False
        conversation.state["latest_action_name"] = action
        conversation.add_event({"event": "action", "name": action})
        if action.startswith("utter_"):
            self._utter(conversation, action)
        elif action in self.domain.forms:
            self._form_step(conversation, action, {}, depth=depth)
        else:
            followup = self._custom_action(conversation, action)
            if followup:
                self._run(conversation, followup, depth + 1)
                return True
        return False

    def _custom_action(self, conversation: Conversation, action: str) -> str | None:
        """Run a rasa_sdk action through the ActionExecutor; apply its events; return a follow-up."""
        result = self._execute(conversation, action)
        for response in result.responses:
            self._say_response(conversation, response)
        followup = None
        for event in result.events:
            kind = event.get("event")
            if kind == "slot":
                conversation.set_slot(event["name"], event.get("value"))
            elif kind == "active_loop":
                conversation.set_loop(event.get("name"))
            elif kind == "followup":
                followup = event.get("name")
            elif kind == "pause":  # Rasa's ConversationPaused: a human takes over
                conversation.state["paused"] = True
                conversation.state[NO_HANDOFF] = False
            elif kind == "resume":  # ConversationResumed: the bot answers again
                conversation.state["resumed"] = True
        return followup

    def _execute(self, conversation: Conversation, action: str):
        call = {
            "next_action": action,
            "sender_id": conversation.state["sender_id"],
            "tracker": conversation.state,
            "domain": self._domain_dict,
            "version": "3.6.21",
        }
        scope = action_context.ActionContext(
            self.database,
            self.photo_dir,
            self.stores,
            self.clock,
            self.handoff_policy,
            jobs=self.jobs() if self.jobs else None,
            check_limits=self.check_limits,
            public_url=self.public_url,
        )
        return run_now(action_context.run_in(scope, self.executor.run(call)))

    def _form_step(self, conversation: Conversation, form: str, candidates: dict, depth=0) -> None:
        """Rasa's form loop: validate what came in, ask for the next slot or submit."""
        required = self.domain.form_slots(form)
        if conversation.active_loop != form:
            conversation.set_loop(form)
            candidates = self._slot_candidates(conversation, form) | candidates
            prefilled = {s: conversation.slots[s] for s in required if conversation.slots.get(s)}
            candidates = prefilled | candidates
        if candidates:
            self._set_slots(conversation, candidates)  # slot events last: slots_to_validate()
            if f"validate_{form}" in self.executor.actions:
                self._custom_action(conversation, f"validate_{form}")
        missing = next((slot for slot in required if not conversation.slots.get(slot)), None)
        if missing:
            conversation.set_slot("requested_slot", missing)
            self._utter(conversation, f"utter_ask_{missing}")
            return
        conversation.set_loop(None)
        conversation.set_slot("requested_slot", None)
        submit = self.rules.after(form)
        for action in submit.actions if submit else ():
            self._run(conversation, action, depth + 1)

    # -- slots ----------------------------------------------------------------------------
    def _slot_candidates(self, conversation: Conversation, form: str | None) -> dict:
        """Values the latest message offers, by the slots' mappings (Rasa's
        action_extract_slots): the first mapping that yields a value wins."""
        parse = conversation.state["latest_message"]
        intent = parse.get("intent", {}).get("name")
        requested = conversation.slots.get("requested_slot") if form else None
        found: dict = {}
        for slot, spec in self.domain.slots.items():
            for mapping in spec.get("mappings", []):
                if not _conditions_hold(mapping, form, requested):
                    continue
                # Rasa names a retrieval intent by its base: faq/grey_button is "faq" here.
                if (intent or "").split("/")[0] in mapping.get("not_intent", []):
                    continue
                value = _mapped_value(mapping, parse)
                if value is not None:
                    found[slot] = value
                    break
        return found

    def _set_slots(self, conversation: Conversation, values: dict) -> None:
        for name, value in values.items():
            conversation.set_slot(name, value)

    # -- saying things --------------------------------------------------------------------
    def _utter(self, conversation: Conversation, name: str) -> None:
        response = self.domain.response(name)
        if response is None:
            log.error("no response %s in the domain", name)
            return
        self._say_response(conversation, response)

    def _say_response(self, conversation: Conversation, response: dict) -> None:
        if response.get("response"):
            self._utter(conversation, response["response"])
            return
        text = response.get("text")
        conversation.say(
            exchange.bot_message(response, _fill(text, conversation.slots) if text else text)
        )


def run_now(coroutine):
    """Run a coroutine that never waits for I/O to its end, here, in a copy of the context.

    rasa_sdk's ``ActionExecutor.run`` is a coroutine, but our actions do their work
    synchronously (database, files): nothing in it ever suspends on a future, so a new event
    loop per action (``asyncio.run``, most of an action's cost) buys nothing. A bare ``yield``
    (``asyncio.sleep(0)``) is stepped over; waiting on a real future is refused — such an
    action belongs on an action server (``RASA_URL``).
    """
    context = contextvars.copy_context()  # what the action sets (its ActionContext) stays there
    try:
        while True:
            if context.run(coroutine.send, None) is not None:
                coroutine.close()
                raise RuntimeError("an action waited for I/O; the embedded engine cannot")
    except StopIteration as finished:
        return finished.value


def _parse_result(text: str, intent: str, metadata: dict, entities: list | None = None) -> dict:
    return {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "intent_ranking": [{"name": intent, "confidence": 1.0}],
        "entities": entities or [],
        "metadata": metadata,
    }


def _conditions_hold(mapping: dict, form: str | None, requested: str | None) -> bool:
    conditions = mapping.get("conditions")
    if not conditions:
        return True
    return any(
        c.get("active_loop") == form
        and ("requested_slot" not in c or c["requested_slot"] == requested)
        for c in conditions
    )


def _mapped_value(mapping: dict, parse: dict):
    kind = mapping.get("type")
    if kind == "from_entity":  # the last one, as Rasa takes it
        values = [e["value"] for e in parse.get("entities", []) if e["entity"] == mapping["entity"]]
        return values[-1] if values else None
    if kind == "from_text":
        text = parse.get("text") or ""
        return text if text and not text.startswith("/") else None
    if kind == "from_intent" and parse.get("intent", {}).get("name") == mapping.get("intent"):
        return mapping.get("value")
    return None


def _fill(text: str, slots: dict) -> str:
    """Rasa fills ``{slot}`` in responses; unknown names stay as they are."""
    return re.sub(r"\{(\w+)\}", lambda m: str(slots.get(m[1], m[0]) or ""), text)
