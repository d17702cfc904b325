"""报表：各地区认证情况（图表不用外网资源），导出《资格核查确认花名册》XLSX。"""

from __future__ import annotations

import datetime as dt

from flask import Response, abort, request

from console import blueprint, clock, database, page
from console.auth import forbidden, me
from services import reports
from services.staff import StaffError


def _region() -> str:
    mine = me().regions or [""]
    return request.args.get("region", mine[0]).strip()


@blueprint.route("/reports")
def report():
    region = _region()
    today = clock().today()
    with database().session() as db:
        try:
            board = reports.dashboard(db, me(), region, today)
        except PermissionError:
            forbidden(f"region {region}")
        except StaffError as invalid:
            abort(400, description=str(invalid))
    start = today.replace(month=1, day=1)
    return page(
        "reports.html",
        board=board,
        chart=reports.bar_chart(board),
        regions=me().regions,
        start=start,
        end=today,
    )


def _day(field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(request.args.get(field, ""))
    except ValueError:
        abort(400, description="日期格式应为 YYYY-MM-DD")


@blueprint.route("/reports/roster.xlsx")
def roster_export():
    region = _region()
    start, end = _day("start"), _day("end")
    with database().session() as db:
        try:
            data, _rows = reports.verification_roster_xlsx(
                db, me(), region, start, end, today=clock().today(), now=clock().utcnow()
            )
        except PermissionError:
            forbidden(f"region {region}")
        except StaffError as invalid:
            abort(400, description=str(invalid))
    name = f"verification-roster-{region or 'all'}-{start:%Y%m%d}-{end:%Y%m%d}.xlsx"
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
