"""Listing a caller's jobs (and batches), newest first, with an opaque keyset cursor.

Chosen: keyset pagination on `(created_at, id)` descending. The cursor is that pair of the
last row shown, base64url-encoded, so a page is one indexed range scan however deep the
client pages, and jobs submitted while it pages never shift rows between pages (an offset
would repeat or skip them). The cursor is opaque to clients; a malformed one is a 400.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from jobs.errors import InvalidCursor
from storage.models import BatchLine, Job

T = TypeVar("T")


@dataclass(frozen=True)
class JobFilter:
    owner: str | None  # None: every owner (an admin not filtering by key)
    status: str | None = None
    model: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_more: bool
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), row_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor `after` is not one this API returned.") from exc


def newest_first(query: Select[Any], entity: Any, after: str | None) -> Select[Any]:
    """`query` ordered newest first, starting after the cursor's row."""
    if after is not None:
        created_at, row_id = decode_cursor(after)
        older = or_(
            entity.created_at < created_at,
            and_(entity.created_at == created_at, entity.id < row_id),
        )
        query = query.where(older)
    return query.order_by(entity.created_at.desc(), entity.id.desc())


def page_of(session: Session, query: Select[Any], entity: Any, after: str | None, limit: int):
    """One page of `query`'s rows (one extra row fetched tells whether more follow)."""
    rows = list(session.scalars(newest_first(query, entity, after).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page(rows, more, cursor)


def list_jobs(session: Session, where: JobFilter, after: str | None, limit: int) -> Page[Job]:
    query = select(Job)
    if where.owner is not None:
        query = query.where(Job.owner == where.owner)
    if where.status is not None:
        query = query.where(Job.status == where.status)
    if where.model is not None:
        query = query.where(Job.model_requested == where.model)
    if where.batch_id is not None:
        fed = select(BatchLine.job_id).where(BatchLine.batch_id == where.batch_id)
        query = query.where(Job.id.in_(fed))
    return page_of(session, query, Job, after, limit)
