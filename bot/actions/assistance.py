"""常见问题、拍照认证、上门认证、转人工、没听懂、取消 — the actions around the main flows."""

from __future__ import annotations

import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActiveLoop,
    ConversationPaused,
    ConversationResumed,
    FollowupAction,
    SlotSet,
)

from bot.actions import context
from bot.actions.certification import UNVERIFIED, UNVERIFIED_VISIT, clear_flow, said_slots
from bot.actions.common import (
    HANDOFF_BUTTON,
    MENU,
    account_of,
    account_people,
    channel_and_user,
    faq_asked,
    faq_button,
    hotline,
    method_buttons,
    methods_for,
    people_buttons,
    region_code,
    say,
    subject_person,
    subject_region,
    today,
    unit_of_work,
)
from bot.actions.kinship import SELF, cannot_say, denies_self, latest_text, match_bound, said_in
from bot.uploads import UploadParking
from faq import knowledge
from services import accounts, handoffs, home_visits, photo_prechecks, photos
from services.idcard import mask_phone
from services.policy import assess
from services.regions import policy_for, provinces


def province_buttons() -> list[dict]:
    """One button per province the region data covers (services/data/regions.yaml)."""
    return [
        {"title": p.name, "payload": f'/choose_region{{"region":"{p.region_code}"}}'}
        for p in provinces()
    ]


FAQ_MENU = [
    "grey_button",
    "person_not_found",
    "face_failed",
    "cycle",
    "suspended",
    "overseas",
    "no_smartphone",
    "contact",
]
# What each task intent is called on a "did you mean" button.
INTENT_TITLES = {
    "start_certification": "我要认证",
    "certify_for_relative": "帮家人认证",
    "check_status": "查认证状态",
    "manual_review": "拍照认证",
    "request_home_visit": "上门认证",
    "human_handoff": "转人工",
    "report_death": "家人去世了怎么办",
    "greet": "打招呼",
    "thanks": "谢谢",
    "goodbye": "再见",
}


def intent_title(intent: str) -> str | None:
    if intent.startswith("faq/"):
        try:
            return knowledge.question(intent)
        except KeyError:
            return None
    return INTENT_TITLES.get(intent)


class ActionFaq(Action):
    """Answers a frequent question for the user's province; asks the province when it matters."""

    def name(self) -> str:
        return "action_faq"

    def run(self, dispatcher, tracker: Tracker, domain):
        faq = faq_asked(tracker) or tracker.get_slot("last_faq")
        if not faq:
            return [FollowupAction("action_faq_menu")]
        return answer_faq(dispatcher, tracker, faq)


PROVINCE_QUESTION = "各省规定不一样，您在哪个省领养老金？"


def asked_for_the_province(tracker: Tracker) -> bool:
    """The bot's last words were the province question (both engines log the bot's text)."""
    said = [e for e in tracker.events if e.get("event") == "bot"]
    return bool(said) and said[-1].get("text") == PROVINCE_QUESTION


def answer_faq(dispatcher, tracker: Tracker, faq: str):
    region, kept = subject_region(tracker)
    try:
        found = knowledge.answer(faq, region)
    except KeyError:
        return [*kept, FollowupAction("action_faq_menu")]
    buttons = []
    if found.more:
        buttons.append({"title": "详细说明", "payload": "/faq_more"})
    if found.needs_region:
        say(dispatcher, found.short)
        say(dispatcher, PROVINCE_QUESTION, buttons + province_buttons())
    else:
        say(
            dispatcher,
            found.short,
            buttons + [MENU[0], {"title": "其他问题", "payload": "/faq_menu"}],
        )
    return [*kept, SlotSet("last_faq", f"faq/{found.intent}")]


class ActionFaqMore(Action):
    def name(self) -> str:
        return "action_faq_more"

    def run(self, dispatcher, tracker: Tracker, domain):
        faq = tracker.get_slot("last_faq")
        if not faq:
            return [FollowupAction("action_faq_menu")]
        region, kept = subject_region(tracker)
        found = knowledge.answer(faq, region)
        say(
            dispatcher,
            found.more or found.short,
            [{"title": "其他问题", "payload": "/faq_menu"}, MENU[0]],
        )
        return kept


