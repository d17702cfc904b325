"""工作台 /console：照片审核、上门认证、转人工会话、花名册、报表、审计日志。

Server-rendered pages over ``services``; nothing here decides anything about a person. Every
page needs a signed-in staff user (console.auth), every form carries a CSRF token, every
response is ``Cache-Control: no-store``, and what a page shows is limited to the staff user's
regions by the services it calls. Messages to people go through the runtime's job queue
after the decision has been committed (:func:`notify`).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, render_template

from services.clock import SHANGHAI
from services.idcard import mask_id_number, mask_phone

blueprint = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)


def runtime():
    return current_app.extensions["runtime"]


def database():
    return runtime().database


def clock():
    return runtime().clock


def notify(notice) -> None:
    """Send a decided notice through the outbound port, via the job queue (after commit)."""
    from services.notifications import enqueue_notice

    if notice is not None:
        enqueue_notice(runtime(), notice)


def day_field(raw: str | None) -> dt.date | None:
    """A YYYY-MM-DD form or query field: None when blank, a 400 when it is not a date."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        abort(400, description="日期格式应为 YYYY-MM-DD")


@blueprint.app_template_filter("bj")
def beijing_time(moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Naive UTC from the database, shown in Beijing time."""
    if moment is None:
        return ""
    return moment.replace(tzinfo=dt.UTC).astimezone(SHANGHAI).strftime(fmt)


@blueprint.app_template_filter("masked_id")
def masked_id(number: str | None) -> str:
    return mask_id_number(number or "")


@blueprint.app_template_filter("masked_phone")
def masked_phone(number: str | None) -> str:
    return mask_phone(number or "")


# What staff read for the stored codes.
LABELS = {
    "benefit_labels": {
        "institution": "机关事业",
        "enterprise": "企业职工",
        "resident": "城乡居民",
        "unemployment": "失业",
        "work_injury": "工伤长期待遇",
        "dependent": "供养直系亲属",
    },
    "payment_labels": {"normal": "正常发放", "suspended": "暂停发放", "stopped": "停止发放"},
    "change_labels": {
        "normal": "正常",
        "suspended": "暂停",
        "resumed": "恢复发放",
        "stopped": "停发",
    },
    "method_labels": {
        "face": "刷脸",
        "photo_review": "拍照人工审核",
        "home_visit": "上门认证",
        "info_comparison": "信息比对",
        "app": "手机APP",
    },
    "channel_labels": {"wechat": "微信", "alipay": "支付宝", "web": "网页", "rest": "接口"},
    "review_labels": {"pending": "待审", "approved": "已通过", "rejected": "未通过"},
    "release_labels": {
        "timeout": "等待超时",
        "user": "用户离开了排队",
        "expired": "超过24小时",
    },
    "outcome_labels": {
        "alive": "健在",
        "deceased": "已死亡",
        "not_found": "未见到本人",
        "moved": "已搬离",
    },
}


@blueprint.context_processor
def _labels():
    from services.photo_prechecks import precheck_lines
    from services.reports import region_name
    from services.reviews import CLAIM_TTL

    return {
        **LABELS,
        "claim_ttl": CLAIM_TTL,
        "region_label": region_name,
        "precheck_lines": precheck_lines,
    }


def page(template: str, **context):
    return render_template(f"console/{template}", **context)


from console import (  # noqa: E402 — the routes register themselves on the blueprint
    admin,
    auth,
    handoffs,
    people,
    reports,
    reviews,
    visits,
)

__all__ = [
    "admin",
    "auth",
    "blueprint",
    "handoffs",
    "people",
    "reports",
    "reviews",
    "visits",
]
