"""管理员：审计日志（筛选、分页），工作人员列表与解锁。"""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for

from console import blueprint, clock, database, day_field, page
from console.auth import me, require_admin
from services import audit, staff


@blueprint.route("/audit")
@require_admin
def audit_log():
    since, until = day_field(request.args.get("since")), day_field(request.args.get("until"))
    filters = {k: request.args.get(k, "").strip() for k in ("actor", "action", "target")}
    with database().session() as db:
        found = audit.search(
            db,
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            target_id=filters["target"] or None,
            # the form's dates are Beijing days
            since=_utc(since),
            until=_utc(until + dt.timedelta(days=1)) if until else None,
            page=request.args.get("page", 1, type=int) or 1,
        )
    return page("audit.html", found=found, filters=filters, since=since, until=until)


def _utc(day: dt.date | None):
    if day is None:
        return None
    from services.clock import SHANGHAI

    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)


@blueprint.route("/staff")
@require_admin
def staff_list():
    with database().session() as db:
        everyone = staff.all_staff(db)
    return page("staff.html", everyone=everyone, now=clock().utcnow())


@blueprint.route("/staff/<username>/unlock", methods=["POST"])
@require_admin
def staff_unlock(username: str):
    try:
        with database().session() as db:
            staff.unlock(db, username, by=me().username)
    except staff.StaffError as missing:
        abort(404, description=str(missing))
    flash(f"{username} 已解锁", "ok")
    return redirect(url_for("console.staff_list")), 303
