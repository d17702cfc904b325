"""丧亲、生气、不信任 — replies where the tone matters more than the flow.

A death in the family is answered with condolence and the seeds' next steps (faq/knowledge.yml
``report_death``), never with the fraud penalties; anger and distrust with a calm sentence, a
person one tap away and the phone number. Both end whatever form was waiting: nobody who has
just lost a parent should be asked for an ID number next.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet

from bot.actions.certification import clear_flow
from bot.actions.common import (
    HANDOFF_BUTTON,
    faq_button,
    hotline,
    say,
    subject_region,
)
from faq import knowledge


def _end_flow() -> list:
    return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("goal", None), *clear_flow()]


class ActionReportDeath(Action):
    """家人去世：节哀，告诉谁去停发，多发的钱怎么办，家属领抚恤金的认证。"""

    def name(self) -> str:
        return "action_report_death"

    def run(self, dispatcher, tracker: Tracker, domain):
        region, kept = subject_region(tracker)
        found = knowledge.answer("report_death", region)
        say(dispatcher, found.short)
        say(
            dispatcher,
            found.more or "需要的话，请点“转人工”，工作人员帮您办。",
            [HANDOFF_BUTTON, faq_button("家属领抚恤金怎么认证", "dependents")],
        )
        return [*kept, *_end_flow(), SlotSet("last_faq", "faq/report_death")]


class ActionAnswerComplaint(Action):
    """生气、骂人、不信任：先道歉、不争辩，给一个人和一个电话。"""

    def name(self) -> str:
        return "action_answer_complaint"

    def run(self, dispatcher, tracker: Tracker, domain):
        say(
            dispatcher,
            "给您添麻烦了，实在抱歉。您别着急，这事我们一定帮您办好："
            f"点“转人工”，工作人员来跟您说；或者直接拨打{hotline(tracker)}。"
            "正规的养老金认证不收任何费用，也不会问您要银行卡密码或验证码。",
            [HANDOFF_BUTTON, {"title": "常见问题", "payload": "/faq_menu"}],
        )
        return _end_flow()