class ActionFaqMenu(Action):
    def name(self) -> str:
        return "action_faq_menu"

    def run(self, dispatcher, tracker: Tracker, domain):
        buttons = [faq_button(knowledge.question(n), n) for n in FAQ_MENU]
        say(dispatcher, "大家常问这些，点一下看答案；也可以直接打字问我。", buttons)
        return []


class ActionChooseRegion(Action):
    def name(self) -> str:
        return "action_choose_region"

    def run(self, dispatcher, tracker: Tracker, domain):
        """A province named, by button or in words ("俺是山西的"): the question waiting for it
        is answered; in a form, the form asks on; else the menu."""
        noted = region_noted(tracker) or "好的。"
        if tracker.active_loop.get("name"):
            say(dispatcher, noted)
            return []
        faq = tracker.get_slot("last_faq")
        if faq:
            return answer_faq(dispatcher, tracker, faq)
        say(dispatcher, f"{noted}您想办哪件事？", MENU)
        return []


def region_noted(tracker: Tracker) -> str:
    """The province known now, as “好的，记住了：您在山西。”; empty while none is."""
    code = region_code(tracker)
    return f"好的，记住了：您在{policy_for(code).province}。" if code else ""


class ActionTakeDetails(Action):
    """Details typed on their own (rules.yml "inform"): a name, an ID number, a relation or a
    phone start the identity check; a place alone is only the province — never a form."""

    def name(self) -> str:
        return "action_take_details"

    def run(self, dispatcher, tracker: Tracker, domain):
        entities = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
        if entities and entities <= {"region"}:
            return [FollowupAction("action_choose_region")]
        return [FollowupAction("action_begin_certification")]


# A question about the photo itself, not a request to send one.
_ASKS_PHOTO_RULES = re.compile(
    r"(讲究|要求|注意|规定|标准|怎么拍|咋拍|啥样|什么样|哪些|要带|带什么|带啥)"
)


class ActionManualReview(Action):
    """拍照认证: the photo rules (Jiangxi 二(三)2), then wait for the photo."""

    def name(self) -> str:
        return "action_manual_review"

    def run(self, dispatcher, tracker: Tracker, domain):
        if _ASKS_PHOTO_RULES.search(latest_text(tracker)):  # "相片有啥讲究": the rules first
            return answer_faq(dispatcher, tracker, "faq/photo_requirements")
        with unit_of_work() as session:
            person = subject_person(session, tracker)
            if person is None:
                say(dispatcher, "拍照认证前，先核对一下是给谁认证。")
                said = said_slots(said_in(tracker))  # nothing left over from earlier messages
                return [SlotSet("goal", "photo"), *said, FollowupAction("identity_form")]
            if "photo_review" not in methods_for(person):
                return _photo_not_accepted(dispatcher, person)
            rules = knowledge.answer("photo_requirements", person.region_code).short
        say(
            dispatcher,
            f"请给{person.name}拍一张照片直接发给我。{rules}",
            [{"title": "拍不了，申请上门", "payload": '/choose_method{"method":"visit"}'}],
        )
        return [SlotSet("goal", "photo"), SlotSet("verified_person", person.person_no)]


def _precheck_later(review_id: int) -> None:
    """The pre-checks (faces, OCR: seconds of work) run in a worker, after the commit."""
    queue = context.current().jobs
    if queue is not None:
        queue.enqueue(photo_prechecks.precheck_review, review_id)


def _photo_not_accepted(dispatcher, person) -> list:
    """Where photos are not reviewed, or the person may not certify now: say so, and what works."""
    buttons = method_buttons(person, besides="photo_review")
    if buttons:
        policy = policy_for(person.region_code, str(person.benefit_type))
        text = f"{policy.province}不收照片认证。{person.name}可以用下面的方式认证："
    else:
        text = f"{person.name}现在不需要拍照认证：{assess(person, today()).message}"
        buttons = [{"title": "认证查询", "payload": "/check_status"}, HANDOFF_BUTTON]
    say(dispatcher, text, buttons)
    return [SlotSet("goal", None)]


