"""Usage from settled (finished) jobs: requests and tokens per model and channel.

Read from the jobs table (the job's served model and channel and its recorded tokens), so
the figures are what the workers recorded, not the limiters' estimates. Cost is not given:
the catalogue carries no prices yet (docs/limits.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.status import TERMINAL
from storage.models import Job


@dataclass(frozen=True)
class UsageRow:
    model: str
    channel: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    key_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def usage(
    session: Session,
    *,
    owner: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    by_key: bool = False,
) -> list[UsageRow]:
    """Per (model, channel) — and per key when `by_key` — over finished jobs whose end falls
    in [since, until); `owner` None means every key."""
    group = [Job.model, Job.channel, *([Job.owner] if by_key else [])]
    query = select(
        *group,
        func.count(),
        func.coalesce(func.sum(Job.prompt_tokens), 0),
        func.coalesce(func.sum(Job.completion_tokens), 0),
        func.coalesce(func.sum(Job.total_tokens), 0),
    ).where(Job.status.in_(list(TERMINAL)))
    if owner is not None:
        query = query.where(Job.owner == owner)
    if since is not None:
        query = query.where(Job.finished_at >= since)
    if until is not None:
        query = query.where(Job.finished_at < until)
    rows = session.execute(query.group_by(*group).order_by(*group)).all()
    return [
        UsageRow(
            model=r[0],
            channel=r[1],
            key_id=r[2] if by_key else None,
            requests=int(r[-4]),
            prompt_tokens=int(r[-3]),
            completion_tokens=int(r[-2]),
            total_tokens=int(r[-1]),
        )
        for r in rows
    ]
