"""Certification policy engine: each province's rules against its seed, then properties over dates.

Seeds live in docs/regulations/; test names cite the seed and section they check.
"""

from __future__ import annotations

import calendar
import datetime as dt
import textwrap

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.models import BenefitType, PaymentStatus, Person
from services.policy import (
    PersonFacts,
    Reason,
    add_months,
    assess,
    compare_identity,
    format_date,
    resumption,
)
from services.regions import RegionDataError, load_table, policy_for, region_keys

D = dt.date
SEEDS = {
    "guangxi-2020-certification-notice.txt",
    "jiangxi-xunwu-2020-rural-pension-certification.txt",
    "shaanxi-app-certification-guide.txt",
    "shaanxi-xincheng-2021-app-certification-notice.txt",
    "shanxi-2018-certification-rules.txt",
}
XINCHENG, SHANXI, XUNWU, GUANGXI = "610102", "140105", "360734", "450103"
BORN = D(1950, 5, 10)


def person(region, benefit="enterprise", last=None, *, born=BORN, status="normal"):
    return PersonFacts(
        region_code=region,
        benefit_type=benefit,
        birth_date=born,
        status=status,
        last_certified_on=last,
        name="赵秀兰",
        id_number="610102195005101226",
    )


# --- 陕西 Shaanxi ----------------------------------------------------------------------


def test_shaanxi_guide_faq7_2_no_second_certification_in_the_same_calendar_year():
    """shaanxi-app-certification-guide.txt 六.7(2): 当年度认证成功即不能再次认证."""
    retiree = person(XINCHENG, "institution", D(2026, 3, 5))
    for today in (D(2026, 3, 5), D(2026, 9, 1), D(2026, 12, 31)):
        answer = assess(retiree, today)
        assert not answer.may_certify
        assert answer.reason == Reason.already_certified
        assert answer.last_certified_on == D(2026, 3, 5)
        assert answer.next_due_date == D(2027, 3, 5)
        # the window's both ends: the app refuses until 1 January (issue 9 item 8)
        assert (
            "您已于2026年3月5日完成本年度认证，下次请在2027年1月1日至2027年3月5日之间认证"
            in answer.message
        )


def test_shaanxi_guide_faq7_2_a_new_calendar_year_opens_the_next_certification():
    """shaanxi-app-certification-guide.txt 六.7(2): 一个自然年度仅需要认证一次 — 1 January reopens."""
    answer = assess(person(XINCHENG, "institution", D(2026, 3, 5)), D(2027, 1, 1))
    assert answer.may_certify and answer.reason is None
    assert not answer.overdue and not answer.suspended
    assert "2027年3月5日前" in answer.message and "“陕西养老保险”" in answer.message


def test_shaanxi_xincheng_2_2_no_more_than_12_months_since_the_last_certification():
    """shaanxi-xincheng-2021-app-certification-notice.txt 二(二) 递延认证, 三.2 停发."""
    retiree = person(XINCHENG, "institution", D(2026, 3, 5))
    on_due = assess(retiree, D(2027, 3, 5))
    assert on_due.may_certify and not on_due.overdue and not on_due.suspended
    late = assess(retiree, D(2027, 3, 6))
    assert late.may_certify and late.overdue and not late.suspended  # paid through March
    assert "如果不认证，养老金将从2027年4月起暂停发放" in late.message
    april = assess(retiree, D(2027, 4, 1))
    assert april.suspended and april.suspended_from == D(2027, 4, 1)
    assert "养老金从2027年4月起暂停发放" in april.message
    assert april.message.endswith("请尽快通过“陕西养老保险”完成认证。")


def test_shaanxi_xincheng_3_2_first_cycle_missed_suspends_from_june_2021_and_back_pays_from_june():
    """shaanxi-xincheng-2021-app-certification-notice.txt 三.2: 第一个认证周期没有认证的，
    从2021年6月份起暂停发放；通过认证后从停发之月起补发."""
    never = person(XINCHENG, "institution", None)
    during = assess(never, D(2021, 5, 1))
    assert during.may_certify and during.next_due_date == D(2021, 5, 31)
    assert "2021年5月31日前" in during.message and "首次认证" in during.message
    after = assess(never, D(2021, 6, 1))
    assert after.overdue and after.suspended_from == D(2021, 6, 1)
    back = resumption(never, D(2021, 8, 15))
    assert back is not None
    assert (back.resume_on, back.back_pay_from, back.back_pay_months) == (
        D(2021, 8, 15),
        D(2021, 6, 1),
        3,
    )