class ActionReceivePhoto(Action):
    def name(self) -> str:
        return "action_receive_photo"

    def run(self, dispatcher, tracker: Tracker, domain):
        token = (tracker.latest_message.get("metadata") or {}).get("photo_upload")
        data = UploadParking(context.current().photo_dir).claim(token)
        if data is None:
            say(dispatcher, "照片没有收到，请再发一次。", [HANDOFF_BUTTON])
            return []
        with unit_of_work() as session:
            person = subject_person(session, tracker)
            if person is None:
                say(
                    dispatcher,
                    "收到照片了。请先告诉我这是给谁认证：姓名和身份证号，核对后再发一次照片。",
                )
                said = said_slots(said_in(tracker))  # nothing left over from earlier messages
                return [SlotSet("goal", "photo"), *said, FollowupAction("identity_form")]
            if "photo_review" not in methods_for(person):
                return _photo_not_accepted(dispatcher, person)
            try:
                review = photos.store_review_photo(
                    session,
                    context.current().photo_dir,
                    data,
                    person=person,
                    account=account_of(session, tracker),
                    now=context.current().clock.utcnow(),
                )
            except photos.PhotoRejected as rejected:
                say(
                    dispatcher,
                    rejected.reason,
                    [
                        faq_button("照片要求", "photo_requirements"),
                        {"title": "申请上门认证", "payload": '/choose_method{"method":"visit"}'},
                    ],
                )
                return []
            number = review.id
        _precheck_later(number)
        say(
            dispatcher,
            f"照片收到了（受理号 P{number:06d}）。工作人员审核后会发消息告诉您结果，"
            f"一般3个工作日内。有疑问可拨打{hotline(tracker, person)}。",
            [{"title": "认证查询", "payload": "/check_status"}],
        )
        return [SlotSet("goal", None)]


UNVERIFIED_BUTTON = {
    "title": "说不清，先登记",
    "payload": f'/choose_person{{"subject":"{UNVERIFIED}"}}',
}


class ActionBeginHomeVisit(Action):
    """上门认证: first whose visit it is (a bound person, or name + ID); someone who cannot
    say is still registered, marked unverified for staff to call back (the console shows it)."""

    def name(self) -> str:
        return "action_begin_home_visit"

    def run(self, dispatcher, tracker: Tracker, domain):
        unverified = tracker.get_slot("goal") == UNVERIFIED_VISIT
        said = said_in(tracker)
        people, kept = account_people(tracker)
        if unverified or people:
            return kept + self._for_the_bound(dispatcher, tracker, unverified, said)
        return kept + _ask_whose_visit(dispatcher, said)

    def _for_the_bound(self, dispatcher, tracker: Tracker, unverified: bool, said) -> list:
        with unit_of_work() as session:
            bound = accounts.bound_people(session, account_of(session, tracker))
            known = None if unverified else _visit_person(session, tracker, bound, said)
            if known or unverified:
                return _start_visit_form(dispatcher, known)
            if bound:
                say(
                    dispatcher,
                    "上门认证是给谁办？请点一下：",
                    people_buttons(bound, add_new=True) + [UNVERIFIED_BUTTON],
                )
                return [SlotSet("goal", "home_visit")]
        return _ask_whose_visit(dispatcher, said)


def _ask_whose_visit(dispatcher, said) -> list:
    say(
        dispatcher,
        "老人行动不便的，可以申请工作人员上门认证。先核对一下是给谁办：需要老人身份证上的"
        "姓名和身份证号。说不清的话，点“说不清，先登记”，工作人员会打电话核实。",
        [UNVERIFIED_BUTTON],
    )
    form = "identity_form" if said.relation == SELF else "relative_form"
    return [SlotSet("goal", "home_visit"), *said_slots(said), FollowupAction(form)]


def _visit_person(session, tracker: Tracker, bound, said):
    """The person already known in this conversation, or the bound one the words name."""
    named = match_bound(bound, said)
    if named:
        return named[0]
    return None if said.anyone else subject_person(session, tracker)


def _start_visit_form(dispatcher, person) -> list:
    if person is None:
        whom = "先登记上门认证，工作人员会打电话核实老人的姓名和身份证号。"
        events = [SlotSet("goal", UNVERIFIED_VISIT), SlotSet("verified_person", None)]
    else:
        whom = f"给{person.name}申请上门认证。"
        events = [SlotSet("goal", "home_visit"), SlotSet("verified_person", person.person_no)]
    say(dispatcher, whom + "需要登记三样：地址、电话、原因。")
    return [*events, FollowupAction("home_visit_form")]


