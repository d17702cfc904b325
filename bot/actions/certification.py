"""认证对话：本人认证、替亲友认证、选择认证对象和方式、查询认证状态。

The flows of nlu/data/rules.yml. Roster details are shown only for people whose name and ID
both matched in this account (PIPL: the registered name is never revealed on a mismatch).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import context
from bot.actions.common import (
    ACCOUNT_PEOPLE,
    FLOW_SLOTS,
    HANDOFF_BUTTON,
    MENU,
    account_of,
    faq_button,
    hotline,
    method_buttons,
    methods_for,
    now,
    people_buttons,
    say,
    subject_person,
    today,
    unit_of_work,
)
from bot.actions.forms import UNVERIFIED, UNVERIFIED_VISIT
from bot.actions.kinship import SELF, Said, match_bound, said_in, settled_relation
from bot.actions.probes import IdentityProbeGuard
from services import accounts, certification, face_checks, identity
from services.models import Person
from services.policy import Assessment, assess, format_date

RETRY_BUTTONS = [
    {"title": "重新输入", "payload": "/start_certification"},
    faq_button("查无此人怎么办", "person_not_found"),
    HANDOFF_BUTTON,
]


def clear_flow() -> list[dict[str, Any]]:
    return [SlotSet(slot, None) for slot in FLOW_SLOTS]


def _assessment_reply(person: Person, relation: str) -> tuple[str, list[dict]]:
    """One person's standing in one sentence, and the next steps as buttons."""
    assessment = assess(person, today())
    who = f"{person.name}（{'本人' if relation == 'self' else relation}）"
    if assessment.may_certify:
        text = f"{who}：{assessment.message}{_back_pay_note(person, assessment)}请选择认证方式："
        return text, method_buttons(person)
    buttons = [{"title": "常见问题", "payload": "/faq_menu"}, HANDOFF_BUTTON]
    return f"{who}：{assessment.message}", buttons


def _back_pay_note(person: Person, assessment: Assessment) -> str:
    if not assessment.suspended:
        return ""
    with unit_of_work() as session:  # from the suspension the payment history records
        after = certification.back_pay_on(session, person, today())
    if after and after.back_pay_months:
        return f"今天认证通过的话，可补发{after.back_pay_months}个月的养老金。"
    return ""


def reply_for(dispatcher: CollectingDispatcher, person: Person, relation: str, goal: str | None):
    """What to say once we know whom the conversation is about, by what the user wanted."""
    if goal == "status":
        say(dispatcher, status_text(person, relation), MENU)
        return []
    if goal == "photo":
        return [FollowupAction("action_manual_review")]
    if goal == "home_visit":
        return [FollowupAction("action_begin_home_visit")]
    text, buttons = _assessment_reply(person, relation)
    say(dispatcher, text, buttons)
    return []


def status_text(person: Person, relation: str) -> str:
    assessment = assess(person, today())
    who = f"{person.name}（{'本人' if relation == 'self' else relation}）"
    if assessment.reason in ("payment_stopped", "not_recipient"):
        return f"{who}：{assessment.message}"
    parts = []
    if assessment.last_certified_on:
        parts.append(f"上次认证：{format_date(assessment.last_certified_on)}")
    else:
        parts.append("还没有认证记录")
    if assessment.overdue and assessment.next_due_date:
        parts.append(f"认证截止：{format_date(assessment.next_due_date)}（已逾期）")
    elif assessment.window:
        parts.append(f"认证时间：{assessment.window.describe(today())}")
    parts.append("养老金：暂停发放" if assessment.suspended else "养老金：正常发放")
    advice = "现在可以认证。" if assessment.may_certify else ""
    return f"{who}\n" + "\n".join(parts) + f"\n{advice}{assessment.message}"


def said_slots(said: Said) -> list[dict[str, Any]]:
    """The form's slots as the latest message gives them: nothing left over from earlier
    messages (a relative mentioned in a question must not be bound later)."""
    return [
        SlotSet("person_name", said.name),
        SlotSet("id_number", said.id_number),
        SlotSet("relation", said.relation),
    ]