def test_shaanxi_xincheng_2_1_first_cycle_is_for_institution_retirees_only():
    """shaanxi-xincheng-2021-app-certification-notice.txt 二(一): the notice addresses
    机关事业单位退休人员; others never certified are simply due now, not suspended."""
    answer = assess(person(XINCHENG, "enterprise", None), D(2021, 7, 1))
    assert answer.may_certify and not answer.overdue and not answer.suspended
    assert answer.next_due_date == D(2021, 7, 1)
    assert "还没有认证记录，请尽快" in answer.message


def test_shaanxi_xincheng_3_2_after_the_2021_campaign_never_certified_means_due_now():
    """shaanxi-xincheng-2021-app-certification-notice.txt 三.2 is the 2021 campaign; someone
    with no record years later is treated as new (the roster says if they were suspended)."""
    answer = assess(person(XINCHENG, "institution", None), D(2026, 4, 1))
    assert answer.may_certify and not answer.overdue and not answer.suspended
    assert resumption(person(XINCHENG, "institution", None), D(2026, 4, 1)) is None


def test_shaanxi_guide_faq7_1_not_a_recipient_here():
    """shaanxi-app-certification-guide.txt 六.7(1) and 六.4 查无此人."""
    answer = assess(None, D(2026, 4, 1), region_code=XINCHENG)
    assert not answer.may_certify and answer.reason == Reason.not_recipient
    assert answer.window is None
    assert "退休时所在单位" in answer.message and "12333" in answer.message


def test_shaanxi_guide_faq7_3_name_differs_names_the_position_not_the_registered_name():
    """shaanxi-app-certification-guide.txt 六.7(3): 业务系统的姓名/身份证号与身份证上的不一致."""
    retiree = person(XINCHENG, "institution", D(2026, 3, 5))
    answer = assess(retiree, D(2026, 4, 1), claimed_name="赵绣兰", claimed_id="610102195005101226")
    assert answer.reason == Reason.identity_mismatch and not answer.may_certify
    assert answer.mismatch.name_positions == (2,) and not answer.mismatch.id_differs
    assert "姓名第2个字" in answer.message
    assert "秀" not in answer.message and "赵秀兰" not in answer.message
    # nothing about the roster person's certification leaks to a mismatched caller
    assert answer.window is None and answer.last_certified_on is None
    assert "2026年3月5日" not in answer.message


def test_shaanxi_guide_faq7_3_id_number_differs_at_the_check_digit():
    """shaanxi-app-certification-guide.txt 六.7(3); full-width digits and a lower-case x
    typed by the caller are the same ID (六.4 注: input method trouble)."""
    retiree = PersonFacts(XINCHENG, "institution", name="钱立", id_number="61010219500510122X")
    assert compare_identity(retiree, "钱 立", "６１０１０２１９５００５１０１２２x") is None
    answer = assess(retiree, D(2026, 4, 1), claimed_name="钱立", claimed_id="610102195005101221")
    assert answer.mismatch.id_positions == (18,) and not answer.mismatch.name_differs
    assert "身份证号第18位" in answer.message


def test_region_610102_xincheng_inherits_shaanxi_rules():
    """shaanxi-xincheng-2021-app-certification-notice.txt: Xincheng district follows 61."""
    district, province = policy_for(XINCHENG, "institution"), policy_for("610103", "institution")
    assert district.code_prefix == "610102" and province.code_prefix == "61"
    assert district.district == "西安市新城区"
    assert district.cycle == province.cycle and district.cycle.once_per_calendar_year


# --- 山西 Shanxi -----------------------------------------------------------------------


def test_shanxi_1_4_certification_opens_three_months_before_the_due_date():
    """shanxi-2018-certification-rules.txt 一(四): 提前3个月提醒; 距上次认证不超过12个月."""
    retiree = person(SHANXI, "enterprise", D(2026, 3, 5))
    early = assess(retiree, D(2026, 12, 4))
    assert early.reason == Reason.already_certified
    assert "下次请在2026年12月5日至2027年3月5日之间认证" in early.message
    opened = assess(retiree, D(2026, 12, 5))
    assert opened.may_certify and "2027年3月5日前" in opened.message
    assert "“民生山西”" in opened.message


