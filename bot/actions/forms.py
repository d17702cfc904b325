"""表单校验：姓名、身份证号、亲属关系、上门地址和电话 — Rasa FormValidationAction classes.

A rejected value is set back to None with a short reason; the form then asks again.
"""

from __future__ import annotations

import re

import opencc
from rasa_sdk import FormValidationAction

from bot.actions.kinship import PENDING_BY_GENDER, SELF, cannot_say, read_said
from nlu.entities import extract_entities, region_codes
from nlu.normalize import to_halfwidth
from services.home_visits import InvalidHomeVisitRequest, normalise_phone
from services.idcard import InvalidIdNumber, mask_id_number, mask_phone, parse_id_number

# 上门认证 for someone the user cannot name: the button's subject, and the goal it sets
UNVERIFIED = "unverified"
UNVERIFIED_VISIT = "home_visit_unverified"
_TO_SIMPLIFIED = opencc.OpenCC("t2s")
_NAME_PREFIX = re.compile(
    r"^(我叫|我是|我的名字是|名字是|名字叫|姓名是?|叫|她叫|他叫|老人叫)[:：\s]*"
)
# 2–6 characters; longer only as a minority name with its middle dot (买买提·艾力).
_NAME = re.compile(r"^(?:[\u4e00-\u9fff]{2,6}|[\u4e00-\u9fff]+(?:·[\u4e00-\u9fff]+)+)$")
# Words of a sentence, not of a name: "我要认正" typed where the name was asked.
_NOT_A_NAME = re.compile(
    r"我要|认证|认正|怎么|咋|什么|吗|呢|为啥|不会|知道|记得|记不|帮我|可以|时候|身份证|号码|多少"
)
# A question typed where an answer was asked ("写谁的名字啊", "号码在哪看"): answered, then asked again.
_QUESTION = re.compile(r"[?？]|吗|呢|啊|呀|么|谁|什么|啥|哪|怎么|咋|多少|几位|是不是|要不要|能不能")
_ABOUT_THE_NUMBER = re.compile(r"身份证号|号码|几位|多少位")
_PHONE_WORDS = re.compile(r"1[3-9]\d{9}|0\d{2,3}[-－]?\d{7,8}|电话|手机|号码|联系|[:：，,。\s]")
_DIGIT_RUN = re.compile(r"\d[\dXx]*")
_MOBILE = re.compile(r"1[3-9]\d{9}")
NAME_HELP = "写要认证的那位老人身份证上的姓名：给自己认证就写您自己的，给家人认证就写家人的。"
RELATION_HELP = "请告诉我这位老人是您的什么人，比如：妈妈、父亲、岳母；给自己认证请回复“本人”。"
ADDRESS_HELP = "地址要写清楚些：哪个区、哪条街、门牌号。"
REASON_HELP = "请简单说一下老人为什么不能自己认证，比如：卧床不起。"
_ONLY_NUMBER = re.compile(r"[\d\s\-+()（）转#]+")
ID_HELP = "身份证号码印在身份证正面最下面一行，一共18位，最后一位可能是X。"


def _read_in(tracker, kind: str) -> str | None:
    """The name or ID number the project's own extractor reads in the latest message.

    Rasa's DIET may cut a name or an ID number differently from the rules of nlu/entities.py
    ("王秀蓝 身"); reading them here, where both engines' answers pass, makes both agree.
    """
    text = str(tracker.latest_message.get("text") or "")
    if text.startswith("/"):
        return None
    found = [e["value"] for e in extract_entities(text) if e["entity"] == kind]
    return found[-1] if found else None


