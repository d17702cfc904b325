"""审计日志：谁在什么时候看了谁的照片、哪个人的页面，做了什么决定、导出了什么。

Everything a staff user does to or about a person is written here in the same transaction as
the action itself, so an action that is rolled back leaves no audit row and an audit row always
means the action happened. Details never carry an ID number or a phone number: ids of rows,
codes and masked values only (:func:`clean_detail` masks what slipped in).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.idcard import mask_id_numbers_in_text
from services.models import AuditLog, naive_utc

__all__ = ["AuditPage", "clean_detail", "record", "search"]

PAGE_SIZE = 50


def clean_detail(value):
    """Mask ID numbers anywhere inside a detail (strings in dicts and lists)."""
    if isinstance(value, str):
        return mask_id_numbers_in_text(value)
    if isinstance(value, dict):
        return {str(k): clean_detail(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_detail(v) for v in value]
    return value


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    detail: dict | None = None,
    *,
    at: dt.datetime | None = None,
) -> AuditLog:
    """写一条审计记录（和所审计的动作在同一个事务里）。"""
    entry = AuditLog(
        at=naive_utc(at),
        actor=(actor or "unknown")[:64],
        action=action[:64],
        target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:64],
        detail=clean_detail(detail) if detail else None,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditLog]
    total: int
    page: int
    pages: int


def search(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> AuditPage:
    """管理员查审计日志：按人、动作（前缀）、对象、时间筛选，新的在前。"""
    conditions = []
    if actor:
        conditions.append(AuditLog.actor == actor)
    if action:
        conditions.append(AuditLog.action.startswith(action, autoescape=True))
    if target_id:
        conditions.append(AuditLog.target_id == target_id)
    if since:
        conditions.append(AuditLog.at >= naive_utc(since))
    if until:
        conditions.append(AuditLog.at < naive_utc(until))
    total = session.scalar(select(func.count()).select_from(AuditLog).where(*conditions)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    entries = session.scalars(
        select(AuditLog)
        .where(*conditions)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return AuditPage(list(entries), total, page, pages)
