"""照片审核：待审队列、审核页（照片、参考照片、本人信息、核对清单、预检结果）、结论、照片文件。"""

from __future__ import annotations

from flask import abort, flash, redirect, request, send_file, url_for

from console import blueprint, clock, database, notify, page, runtime
from console.auth import me
from services import faces, reviews
from services.idcard import mask_id_number
from services.policy import assess

PAGE_SIZE = 50


@blueprint.route("/reviews")
def review_queue():
    offset = max(0, request.args.get("offset", 0, type=int) or 0)
    with database().session() as db:
        rows, total = reviews.pending_queue(db, me(), limit=PAGE_SIZE, offset=offset)
    return page(
        "queue.html",
        rows=rows,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        now=clock().utcnow(),
    )


@blueprint.route("/reviews/next")
def review_next():
    with database().session() as db:
        review = reviews.claim_next(db, me(), now=clock().utcnow())
        target = review.public_id if review is not None else None
    if target is None:
        flash("没有待审核的照片了")
        return redirect(url_for("console.review_queue"))
    return redirect(url_for("console.review", public_id=target))


@blueprint.route("/reviews/<public_id>")
def review(public_id: str):
    now = clock().utcnow()
    with database().session() as db:
        try:
            item, person = reviews.open_review(db, me(), public_id, now=now)
        except reviews.ReviewNotFound:
            abort(404)
        reference = reviews.reference_photo(db, item)
        standing = assess(person, clock().today()) if person is not None else None
        held = reviews.held_by_other(item, me(), now)
        checklist = reviews.checklist_for(person.region_code if person else None)
    return page(
        "review.html",
        item=item,
        person=person,
        masked_id=mask_id_number(person.id_number) if person else "",
        reference=reference,
        standing=standing,
        held_by_other=held,
        checklist=checklist,
        reasons=reviews.reject_reasons(),
        status_label=reviews.status_label,
    )


@blueprint.route("/reviews/<public_id>/decision", methods=["POST"])
def review_decision(public_id: str):
    verdict = request.form.get("decision")
    if verdict not in ("approve", "reject"):
        abort(400, description="请选择通过或不通过")
    runtime_clock = clock()
    try:
        with database().session() as db:
            decision = reviews.decide(
                db,
                me(),
                public_id,
                approve=verdict == "approve",
                checklist=request.form.getlist("checklist"),
                reason_code=request.form.get("reason"),
                reason_text=request.form.get("reason_text"),
                now=runtime_clock.utcnow(),
                local_now=runtime_clock.now(),
            )
    except reviews.ReviewNotFound:
        abort(404)
    except reviews.AlreadyDecided as decided:
        flash(f"{decided}，您的操作没有生效。", "warning")
        return redirect(url_for("console.review", public_id=public_id)), 303
    except reviews.ClaimedByOther as held:
        flash(f"{held}，请审核下一张。", "warning")
        return redirect(url_for("console.review", public_id=public_id)), 303
    except reviews.InvalidDecision as invalid:
        flash(str(invalid), "error")
        return redirect(url_for("console.review", public_id=public_id)), 303
    notify(decision.notice)
    if verdict == "approve":
        # 人脸建模 from this photo if the person has none yet (a worker job: dlib takes a second)
        runtime().jobs.enqueue(faces.reference_from_review, decision.review.id)
    label = "已通过" if verdict == "approve" else "未通过"
    extra = f"，补发{decision.back_pay_months}个月" if decision.back_pay_months else ""
    flash(f"照片 {public_id[:6]}… {label}{extra}，已通知申请人。", "ok")
    return redirect(url_for("console.review_next")), 303


@blueprint.route("/photos/<public_id>")
def photo(public_id: str):
    with database().session() as db:
        try:
            path = reviews.photo_file(
                db, me(), runtime().config["PHOTO_DIR"], public_id, now=clock().utcnow()
            )
        except (reviews.ReviewNotFound, ValueError):
            abort(404)
    if not path.is_file():
        abort(404)
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    response = send_file(path, mimetype=mime, max_age=0, conditional=False, etag=False)
    response.headers["Content-Disposition"] = "inline"
    return response
