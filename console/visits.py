"""上门认证：按地区和状态列出、分派、约定日期、记录结果。"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from console import blueprint, clock, database, day_field, notify, page
from console.auth import me
from services import audit, staff, visits


@blueprint.route("/visits")
def visit_list():
    state = request.args.get("state") or None
    if state and state not in visits.STATES:
        abort(400, description="未知的状态")
    with database().session() as db:
        rows = visits.list_visits(db, me(), state=state)
    return page("visits.html", rows=rows, state=state, states=visits.STATES)


@blueprint.route("/visits/<public_id>")
def visit(public_id: str):
    with database().session() as db:
        try:
            row = visits.find_visit(db, me(), public_id)
        except visits.VisitNotFound:
            abort(404)
        colleagues = [
            s.username
            for s in staff.all_staff(db)
            if s.active and staff.covers(s, row.person.region_code if row.person else None)
        ]
        audit.record(
            db,
            me().username,
            "home_visit.viewed",
            "home_visit_request",
            row.visit.reference,
            at=clock().utcnow(),
        )
    return page(
        "visit.html",
        row=row,
        states=visits.STATES,
        outcomes=visits.OUTCOMES,
        colleagues=colleagues,
        today=clock().today(),
    )


def _act(public_id: str, action, done: str):
    try:
        with database().session() as db:
            notice = action(db)
    except visits.VisitNotFound:
        abort(404)
    except visits.VisitError as invalid:
        flash(str(invalid), "error")
    else:
        if notice is not None and hasattr(notice, "messages"):
            notify(notice)
        flash(done, "ok")
    return redirect(url_for("console.visit", public_id=public_id)), 303


@blueprint.route("/visits/<public_id>/assign", methods=["POST"])
def visit_assign(public_id: str):
    assignee = request.form.get("assignee", "")
    return _act(
        public_id,
        lambda db: visits.assign(db, me(), public_id, assignee, now=clock().utcnow()),
        f"已分派给 {assignee}",
    )


@blueprint.route("/visits/<public_id>/schedule", methods=["POST"])
def visit_schedule(public_id: str):
    day = day_field(request.form.get("day"))
    if day is None:
        abort(400, description="请填写上门日期")
    return _act(
        public_id,
        lambda db: visits.schedule(
            db,
            me(),
            public_id,
            day,
            today=clock().today(),
            note=request.form.get("note"),
            now=clock().utcnow(),
        ),
        "已约定上门日期，已通知申请人",
    )


@blueprint.route("/visits/<public_id>/outcome", methods=["POST"])
def visit_outcome(public_id: str):
    deceased_on = day_field(request.form.get("deceased_on"))
    return _act(
        public_id,
        lambda db: visits.record_outcome(
            db,
            me(),
            public_id,
            request.form.get("outcome", ""),
            local_now=clock().now(),
            note=request.form.get("note"),
            deceased_on=deceased_on,
            now=clock().utcnow(),
        ),
        "已记录上门结果，已通知申请人",
    )
