"""花名册：查人（姓名、个人编号、身份证号后几位），一个人的页面。"""

from __future__ import annotations

from flask import abort, request

from console import blueprint, clock, database, page
from console.auth import me
from services import people
from services.policy import format_date


@blueprint.route("/people", methods=["GET", "POST"])
def people_search():
    # The form posts, so whatever is typed (even a whole ID number) never lands in a URL or an
    # access log; a GET with ?q= still works for links.
    query = (request.form.get("q") or request.args.get("q") or "").strip()
    found, error = [], None
    with database().session() as db:
        try:
            found = people.search(db, me(), query)
        except people.SearchRefused as refused:
            error = str(refused)
    return page("people.html", query=query if error is None else "", found=found, error=error)


@blueprint.route("/people/<public_id>")
def person(public_id: str):
    with database().session() as db:
        try:
            file = people.person_file(
                db, me(), public_id, today=clock().today(), now=clock().utcnow()
            )
        except people.PersonNotFound:
            abort(404)
    return page(
        "person.html",
        file=file,
        format_date=format_date,
        mask_external_id=people.mask_external_id,
    )