class ActionSubmitHomeVisit(Action):
    def name(self) -> str:
        return "action_submit_home_visit"

    def run(self, dispatcher, tracker: Tracker, domain):
        cleared = [SlotSet(s, None) for s in ("address", "contact_phone", "visit_reason", "goal")]
        unverified = tracker.get_slot("goal") == UNVERIFIED_VISIT
        with unit_of_work() as session:
            person = None if unverified else subject_person(session, tracker)
            try:
                visit = home_visits.request_home_visit(
                    session,
                    person=person,
                    account=account_of(session, tracker),
                    address=tracker.get_slot("address") or "",
                    contact_phone=tracker.get_slot("contact_phone") or "",
                    reason=tracker.get_slot("visit_reason") or "",
                    now=context.current().clock.utcnow(),
                )
            except home_visits.InvalidHomeVisitRequest as invalid:
                say(
                    dispatcher,
                    invalid.message,
                    [{"title": "重新申请", "payload": "/request_home_visit"}],
                )
                return cleared
            reference, phone = visit.reference, mask_phone(visit.contact_phone)
            number = hotline(tracker, person)
        check = "（还没有核实是给谁认证，工作人员会先打电话核实）" if person is None else ""
        say(
            dispatcher,
            f"上门认证已登记{check}，受理号 {reference}。工作人员会打电话 {phone} 和您约时间。"
            f"着急可拨打{number}。",
            [
                {"title": "认证查询", "payload": "/check_status"},
                {"title": "常见问题", "payload": "/faq_menu"},
            ],
        )
        return cleared


# Asking the bot for one of these while waiting for a person leaves the queue.
LEAVE_QUEUE_INTENTS = frozenset(
    {
        "start_certification",
        "certify_for_relative",
        "check_status",
        "manual_review",
        "request_home_visit",
        "faq_menu",
        "faq_more",
        "choose_region",
        "choose_method",
        "choose_person",
    }
)
TRANSCRIPT_EVENTS = 40  # tracker events searched for the conversation so far


def _transcript(tracker: Tracker) -> list[tuple[str, str]]:
    """The conversation before the handoff, for the staff user who takes it."""
    said = []
    for event in tracker.events[-TRANSCRIPT_EVENTS:]:
        kind = event.get("event")
        if kind in ("user", "bot") and event.get("text"):
            said.append((kind, str(event["text"])))
    return said


class ActionHandoff(Action):
    """转人工: into the console's queue, with the conversation so far; the user hears how long
    it may take, when staff are on duty and the phone number."""

    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher, tracker: Tracker, domain):
        channel, _user = channel_and_user(tracker)
        policy, now = context.current().handoff_policy, context.current().clock.utcnow()
        with unit_of_work() as session:
            person = subject_person(session, tracker)
            handoff = handoffs.request_handoff(
                session,
                tracker.sender_id,
                channel,
                tracker.latest_message.get("text"),
                now=now,
                region_code=region_code(tracker, person),
                transcript=_transcript(tracker),
                wait=policy.wait,
            )
            text = handoffs.waiting_message(policy, handoff, now, just_requested=True)
            handoffs.add_message(session, handoff, "bot", text, at=now)
        say(dispatcher, text)
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            *clear_flow(),
            ConversationPaused(),
        ]


class ActionHandoffWaiting(Action):
    """A message while the conversation is handed off (the engine runs this instead of the
    rules): with a staff user, keep it for them and stay silent; still waiting, say so — or
    let the user leave the queue by asking for something; timed out, say so and answer."""

    def name(self) -> str:
        return "action_handoff_waiting"

    def run(self, dispatcher, tracker: Tracker, domain):
        policy = context.current().handoff_policy
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        text = tracker.latest_message.get("text") or ""
        if intent == "send_photo":  # not kept: staff ask for photos through photo review
            text = "[发来一张照片]"
        now = context.current().clock.utcnow()
        with unit_of_work() as session:
            handoff = handoffs.current_handoff(session, tracker.sender_id, now)
            if handoff is None:  # released meanwhile
                return [ConversationResumed()]
            handoffs.add_message(session, handoff, "user", text, at=now)
            if handoff.taken_by is not None:
                return []  # a person is answering: the bot stays out of it
            if handoffs.timed_out(handoff, now, policy.wait):
                reply = handoffs.timeout_message(policy, handoff)
                handoffs.close_timed_out(session, handoff, now)
                say(dispatcher, reply)
                return [ConversationResumed()]
            if intent in LEAVE_QUEUE_INTENTS or intent.startswith("faq/"):
                handoffs.leave_queue(session, handoff, now=now)
                say(dispatcher, "好的，已为您退出人工排队，我来帮您办。")
                return [ConversationResumed()]
            reply = handoffs.waiting_message(policy, handoff, now)
            handoffs.add_message(session, handoff, "bot", reply, at=now)
        say(dispatcher, reply)
        return []