def test_shanxi_1_4_more_than_12_months_is_overdue():
    """shanxi-2018-certification-rules.txt 一(四) 不得超过12个月."""
    answer = assess(person(SHANXI, "enterprise", D(2025, 1, 31)), D(2026, 2, 1))
    assert answer.overdue and answer.suspended_from == D(2026, 2, 1)


def test_shanxi_2_2_death_or_prison_record_stops_payment_and_certification():
    """shanxi-2018-certification-rules.txt 二(二): 死亡、服刑信息 → 停发."""
    answer = assess(person(SHANXI, "enterprise", D(2026, 3, 5), status="stopped"), D(2026, 4, 1))
    assert not answer.may_certify and answer.reason == Reason.payment_stopped
    assert "停止发放" in answer.message and "参保单位" in answer.message
    assert "12333" in answer.message
    with pytest.raises(ValueError):
        resumption(person(SHANXI, status="stopped"), D(2026, 4, 1))


def test_shanxi_3_1_4_roster_suspension_resumes_but_back_pay_needs_the_suspension_month():
    """shanxi-2018-certification-rules.txt 三(一)4 暂停发放 (unit's decision, not a date rule)
    and 二(二) 恢复或补发."""
    suspended = person(SHANXI, "enterprise", D(2026, 3, 5), status="suspended")
    answer = assess(suspended, D(2027, 1, 10))
    assert answer.may_certify and answer.suspended and not answer.overdue
    assert answer.suspended_from is None
    assert "暂停发放" in answer.message and "恢复发放并补发" in answer.message
    unknown = resumption(suspended, D(2027, 1, 10))
    assert unknown is not None and unknown.back_pay_months is None
    known = resumption(suspended, D(2027, 1, 10), suspended_from=D(2026, 11, 20))
    assert (known.back_pay_from, known.back_pay_months) == (D(2026, 11, 1), 3)


# --- 江西 Jiangxi ----------------------------------------------------------------------


def test_jiangxi_xunwu_2_2_january_to_june_each_calendar_year():
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(二): 自然年度1月至6月为一个认证周期."""
    villager = person(XUNWU, "resident", D(2025, 5, 10))
    for today in (D(2026, 1, 1), D(2026, 6, 30)):
        answer = assess(villager, today)
        assert answer.may_certify and not answer.overdue
        assert (answer.window.opens_on, answer.window.due_date) == (D(2026, 1, 1), D(2026, 6, 30))
        assert "2026年6月30日前" in answer.message and "“江西人社”或“赣服通”" in answer.message


def test_jiangxi_xunwu_2_4_july_suspension_for_those_not_certified_this_year():
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(四): 每年7月暂停发放."""
    answer = assess(person(XUNWU, "resident", D(2025, 5, 10)), D(2026, 7, 1))
    assert answer.overdue and answer.suspended
    assert answer.suspended_from == D(2026, 7, 1)
    assert answer.may_certify  # 补办
    assert "2026年7月起暂停发放" in answer.message


def test_jiangxi_xunwu_2_4_late_certification_resumes_and_back_pays_the_suspended_months():
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(四): 补办后恢复发放并补发暂停期间."""
    villager = person(XUNWU, "resident", D(2025, 5, 10))
    back = resumption(villager, D(2026, 9, 10))
    assert (back.resume_on, back.back_pay_from, back.back_pay_months) == (
        D(2026, 9, 10),
        D(2026, 7, 1),
        3,
    )
    # the late certification counts for 2026: nothing more until next January
    after = assess(person(XUNWU, "resident", D(2026, 9, 10)), D(2026, 10, 1))
    assert after.reason == Reason.already_certified and not after.suspended
    assert "下次请在2027年1月1日至2027年6月30日之间认证" in after.message


def test_jiangxi_xunwu_2_2_first_certification_april_to_june_2020():
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(二): 首次认证时间为2020年4月至6月."""
    never = person(XUNWU, "resident", None)
    answer = assess(never, D(2020, 4, 15))
    assert (answer.window.opens_on, answer.window.due_date) == (D(2020, 4, 1), D(2020, 6, 30))
    assert assess(never, D(2020, 7, 1)).suspended_from == D(2020, 7, 1)