def open_for(dispatcher, tracker: Tracker, goal: str, *, relative: bool) -> list[dict[str, Any]]:
    """Whom a request is about, from the words typed or the account's bindings.

    A bound person the words point at (name, ID number, "我妈") is answered for at once; a new
    one goes to the relative form, which asks the relation when the words did not say it; with
    nobody bound and nobody named, the user identifies themself. Buttons only when it is open
    whom the user means.
    """
    said = said_in(tracker)
    with unit_of_work() as session:
        bound = accounts.bound_people(session, account_of(session, tracker))
        known = match_bound(bound, said) or _only_choice(bound, said, goal, relative)
        if known:
            person, relation = known
            events = [*clear_flow(), SlotSet("verified_person", person.person_no)]
            return events + reply_for(dispatcher, person, relation, goal)
        if bound and not said.anyone and (goal == "status" or not relative or _relatives(bound)):
            say(
                dispatcher,
                WHO_PROMPT.get(goal, WHO_PROMPT["certify"]),
                people_buttons(bound, add_new=goal != "status"),
            )
            return [*clear_flow(), SlotSet("goal", goal)]
        # Nobody bound and only a name / ID typed: whose they are is asked (the relative
        # form's first question offers 本人), never assumed.
        for_someone_else = said.relation != SELF and (
            relative
            or bool(bound)
            or bool(said.relation or said.ambiguous_relation)
            or _details_only(tracker)
        )
        if for_someone_else and len(bound) >= accounts.bind_limit():
            say(dispatcher, _limit_text(len(bound)), people_buttons(bound, add_new=False))
            return [*clear_flow(), SlotSet("goal", goal)]
    form = "relative_form" if for_someone_else else "identity_form"
    if goal == "status" and form == "identity_form":
        say(dispatcher, "查询前，需要先核对一下身份。")
    return [SlotSet("goal", goal), *said_slots(said), FollowupAction(form)]


WHO_PROMPT = {"status": "查询谁的认证情况？", "certify": "为谁认证？请点一下："}


def _relatives(bound: list[tuple[Person, str]]) -> bool:
    return any(relation != SELF for _person, relation in bound)


def _only_choice(bound, said: Said, goal: str, relative: bool):
    """Nothing named and one binding that fits the request: no need to ask whom."""
    if said.anyone or len(bound) != 1:
        return None
    _person, relation = bound[0]
    if goal == "status" or (relation == SELF and not relative):
        return bound[0]
    return None


class ActionBeginCertification(Action):
    def name(self) -> str:
        return "action_begin_certification"

    def run(self, dispatcher, tracker: Tracker, domain):
        return open_for(dispatcher, tracker, _pending_goal(tracker) or "certify", relative=False)