class ActionClarify(Action):
    """没听懂: offer the two likeliest meanings; the second time in a row, offer a person."""

    def name(self) -> str:
        return "action_clarify"

    def run(self, dispatcher, tracker: Tracker, domain):
        entities = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
        if entities & {"person_name", "id_number"}:
            # A bare name or ID number: the user is identifying themself.
            return [FollowupAction("action_begin_certification")]
        if "region" in entities and asked_for_the_province(tracker):
            # "在陕西宝鸡住着呢" after "您在哪个省": the answer to the question that waits.
            return [FollowupAction("action_choose_region")]
        if _misunderstandings_in_a_row(tracker.events) >= 2:
            say(
                dispatcher,
                f"不好意思，我还是没弄明白。您可以转人工，或者拨打{hotline(tracker)}。",
                [HANDOFF_BUTTON, {"title": "常见问题", "payload": "/faq_menu"}],
            )
            return []
        ranking = tracker.latest_message.get("intent_ranking") or []
        guesses = [r["name"] for r in ranking if intent_title(r["name"])][:2]
        buttons = [
            faq_button(intent_title(g), g.partition("/")[2])
            if g.startswith("faq/")
            else {"title": intent_title(g), "payload": f"/{g}"}
            for g in guesses
        ]
        noted = region_noted(tracker) if "region" in entities else ""
        say(
            dispatcher,
            f"{noted}我没太听懂，您是想问：",
            buttons + [{"title": "都不是", "payload": "/faq_menu"}],
        )
        return []


def _misunderstandings_in_a_row(events: list[dict]) -> int:
    count = 0
    for event in reversed(events):
        if event.get("event") != "user":
            continue
        if (event.get("parse_data") or {}).get("intent", {}).get("name") != "nlu_fallback":
            break
        count += 1
    return count


# A refusal in so many words; anything longer typed at a free-text question is an answer
# that merely sounds negative ("走不了路", "不能下床").
_REFUSAL = re.compile(
    r"^(不用了?|算了|不要了?|取消|不办了|不需要了?|不弄了|不了|没事了?|不|no)[。！!，,.]*$"
)
FREE_TEXT_ANSWERS = {"home_visit_form": ("visit_reason",)}


class ActionCancel(Action):
    def name(self) -> str:
        return "action_cancel"

    def run(self, dispatcher, tracker: Tracker, domain):
        requested = tracker.get_slot("requested_slot")
        text = latest_text(tracker).strip()
        free_text = requested in FREE_TEXT_ANSWERS.get(tracker.active_loop_name, ())
        if free_text and len(text) >= 2 and not _REFUSAL.match(text):
            return [SlotSet(requested, text), FollowupAction(tracker.active_loop_name)]
        if str(tracker.get_slot("goal") or "").startswith("home_visit") and cannot_say(tracker):
            # "不知道身份证号" during a home visit: filed unverified, not cancelled
            leave = [ActiveLoop(None), SlotSet("requested_slot", None), *clear_flow()]
            return leave + [
                SlotSet("goal", UNVERIFIED_VISIT),
                FollowupAction("action_begin_home_visit"),
            ]
        if denies_self(tracker):
            # "不是我，是给我妈认证": not a refusal — the same request, for the relative named.
            leave = [ActiveLoop(None), SlotSet("requested_slot", None), *clear_flow()]
            return leave + [FollowupAction("action_begin_relative")]
        # The rules say utter_cancelled next (rules.yml "stop the … form").
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet("goal", None),
            *clear_flow(),
        ]