def test_jiangxi_xunwu_2_2_never_certified_in_a_later_year_gets_this_years_window():
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(二): from 2021 each January–June."""
    never = person(XUNWU, "resident", None)
    spring = assess(never, D(2026, 3, 1))
    assert spring.may_certify and spring.next_due_date == D(2026, 6, 30)
    assert "您还没有认证记录，请在2026年6月30日前通过" in spring.message
    autumn = assess(never, D(2026, 9, 1))
    assert autumn.may_certify and not autumn.suspended and autumn.next_due_date == D(2026, 9, 1)


# --- 广西 Guangxi ----------------------------------------------------------------------


def test_guangxi_attachment2_birthday_month_to_the_month_before_the_next_birthday():
    """guangxi-2020-certification-notice.txt 附件2: 每年生日当月至次年生日上月."""
    retiree = person(GUANGXI, "enterprise", D(2026, 3, 20), born=D(1948, 3, 15))
    before = assess(retiree, D(2027, 2, 28))
    assert before.reason == Reason.already_certified
    assert "下次请在2027年3月1日至2028年2月29日之间认证" in before.message
    opened = assess(retiree, D(2027, 3, 1))
    assert opened.may_certify and opened.next_due_date == D(2028, 2, 29)
    late = assess(retiree, D(2028, 3, 1))
    assert late.overdue and late.suspended_from == D(2028, 3, 1)


def test_guangxi_attachment2_a_certification_late_in_the_window_still_counts_for_it():
    """guangxi-2020-certification-notice.txt 附件2: one certification anywhere in the window."""
    retiree = person(GUANGXI, "enterprise", D(2027, 2, 10), born=D(1948, 3, 15))
    answer = assess(retiree, D(2027, 3, 1))
    assert answer.may_certify and answer.next_due_date == D(2028, 2, 29)


def test_guangxi_3_2_dependants_certify_every_six_months():
    """guangxi-2020-certification-notice.txt 三(二): 供养直系亲属…资格认证周期改为6个月."""
    assert policy_for(GUANGXI, "dependent").cycle.months == 6
    widow = person(GUANGXI, "dependent", D(2025, 8, 31))
    answer = assess(widow, D(2026, 1, 5))
    assert answer.may_certify and answer.next_due_date == D(2026, 2, 28)
    assert assess(widow, D(2026, 3, 1)).suspended_from == D(2026, 3, 1)


def test_guangxi_3_2_institution_first_cycle_by_31_august_2020():
    """guangxi-2020-certification-notice.txt 三(二): 于2020年8月31日前完成，从9月1日起暂停待遇."""
    answer = assess(person(GUANGXI, "institution", None), D(2020, 9, 1))
    assert answer.overdue and answer.suspended_from == D(2020, 9, 1)
    back = resumption(person(GUANGXI, "institution", None), D(2020, 12, 31))
    assert (back.back_pay_from, back.back_pay_months) == (D(2020, 9, 1), 4)
    dependant = assess(person(GUANGXI, "dependent", None), D(2020, 9, 1))
    assert not dependant.overdue and dependant.may_certify


def test_guangxi_3_5_contacts_are_given_when_payment_is_stopped():
    """guangxi-2020-certification-notice.txt 三(三) 减员 and 三(五) 联系电话."""
    answer = assess(person(GUANGXI, status="stopped"), D(2026, 4, 1))
    assert answer.reason == Reason.payment_stopped
    assert "0771-5887824" in answer.message and "原参保单位" in answer.message


# --- the data file ---------------------------------------------------------------------


def test_every_region_resolves_and_every_rule_cites_a_seed():
    for key in region_keys():
        for benefit in BenefitType:
            policy = policy_for(key if key != "default" else "999999", benefit)
            cited = [policy.cycle.source, policy.suspension.source]
            if policy.first_cycle:
                cited.append(policy.first_cycle.source)
            cited += [v for k, v in policy.extra.items() if k.endswith("_source")]
            for source in cited:
                assert source.split()[0] in SEEDS, (key, source)


def test_the_four_seed_provinces_have_apps_and_contacts():
    expected = {"61": "陕西养老保险", "14": "民生山西", "36": "江西人社", "45": "老来网"}
    for prefix, app in expected.items():
        policy = policy_for(prefix + "0101")
        assert policy.code_prefix == prefix and app in policy.apps
        assert policy.contacts and policy.contact_advice.startswith("请联系")


def test_an_unknown_region_gets_the_default_policy():
    policy = policy_for("110101")
    assert policy.code_prefix == "default" and policy.cycle.months == 12


@pytest.mark.parametrize(
    "body",
    [
        "default: {province: 全国, contact_advice: 请联系, suspension: {rule: r, source: s},"
        " cycle: {kind: weekly, source: s}}",
        "default: {province: 全国, contact_advice: 请联系, suspension: {rule: r, source: s},"
        ' cycle: {kind: rolling_months, months: 12, source: s}}\n"61": {inherit: "62"}',
        "default: {province: 全国, contact_advice: 请联系, suspension: {rule: r, source: s},"
        " cycle: {kind: rolling_months, months: 12}}",
    ],
    ids=["unknown-kind", "unknown-inherit", "no-source"],
)
def test_a_malformed_data_file_is_rejected_at_load(tmp_path, body):
    path = tmp_path / "regions.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    with pytest.raises(RegionDataError):
        load_table(path)


def test_a_person_row_works_without_a_database():
    row = Person(
        name="孙桂英",
        id_number="450103194803151229",
        birth_date=D(1948, 3, 15),
        region_code=GUANGXI,
        benefit_type=BenefitType.enterprise,
        status=PaymentStatus.normal,
        last_certified_on=D(2026, 3, 20),
    )
    answer = assess(row, D(2026, 6, 1), claimed_name="孙桂英", claimed_id="450103194803151229")
    assert answer.reason == Reason.already_certified
    assert answer.next_due_date == D(2028, 2, 29)


# --- properties over dates -------------------------------------------------------------

CASES = [
    (XINCHENG, "institution"),
    (XINCHENG, "enterprise"),
    (SHANXI, "enterprise"),
    (XUNWU, "resident"),
    (GUANGXI, "enterprise"),
    (GUANGXI, "institution"),
    (GUANGXI, "dependent"),
]
LEAP_YEARS = [y for y in range(1904, 2097, 4) if y % 100 or y % 400 == 0]


def month_ends(years):
    return st.builds(
        lambda y, m: add_months(D(y, m, 1), 1) - dt.timedelta(days=1),
        st.integers(*years),
        st.integers(1, 12),
    )


# Leap days, year ends and month ends are where date code breaks; mix them in on purpose.
certified_on = st.one_of(
    st.dates(D(2000, 1, 1), D(2090, 12, 31)),
    st.sampled_from([D(y, 2, 29) for y in LEAP_YEARS if 2000 <= y <= 2090]),
    st.integers(2000, 2090).map(lambda y: D(y, 12, 31)),
    st.integers(2000, 2090).map(lambda y: D(y, 1, 1)),
    month_ends((2000, 2090)),
)
born_on = st.one_of(
    st.dates(D(1920, 1, 1), D(1975, 12, 31)),
    st.sampled_from([D(y, 2, 29) for y in LEAP_YEARS if 1920 <= y <= 1975]),
)
cases = st.sampled_from(CASES)


def suspension_month(message_date: dt.date) -> str:
    return f"{message_date.year}年{message_date.month}月起暂停发放"


@given(cases, certified_on, born_on)
@example((XINCHENG, "institution"), D(2024, 2, 29), D(1950, 5, 10))
@example((GUANGXI, "enterprise"), D(2024, 2, 29), D(1952, 2, 29))
@example((XUNWU, "resident"), D(2025, 12, 31), D(1950, 5, 10))
def test_the_next_window_follows_the_last_certification_and_holds_its_due_date(case, last, born):
    region, benefit = case
    answer = assess(person(region, benefit, last, born=born), last)
    window = answer.window
    assert last < window.opens_on <= window.due_date
    assert answer.next_due_date == window.due_date
    # never more than one cycle of grace: 6 months, 12 months, or to the end of the next
    # January–June / birthday year
    assert window.due_date <= add_months(last, 24)
    assert answer.reason == Reason.already_certified and not answer.overdue


@given(cases, certified_on, born_on)
@example((XINCHENG, "institution"), D(2025, 12, 31), D(1950, 5, 10))
@example((SHANXI, "enterprise"), D(2024, 2, 29), D(1950, 5, 10))
@example((GUANGXI, "enterprise"), D(2027, 2, 28), D(1948, 3, 1))
def test_open_throughout_the_window_refused_before_suspended_after(case, last, born):
    region, benefit = case
    retiree = person(region, benefit, last, born=born)
    window = assess(retiree, last).window

    before = assess(retiree, window.opens_on - dt.timedelta(days=1))
    assert before.reason == Reason.already_certified and not before.suspended
    assert format_date(last) in before.message
    assert format_date(window.due_date) in before.message

    for today in (window.opens_on, window.due_date):
        answer = assess(retiree, today)
        assert answer.may_certify and not answer.overdue and not answer.suspended
        assert format_date(window.due_date) in answer.message

    late = assess(retiree, window.due_date + dt.timedelta(days=1))
    assert late.may_certify and late.overdue
    # suspended from the 1st of the month after the due date (Jiangxi: July 1)
    suspended_from = late.suspended_from
    assert suspended_from.day == 1 and suspended_from > window.due_date
    assert (suspended_from - window.due_date).days <= 31
    # a due date at a month's end (Jiangxi's 30 June) means suspended the very next day
    assert late.suspended == (suspended_from == window.due_date + dt.timedelta(days=1))
    assert suspension_month(suspended_from) in late.message
    if late.suspended is False:  # overdue for the rest of the due month, still paid
        just_before = assess(retiree, suspended_from - dt.timedelta(days=1))
        assert just_before.overdue and not just_before.suspended
        assert "如果不认证，养老金将从" in just_before.message
    on_the_day = assess(retiree, suspended_from)
    assert on_the_day.overdue and on_the_day.suspended


@given(cases, certified_on, born_on)
@example((XUNWU, "resident"), D(2023, 6, 1), D(1950, 5, 10))
@example((GUANGXI, "enterprise"), D(2023, 2, 1), D(1940, 2, 29))
def test_certifying_on_the_last_day_of_a_window_keeps_payment_going(case, last, born):
    region, benefit = case
    window = assess(person(region, benefit, last, born=born), last).window
    assert resumption(person(region, benefit, last, born=born), window.due_date) is None

    renewed = person(region, benefit, window.due_date, born=born)
    next_day = assess(renewed, window.due_date + dt.timedelta(days=1))
    assert not next_day.overdue and not next_day.suspended
    assert next_day.next_due_date > window.due_date


@given(cases, certified_on, born_on, st.integers(1, 900))
@example((XUNWU, "resident"), D(2023, 3, 1), D(1950, 5, 10), 1)
@example((GUANGXI, "dependent"), D(2024, 2, 29), D(1950, 5, 10), 60)
def test_back_pay_counts_every_month_from_suspension_through_certification(
    case, last, born, days_late
):
    region, benefit = case
    retiree = person(region, benefit, last, born=born)
    due = assess(retiree, last).window.due_date
    certified = due + dt.timedelta(days=days_late)
    back = resumption(retiree, certified)
    if certified.month == due.month and certified.year == due.year:
        assert back is None  # late, but within the due month: nothing was withheld yet
        return
    assert back.resume_on == certified
    assert back.back_pay_from == assess(retiree, certified).suspended_from
    assert back.back_pay_from.day == 1 and back.back_pay_from <= certified
    # the last month paid back is the certification month itself
    last_month = add_months(back.back_pay_from, back.back_pay_months - 1)
    assert (last_month.year, last_month.month) == (certified.year, certified.month)


@given(certified_on, st.integers(0, 366))
@example(D(2025, 12, 31), 0)
@example(D(2024, 2, 29), 306)
def test_shaanxi_once_per_calendar_year_whatever_the_date(last, days_later):
    """shaanxi-app-certification-guide.txt 六.7(2) over every date of the year."""
    retiree = person(XINCHENG, "institution", last)
    today = last + dt.timedelta(days=days_later)
    answer = assess(retiree, today)
    due = add_months(last, 12)
    if today.year == last.year:
        assert answer.reason == Reason.already_certified
        opens = format_date(D(last.year + 1, 1, 1))
        expected = (
            f"您已于{format_date(last)}完成本年度认证，下次请在{opens}至{format_date(due)}之间认证"
        )
        assert expected in answer.message
    else:
        assert answer.may_certify
        assert answer.overdue == (today > due)
    # 29 February rolls to 28 February in a common year, every other day to the same date
    assert (due.month, due.day) == (
        (2, 28) if (last.month, last.day) == (2, 29) else (last.month, last.day)
    )


def day_of(year: int, index: int) -> dt.date:
    """The index-th day (0-based, wrapping) of a year: every day incl. 29 Feb and 31 Dec."""
    days = 366 if calendar.isleap(year) else 365
    return D(year, 1, 1) + dt.timedelta(days=index % days)


@given(st.integers(2021, 2089), st.integers(0, 365), st.integers(1, 3), st.integers(0, 365))
@example(2025, 364, 1, 0)  # certified (补办) on 31 December, asked on 1 January
@example(2023, 180, 1, 181)  # 30 June, asked on 30 June a year later (leap year 2024)
@example(2024, 365, 1, 181)  # 31 December of a leap year, asked on 1 July
def test_jiangxi_january_to_june_open_july_onwards_suspended(year, index, years_later, asked):
    """jiangxi-xunwu-2020-rural-pension-certification.txt 二(二), 二(四) on every day of a year."""
    last = day_of(year, index)
    today = day_of(year + years_later, asked)
    answer = assess(person(XUNWU, "resident", last), today)
    assert answer.may_certify  # in the window, or late (补办)
    if years_later == 1 and today.month <= 6:
        assert not answer.overdue and answer.next_due_date == D(today.year, 6, 30)
        assert f"请在{today.year}年6月30日前" in answer.message
    else:
        assert answer.overdue and answer.suspended
        assert answer.suspended_from == D(year + 1, 7, 1)
        assert f"养老金从{year + 1}年7月起暂停发放" in answer.message


@given(born_on, certified_on)
@example(D(1952, 2, 29), D(2027, 1, 31))
@example(D(1952, 2, 29), D(2028, 2, 1))
@example(D(1950, 3, 1), D(2027, 2, 28))
@example(D(1950, 1, 10), D(2026, 12, 31))
def test_guangxi_birthday_window_for_any_birthday_including_29_february(born, last):
    """guangxi-2020-certification-notice.txt 附件2: 生日当月至次年生日上月."""
    window = assess(person(GUANGXI, "enterprise", last, born=born), last).window
    assert window.opens_on == D(window.opens_on.year, born.month, 1)
    month_before = add_months(window.opens_on, -1)
    assert (window.due_date.month, window.due_date + dt.timedelta(days=1)) == (
        month_before.month,
        D(window.opens_on.year + 1, born.month, 1),
    )
    # the last certification fell in the window just before this one
    assert add_months(window.opens_on, -12) <= last < window.opens_on


@given(
    st.text(alphabet="赵钱孙李吴郑冯陈褚卫蒋沈韩杨朱秦尤许吕曹魏陶姜", min_size=2, max_size=4),
    st.data(),
)
def test_a_name_mismatch_reports_positions_and_never_the_registered_characters(registered, data):
    claimed = data.draw(
        st.text(
            alphabet="赵钱孙李吴郑冯陈褚卫蒋沈韩杨朱秦尤许吕曹魏陶姜",
            min_size=len(registered),
            max_size=len(registered),
        )
    )
    retiree = PersonFacts(XUNWU, "resident", name=registered, id_number="360734195005101226")
    answer = assess(retiree, D(2026, 4, 1), claimed_name=claimed, claimed_id="360734195005101226")
    differing = tuple(
        i + 1 for i, (a, b) in enumerate(zip(claimed, registered, strict=True)) if a != b
    )
    if not differing:
        assert answer.reason is None
        return
    assert answer.reason == Reason.identity_mismatch
    assert answer.mismatch.name_positions == differing
    assert f"第{'、'.join(map(str, differing))}个字" in answer.message
    for position in differing:
        assert registered[position - 1] not in answer.message


@given(
    cases,
    st.one_of(st.none(), certified_on),
    born_on,
    certified_on,
    st.sampled_from(["normal", "suspended", "stopped"]),
)
@example((XINCHENG, "institution"), None, BORN, D(2021, 6, 1), "normal")
@example((GUANGXI, "enterprise"), D(2026, 3, 5), BORN, D(2026, 4, 1), "suspended")
def test_every_message_is_one_sentence_ending_with_what_to_do(case, last, born, today, status):
    region, benefit = case
    answer = assess(person(region, benefit, last, born=born, status=status), today)
    message = answer.message
    assert message.endswith("。") and message.count("。") == 1
    instruction = message[message.rindex("请") :]
    # the instruction comes last: no fact about the past or the payment after it
    assert "已于" not in instruction and "暂停" not in instruction and "停止" not in instruction
    if answer.reason == Reason.payment_stopped:
        assert answer.policy.hotline in instruction