def _details_only(tracker: Tracker) -> bool:
    """The latest message only gave a name or an ID number: no request, no "我"."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    return intent == "inform" and not tracker.get_slot("goal")


def _pending_goal(tracker: Tracker) -> str | None:
    """A name and ID typed on their own answer the question asked last ("查询谁的…？")."""
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    goal = tracker.get_slot("goal")
    return goal if intent == "inform" and goal in ("status", "photo", "home_visit") else None


class ActionIdentitySubmit(Action):
    """After the identity form: check name + ID against the roster, bind, then carry on."""

    def name(self) -> str:
        return "action_identity_submit"

    def run(self, dispatcher, tracker: Tracker, domain):
        # "帮我爸查一下" filled the relation: the person is the user's father, not the user.
        return submit_identity(dispatcher, tracker, relation=tracker.get_slot("relation") or SELF)


class ActionRelativeSubmit(Action):
    def name(self) -> str:
        return "action_relative_submit"

    def run(self, dispatcher, tracker: Tracker, domain):
        relation = tracker.get_slot("relation")
        if not relation:  # the form requires it: never bind under a relation nobody said
            return [FollowupAction("relative_form")]
        return submit_identity(dispatcher, tracker, relation=relation)


def submit_identity(dispatcher, tracker: Tracker, relation: str) -> list[dict[str, Any]]:
    name, id_number = tracker.get_slot("person_name"), tracker.get_slot("id_number")
    goal = tracker.get_slot("goal")
    if goal == UNVERIFIED_VISIT:  # the user could not say whose visit: filed for staff
        return [*clear_flow(), FollowupAction("action_begin_home_visit")]
    with unit_of_work() as session:
        account = account_of(session, tracker)
        guard = IdentityProbeGuard(context.current(), account, id_number or "")
        refused = guard.refusal(session)
        if refused:
            say(dispatcher, _refusal_text(refused, tracker), [HANDOFF_BUTTON])
            return clear_flow()
        check = identity.check_identity(session, name or "", id_number or "")
        if check.person is None or not check.matched:
            coarse = check.outcome is identity.Outcome.name_mismatch and guard.record_miss()
            say(dispatcher, check.explain(coarse=coarse), RETRY_BUTTONS)
            return clear_flow()
        relation = settled_relation(relation, check.person)
        try:
            accounts.bind_person(session, account, check.person, relation)
        except accounts.BindingLimitReached as full:
            say(
                dispatcher,
                _limit_text(len(full.bound)),
                people_buttons(full.bound, add_new=False) + [HANDOFF_BUTTON],
            )
            return clear_flow()
        events = [
            *clear_flow(),
            SlotSet("verified_person", check.person.person_no),
            SlotSet(ACCOUNT_PEOPLE, None),  # read again: someone was bound, or a relation changed
        ]
        return events + reply_for(dispatcher, check.person, relation, goal)


def _refusal_text(limited: str, tracker: Tracker) -> str:
    if limited == "id_number":
        return (
            "这个身份证号今天核对不上的次数太多，已暂停核对，请明天再试，"
            f"或拨打{hotline(tracker)}请工作人员帮您查。"
        )
    return f"核对次数太多了，请一小时后再试，或拨打{hotline(tracker)}请工作人员帮您查。"


class ActionBeginRelative(Action):
    def name(self) -> str:
        return "action_begin_relative"

    def run(self, dispatcher, tracker: Tracker, domain):
        return open_for(dispatcher, tracker, "certify", relative=True)


def _limit_text(bound: int) -> str:
    # guangxi-2020-certification-notice.txt 附件2 一 第三步: 每个手机号最多可绑定4位参保人
    return (
        f"一个账号最多为{accounts.bind_limit()}位老人认证，您已绑定了{bound}位，不能再添加。"
        "可以为已绑定的人认证，或用家里另一个手机号办理。为谁认证？"
    )


class ActionChoosePerson(Action):
    """A tap on one of the '为谁认证？' buttons: an index into this account's bindings."""

    def name(self) -> str:
        return "action_choose_person"

    def run(self, dispatcher, tracker: Tracker, domain):
        subject = str(tracker.get_slot("subject") or "")
        goal = tracker.get_slot("goal") or "certify"
        fresh = [SlotSet("subject", None), *said_slots(Said())]
        if subject == "new":
            return fresh + [FollowupAction("relative_form")]
        if subject == "self":
            return fresh + [SlotSet("relation", SELF), FollowupAction("identity_form")]
        if subject == UNVERIFIED and goal.startswith("home_visit"):
            # 上门认证 without a name and ID: filed for staff to verify (see the submit action)
            leave_form = [ActiveLoop(None), SlotSet("requested_slot", None)]
            return (
                leave_form
                + fresh
                + [
                    SlotSet("goal", UNVERIFIED_VISIT),
                    FollowupAction("action_begin_home_visit"),
                ]
            )
        with unit_of_work() as session:
            bound = accounts.bound_people(session, account_of(session, tracker))
            if not subject.isdigit() or int(subject) >= len(bound):
                say(dispatcher, "没找到这位，请重新选一下：", people_buttons(bound, add_new=True))
                return [SlotSet("subject", None)]
            person, relation = bound[int(subject)]
            events = [SlotSet("subject", None), SlotSet("verified_person", person.person_no)]
            return events + reply_for(dispatcher, person, relation, goal)


class ActionCheckStatus(Action):
    def name(self) -> str:
        return "action_check_status"

    def run(self, dispatcher, tracker: Tracker, domain):
        return open_for(dispatcher, tracker, "status", relative=False)


class ActionChooseMethod(Action):
    """刷脸 / 拍照 / 上门: the three ways the seeds allow."""

    def name(self) -> str:
        return "action_choose_method"

    def run(self, dispatcher, tracker: Tracker, domain):
        method = tracker.get_slot("method")
        events = [SlotSet("method", None)]
        if method == "photo":
            return events + [FollowupAction("action_manual_review")]
        if method == "visit":
            return events + [FollowupAction("action_begin_home_visit")]
        with unit_of_work() as session:
            person = subject_person(session, tracker)
            if person is not None and "face" in methods_for(person):
                offer = face_checks.offer_check(
                    session,
                    person,
                    account_of(session, tracker),
                    now=now(),
                    public_url=context.current().public_url,
                )
                for message in offer.messages:
                    buttons = [{"title": b.title, "payload": b.payload} for b in message.buttons]
                    custom = {"link": message.link} if message.link else None
                    dispatcher.utter_message(text=message.text, buttons=buttons, custom=custom)
                return events
            app = "”或“".join(assess(person, today()).policy.apps) if person else "当地社保"
            others = method_buttons(person, besides="face") if person else []
        say(
            dispatcher,
            f"刷脸认证请打开“{app}”，点“我要认证”（给家人办点“替亲友认证”），输入姓名和身份证号，"
            "按提示眨眼、张嘴。光线要亮，背景要素，手机离脸约60厘米。",
            [faq_button("刷脸失败怎么办", "face_failed"), *others],
        )
        return events
