"""表单校验：姓名、身份证号、亲属关系、上门地址和电话 — Rasa FormValidationAction classes.

A rejected value is set back to None with a short reason; the form then asks again.
"""

from __future__ import annotations

import re

import opencc
from rasa_sdk import FormValidationAction

from nlu.entities import extract_entities, region_codes
from nlu.normalize import to_halfwidth
from services.home_visits import InvalidHomeVisitRequest, normalise_phone
from services.idcard import InvalidIdNumber, parse_id_number

_TO_SIMPLIFIED = opencc.OpenCC("t2s")
_NAME_PREFIX = re.compile(
    r"^(我叫|我是|我的名字是|名字是|名字叫|姓名是?|叫|她叫|他叫|老人叫)[:：\s]*"
)
_NAME = re.compile(r"^[\u4e00-\u9fff·]{2,15}$")
# Words of a sentence, not of a name: "我要认正" typed where the name was asked.
_NOT_A_NAME = re.compile(r"我要|认证|认正|怎么|咋|什么|吗|呢|为啥|不会|不知道|帮我|可以|时候")
_ID_CANDIDATE = re.compile(r"\d{17}[\dXx]|\d{15}")
_RELATION_WORDS = {"我妈": "妈妈", "妈": "妈妈", "我爸": "爸爸", "爸": "爸爸", "老妈": "妈妈"}


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


class IdentitySlots:
    """Name and ID checks shared by the identity form and the relative form."""

    def validate_person_name(self, value, dispatcher, tracker, domain):
        value = _read_in(tracker, "person_name") or value
        text = _NAME_PREFIX.sub("", re.sub(r"[\s，。,.!！]", "", str(value or "")))
        simplified = _TO_SIMPLIFIED.convert(text)
        # A province or city ("山西", "西安") is where the person lives, never their name.
        if (
            not _NAME.match(simplified)
            or _NOT_A_NAME.search(simplified)
            or simplified in region_codes()
        ):
            dispatcher.utter_message(text="请只输入身份证上的姓名，比如：王秀兰。")
            return {"person_name": None}
        typed = str(tracker.latest_message.get("text") or "")
        if simplified != text or (
            simplified not in typed and simplified in _TO_SIMPLIFIED.convert(typed)
        ):
            # 繁体字 (shaanxi-app-certification-guide.txt 六.4): say what we looked up instead.
            dispatcher.utter_message(text=f"已按简体字“{simplified}”查询。")
        return {"person_name": simplified}

    def validate_id_number(self, value, dispatcher, tracker, domain):
        value = _read_in(tracker, "id_number") or value
        text = re.sub(r"[\s\-－]", "", to_halfwidth(str(value or "")))
        found = _ID_CANDIDATE.search(text)
        try:
            card = parse_id_number(found.group(0) if found else text)
        except InvalidIdNumber as error:
            dispatcher.utter_message(text=f"{error}。".replace("。。", "。"))
            return {"id_number": None}
        return {"id_number": card.number}


class ValidateIdentityForm(IdentitySlots, FormValidationAction):
    def name(self) -> str:
        return "validate_identity_form"


class ValidateRelativeForm(IdentitySlots, FormValidationAction):
    def name(self) -> str:
        return "validate_relative_form"

    def validate_relation(self, value, dispatcher, tracker, domain):
        text = re.sub(r"[\s，。,.!！的]", "", str(value or ""))
        text = re.sub(r"^(帮|给|替|为)", "", text)
        text = _RELATION_WORDS.get(text, text)
        if not 1 <= len(text) <= 8 or re.search(r"\d", text):
            dispatcher.utter_message(text="请告诉我是您的哪位家人，比如：妈妈、父亲、岳母。")
            return {"relation": None}
        return {"relation": text}


class ValidateHomeVisitForm(FormValidationAction):
    def name(self) -> str:
        return "validate_home_visit_form"

    def validate_address(self, value, dispatcher, tracker, domain):
        text = str(value or "").strip()
        if not 5 <= len(text) <= 200:
            dispatcher.utter_message(text="地址要写清楚些：哪个区、哪条街、门牌号。")
            return {"address": None}
        return {"address": text}

    def validate_contact_phone(self, value, dispatcher, tracker, domain):
        # Rasa's DIET may mark only part of "0771-5887824" as a phone: then try what was typed.
        typed = str(tracker.latest_message.get("text") or "")
        problems = []
        for candidate in (value, typed):
            try:
                return {"contact_phone": normalise_phone(candidate)}
            except InvalidHomeVisitRequest as invalid:
                problems.append(invalid.message)
        dispatcher.utter_message(text=problems[0])
        return {"contact_phone": None}

    def validate_visit_reason(self, value, dispatcher, tracker, domain):
        text = str(value or "").strip()
        if not 2 <= len(text) <= 200:
            dispatcher.utter_message(text="请简单说一下原因，比如：卧床不起。")
            return {"visit_reason": None}
        return {"visit_reason": text}
