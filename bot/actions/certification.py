"""认证对话：本人认证、替亲友认证、选择认证对象和方式、查询认证状态。

The flows of nlu/data/rules.yml. Roster details are shown only for people whose name and ID
both matched in this account (PIPL: the registered name is never revealed on a mismatch).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import context
from bot.actions.common import (
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
from services import accounts, face_checks, identity
from services.models import Person
from services.policy import Assessment, assess, format_date, resumption

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
    after = resumption(person, today(), suspended_from=assessment.suspended_from)
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
    if assessment.next_due_date:
        parts.append(f"下次截止：{format_date(assessment.next_due_date)}")
    parts.append("养老金：暂停发放" if assessment.suspended else "养老金：正常发放")
    advice = "现在可以认证。" if assessment.may_certify else ""
    return f"{who}\n" + "\n".join(parts) + f"\n{advice}{assessment.message}"


class ActionBeginCertification(Action):
    def name(self) -> str:
        return "action_begin_certification"

    def run(self, dispatcher, tracker: Tracker, domain):
        with unit_of_work() as session:
            bound = accounts.bound_people(session, account_of(session, tracker))
            mine = [(p, r) for p, r in bound if r == "self"]
            if len(bound) == 1 and mine:
                person, relation = mine[0]
                return [SlotSet("verified_person", person.person_no)] + reply_for(
                    dispatcher, person, relation, "certify"
                )
            if bound:
                say(dispatcher, "为谁认证？请点一下：", people_buttons(bound, add_new=True))
                return [SlotSet("goal", "certify")]
        return [SlotSet("goal", "certify"), FollowupAction("identity_form")]


class ActionIdentitySubmit(Action):
    """After the identity form: check name + ID against the roster, bind, then carry on."""

    def name(self) -> str:
        return "action_identity_submit"

    def run(self, dispatcher, tracker: Tracker, domain):
        # "帮我爸查一下" filled the relation: the person is the user's father, not the user.
        return submit_identity(dispatcher, tracker, relation=tracker.get_slot("relation") or "self")


class ActionRelativeSubmit(Action):
    def name(self) -> str:
        return "action_relative_submit"

    def run(self, dispatcher, tracker: Tracker, domain):
        return submit_identity(dispatcher, tracker, relation=tracker.get_slot("relation") or "亲属")


# Each mismatch hint tells a little about a registered name: cap the guesses per conversation.
IDENTITY_CHECKS_PER_HOUR = 10


def submit_identity(dispatcher, tracker: Tracker, relation: str) -> list[dict[str, Any]]:
    name, id_number = tracker.get_slot("person_name"), tracker.get_slot("id_number")
    goal = tracker.get_slot("goal")
    limits = context.current().stores.rate_limits
    if not limits.allow(f"identity:{tracker.sender_id}", IDENTITY_CHECKS_PER_HOUR, 3600):
        say(
            dispatcher,
            f"核对次数太多了，请一小时后再试，或拨打{hotline(tracker)}请工作人员帮您查。",
            [HANDOFF_BUTTON],
        )
        return clear_flow()
    with unit_of_work() as session:
        check = identity.check_identity(session, name or "", id_number or "")
        if check.person is None or not check.matched:
            say(dispatcher, check.explain(), RETRY_BUTTONS)
            return clear_flow()
        account = account_of(session, tracker)
        try:
            accounts.bind_person(session, account, check.person, relation)
        except accounts.BindingLimitReached as full:
            say(
                dispatcher,
                _limit_text(len(full.bound)),
                people_buttons(full.bound, add_new=False) + [HANDOFF_BUTTON],
            )
            return clear_flow()
        events = [*clear_flow(), SlotSet("verified_person", check.person.person_no)]
        return events + reply_for(dispatcher, check.person, relation, goal)


class ActionBeginRelative(Action):
    def name(self) -> str:
        return "action_begin_relative"

    def run(self, dispatcher, tracker: Tracker, domain):
        with unit_of_work() as session:
            bound = accounts.bound_people(session, account_of(session, tracker))
            named = tracker.get_slot("person_name") or tracker.get_slot("id_number")
            if len(bound) >= accounts.bind_limit():
                known = [(p, r) for p, r in bound if p.id_number == tracker.get_slot("id_number")]
                if known:
                    person, relation = known[0]
                    events = [*clear_flow(), SlotSet("verified_person", person.person_no)]
                    return events + reply_for(dispatcher, person, relation, "certify")
                say(dispatcher, _limit_text(len(bound)), people_buttons(bound, add_new=False))
                return [*clear_flow(), SlotSet("goal", "certify")]
            if any(r != "self" for _p, r in bound) and not named:
                say(dispatcher, "为谁认证？请点一下：", people_buttons(bound, add_new=True))
                return [SlotSet("goal", "certify")]
        return [SlotSet("goal", "certify"), FollowupAction("relative_form")]


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
        if subject == "new":
            return [SlotSet("subject", None), FollowupAction("relative_form")]
        if subject == "self":
            return [SlotSet("subject", None), FollowupAction("identity_form")]
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
        with unit_of_work() as session:
            bound = accounts.bound_people(session, account_of(session, tracker))
            if len(bound) == 1:
                person, relation = bound[0]
                say(dispatcher, status_text(person, relation), MENU)
                return [SlotSet("verified_person", person.person_no)]
            if bound:
                say(dispatcher, "查询谁的认证情况？", people_buttons(bound, add_new=False))
                return [SlotSet("goal", "status")]
        say(dispatcher, "查询前，需要先核对一下身份。")
        return [SlotSet("goal", "status"), FollowupAction("identity_form")]


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
                    session, person, account_of(session, tracker), now=now()
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