def _typed(tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def _earlier_slot_value(tracker, slot: str):
    """What ``slot`` held before the latest user message (slot events before it)."""
    events = list(tracker.events)
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    for event in reversed(events[:last_user]):
        if event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def read_id_number(text: str) -> tuple[str | None, str | None]:
    """(the ID number in ``text``, None) or (None, exactly what is wrong with it); (None, None)
    when ``text`` holds no digits at all.

    The longest run of digits is the number meant: 17 digits are "您输入了17位", not the first
    15 of them read as an old card's number.
    """
    compact = re.sub(r"[\s\-－]", "", to_halfwidth(text))
    runs = _DIGIT_RUN.findall(compact)
    if not runs:
        return None, None
    number = max(runs, key=len)
    if _MOBILE.fullmatch(number):
        return None, "这是手机号码，这里要填身份证号码（18位）。"
    try:
        return parse_id_number(number).number, None
    except InvalidIdNumber as error:
        return None, f"{error}。".replace("。。", "。")


def changed_number(tracker, slot: str, new: str) -> str | None:
    """The number ``slot`` already held when the latest message brought another one."""
    earlier = _earlier_slot_value(tracker, slot)
    return earlier if earlier and earlier != new else None


def _unverified_visit(tracker, slots: tuple[str, ...]) -> dict | None:
    """上门认证 for someone the user cannot name ("说不清", "不知道身份证号"): the form is
    closed with placeholders and the visit filed unverified (the submit actions see the goal)."""
    if not str(tracker.get_slot("goal") or "").startswith("home_visit") or not cannot_say(tracker):
        return None
    return dict.fromkeys(slots, UNVERIFIED) | {"goal": UNVERIFIED_VISIT}


class IdentitySlots:
    """Name and ID checks shared by the identity form and the relative form."""

    required = ("person_name", "id_number")

    def validate_person_name(self, value, dispatcher, tracker, domain):
        if unverified := _unverified_visit(tracker, self.required):
            return unverified
        typed = _typed(tracker)
        # the project's own reading, also beside a mistyped ID number (DIET may cut it short)
        read = read_said(typed).name if not typed.startswith("/") else None
        value = read or value
        text = _NAME_PREFIX.sub("", re.sub(r"[\s，。,.!！]", "", str(value or "")))
        simplified = _TO_SIMPLIFIED.convert(text)
        question = _QUESTION.search(typed) and not read
        # A province or city ("山西", "西安") is where the person lives, never their name.
        place = simplified in region_codes()
        if question or place or not _NAME.match(simplified) or _NOT_A_NAME.search(simplified):
            if _QUESTION.search(typed):
                about_number = _ABOUT_THE_NUMBER.search(typed)
                dispatcher.utter_message(
                    text=ID_HELP + "先告诉我姓名。" if about_number else NAME_HELP
                )
            elif re.search(r"\d", typed) and not re.search(r"[\u4e00-\u9fff]", typed):
                dispatcher.utter_message(text="这里先要姓名，不是号码。" + NAME_HELP)
            else:
                dispatcher.utter_message(text="请只输入身份证上的姓名，比如：王秀兰。")
            return {"person_name": None}
        if simplified != text or (
            simplified not in typed and simplified in _TO_SIMPLIFIED.convert(typed)
        ):
            # 繁体字 (shaanxi-app-certification-guide.txt 六.4): say what we looked up instead.
            dispatcher.utter_message(text=f"已按简体字“{simplified}”查询。")
        if not tracker.get_slot("id_number") and (problem := read_id_number(typed)[1]):
            # "王秀兰 61010219520315002": the name is taken; say what is wrong with the number.
            dispatcher.utter_message(text=problem)
        return {"person_name": simplified}

    def validate_id_number(self, value, dispatcher, tracker, domain):
        if unverified := _unverified_visit(tracker, self.required):
            return unverified
        typed = _typed(tracker)
        value = _read_in(tracker, "id_number") or value
        text = str(value or "")
        if not re.search(r"\d", text):
            help_text = ID_HELP if _QUESTION.search(typed) else "这里要填身份证号码。" + ID_HELP
            dispatcher.utter_message(text=help_text)
            return {"id_number": None}
        number, problem = read_id_number(text)
        if problem:
            dispatcher.utter_message(text=problem)
            return {"id_number": None}
        if earlier := changed_number(tracker, "id_number", number):
            dispatcher.utter_message(
                text=f"您刚才给的身份证号是{mask_id_number(earlier)}，这次又发来"
                f"{mask_id_number(number)}。请再发一次要用的那个号码。"
            )
            return {"id_number": None}
        return {"id_number": number}


class ValidateIdentityForm(IdentitySlots, FormValidationAction):
    def name(self) -> str:
        return "validate_identity_form"


class ValidateRelativeForm(IdentitySlots, FormValidationAction):
    def name(self) -> str:
        return "validate_relative_form"

    required = ("relation", "person_name", "id_number")

    def validate_relation(self, value, dispatcher, tracker, domain):
        if unverified := _unverified_visit(tracker, self.required):
            return unverified
        value = str(value or "")
        if value == SELF or value in PENDING_BY_GENDER:  # read by an action from the same words
            return {"relation": value}
        typed = _typed(tracker)
        said = read_said(typed if typed and not typed.startswith("/") else value)
        if said.ambiguous_relation:
            who = said.name or "这位老人"
            dispatcher.utter_message(
                text=f"{who}是您的奶奶、爷爷、外婆还是外公？请回复一个，比如：外婆。"
            )
            return {"relation": None}
        relation = said.relation
        if relation is None and not _QUESTION.search(typed):
            relation = _relation_word(value, said)
        if relation is None:
            if not (said.name or said.id_number):  # an ID typed here is kept: only ask again
                dispatcher.utter_message(text=RELATION_HELP)
            return {"relation": None}
        slots = {"relation": relation}
        if said.name and not tracker.get_slot("person_name"):
            slots["person_name"] = said.name  # "我是王秀兰的女儿": the name came too
        return slots


def _relation_word(value: str, said) -> str | None:
    """A family word the extractor does not know (干妈, 表姐), typed on its own."""
    word = re.sub(r"[\s，。,.!！的]", "", value)
    word = re.sub(r"^(帮|给|替|为|是)?(我的|我|俺)?", "", word)
    if not re.fullmatch(r"[\u4e00-\u9fff]{1,4}", word) or word == said.name:
        return None
    return None if _NOT_A_NAME.search(word) else word


class ValidateHomeVisitForm(FormValidationAction):
    def name(self) -> str:
        return "validate_home_visit_form"

    def validate_address(self, value, dispatcher, tracker, domain):
        text = str(value or "").strip()
        if _ONLY_NUMBER.fullmatch(text):
            dispatcher.utter_message(text="这是一个号码，不是地址。" + ADDRESS_HELP)
            return {"address": None}
        if not 5 <= len(text) <= 200 or (_QUESTION.search(text) and not re.search(r"\d", text)):
            dispatcher.utter_message(text=ADDRESS_HELP)
            return {"address": None}
        return {"address": text}

    def validate_contact_phone(self, value, dispatcher, tracker, domain):
        # Rasa's DIET may mark only part of "0771-5887824" as a phone: then try what was typed.
        problems = []
        for candidate in (value, _typed(tracker)):
            try:
                phone = normalise_phone(candidate)
            except InvalidHomeVisitRequest as invalid:
                problems.append(invalid.message)
                continue
            if earlier := changed_number(tracker, "contact_phone", phone):
                dispatcher.utter_message(
                    text=f"您刚才留的电话是{mask_phone(earlier)}，这次又发来{mask_phone(phone)}。"
                    "请再发一次要留的那个号码。"
                )
                return {"contact_phone": None}
            return {"contact_phone": phone}
        dispatcher.utter_message(text=problems[0])
        return {"contact_phone": None}

    def validate_visit_reason(self, value, dispatcher, tracker, domain):
        text = str(value or "").strip()
        if _MOBILE.search(text) or _ONLY_NUMBER.fullmatch(text):
            # "她瘫痪了 电话138…": the reason is the words beside the number, if any
            text = _PHONE_WORDS.sub("", text)
        if len(text) < 2 or _ONLY_NUMBER.fullmatch(text):
            dispatcher.utter_message(text="这是电话号码，不是原因。" + REASON_HELP)
            return {"visit_reason": None}
        if not 2 <= len(text) <= 200:
            dispatcher.utter_message(text=REASON_HELP)
            return {"visit_reason": None}
        return {"visit_reason": text}
