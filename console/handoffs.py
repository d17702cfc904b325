"""转人工：队列、接手、读会话、回复（经用户自己的渠道）、交还机器人。"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from console import blueprint, clock, database, notify, page, runtime
from console.auth import me
from services import audit, handoffs
from services.handoffs import HandoffPolicy
from services.notifications import Notice


def _policy() -> HandoffPolicy:
    return HandoffPolicy.from_settings(runtime().config)


@blueprint.route("/handoffs")
def handoff_queue():
    policy = _policy()
    now = clock().utcnow()
    with database().session() as db:
        # Time out requests nobody took (also done by cron: `pension expire-handoffs`).
        timed_out = handoffs.expire_waiting(db, policy, now=now)
        waiting = handoffs.staff_queue(db, me(), policy, now=now)
    for notice in timed_out:
        notify(notice)
    return page(
        "handoffs.html",
        waiting=waiting,
        now=now,
        on_duty=policy.hours.on_duty(clock().now()),
        hours=policy.hours.describe(),
        wait_minutes=int(policy.wait.total_seconds() // 60),
    )


@blueprint.route("/handoffs/<public_id>")
def handoff(public_id: str):
    with database().session() as db:
        try:
            item = handoffs.find_for_staff(db, me(), public_id)
        except handoffs.HandoffNotFound:
            abort(404)
        messages = list(item.messages)
        audit.record(
            db, me().username, "handoff.viewed", "handoff", item.public_id, at=clock().utcnow()
        )
    return page("handoff.html", item=item, messages=messages)


def _act(public_id: str, action):
    try:
        with database().session() as db:
            notice = action(db)
    except handoffs.HandoffNotFound:
        abort(404)
    except handoffs.AlreadyTaken as taken:
        flash(f"{taken}。", "warning")
        return None
    except handoffs.HandoffClosed:
        flash("这个会话已经结束（用户离开、等待超时或已交还机器人）。", "warning")
        return None
    except ValueError as invalid:
        flash(str(invalid), "error")
        return None
    if isinstance(notice, Notice):
        notify(notice)
    return notice


@blueprint.route("/handoffs/<public_id>/take", methods=["POST"])
def handoff_take(public_id: str):
    taken = _act(public_id, lambda db: handoffs.take(db, me(), public_id, now=clock().utcnow()))
    if taken is not None:
        flash("已接手，用户的消息会显示在这里。", "ok")
    return redirect(url_for("console.handoff", public_id=public_id)), 303


@blueprint.route("/handoffs/<public_id>/reply", methods=["POST"])
def handoff_reply(public_id: str):
    text = request.form.get("text", "")
    sent = _act(
        public_id,
        lambda db: handoffs.staff_reply(db, me(), public_id, text, now=clock().utcnow()),
    )
    if sent is not None:
        flash("已发送。", "ok")
    return redirect(url_for("console.handoff", public_id=public_id)), 303


@blueprint.route("/handoffs/<public_id>/release", methods=["POST"])
def handoff_release(public_id: str):
    released = _act(
        public_id,
        lambda db: handoffs.staff_release(db, me(), public_id, now=clock().utcnow()) or False,
    )
    if released is not None:
        flash("已交还机器人。", "ok")
    return redirect(url_for("console.handoff_queue")), 303
