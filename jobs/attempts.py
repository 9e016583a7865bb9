"""The attempt log: one row per provider call (and per candidate skipped without a call).

A call's row is written `started` and committed before the request goes out, then completed
(`succeeded` / `failed`) in the transaction of the job's transition it explains; a `started`
row found when the job is claimed again belonged to a worker that died mid-call and becomes
`lost`. So the log holds every call the provider may have received, paid ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Table, case, func, insert, select, update
from sqlalchemy.orm import Session

from jobs.status import AttemptOutcome
from providers.base import CompletionResult
from providers.errors import ProviderError
from storage.models import Attempt, utcnow

ATTEMPTS: Table = Attempt.__table__  # type: ignore[assignment]
_START = insert(ATTEMPTS)  # Core, built once: the worker's hot path needs no unit of work


class Upstream(Protocol):
    """Where a call went (a `routing.service.Route`, or the worker's call)."""

    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def upstream_id(self) -> str: ...


def start_call(session: Session, job_id: str, number: int, route: Upstream) -> None:
    """The call is about to go out (commit this before making it)."""
    now = utcnow()
    session.execute(
        _START,
        {
            "job_id": job_id,
            "number": number,
            "provider": route.provider,
            "model": route.model,
            "channel": route.channel,
            "upstream_id": route.upstream_id,
            "outcome": AttemptOutcome.STARTED,
            "latency_ms": 0.0,
            "started_at": now,
            "finished_at": now,
        },
    )


def finish_call(
    session: Session,
    job_id: str,
    number: int,
    latency_ms: float,
    *,
    result: CompletionResult | None = None,
    error: ProviderError | None = None,
) -> None:
    """Complete the `started` row of call `number`: succeeded with `result` or failed."""
    values: dict[str, object] = {
        "outcome": AttemptOutcome.FAILED if error else AttemptOutcome.SUCCEEDED,
        "latency_ms": round(latency_ms, 3),
        "finished_at": utcnow(),
    }
    if error is not None:
        values |= {"error_reason": error.reason, "error_message": error.message}
    if result is not None:
        values |= {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "model_version": result.model_version,
        }
    columns = ATTEMPTS.c
    session.execute(
        update(ATTEMPTS).where(columns.job_id == job_id, columns.number == number).values(**values)
    )


def mark_lost(session: Session, job_id: str) -> int:
    """Calls of this job still `started` when it is claimed again: their worker died."""
    lost = session.execute(
        update(Attempt)
        .where(Attempt.job_id == job_id, Attempt.outcome == AttemptOutcome.STARTED)
        .values(
            outcome=AttemptOutcome.LOST,
            error_reason="worker_lost",
            error_message="The worker making this call was lost; the provider may have "
            "answered (and billed) it.",
        )
        .execution_options(synchronize_session=False)
    )
    return int(lost.rowcount)  # type: ignore[attr-defined]


def record_skip(session: Session, job_id: str, number: int, route: Upstream, reason: str) -> None:
    """A candidate passed over without a call (`routing.plan.SKIP_REASONS`)."""
    row = _row(job_id, number, route, AttemptOutcome.SKIPPED, utcnow(), 0.0)
    row.error_reason = reason
    session.add(row)


def _row(
    job_id: str, number: int, route: Upstream, outcome: str, started: datetime, latency_ms: float
) -> Attempt:
    return Attempt(
        job_id=job_id,
        number=number,
        provider=route.provider,
        model=route.model,
        channel=route.channel,
        upstream_id=route.upstream_id,
        outcome=outcome,
        latency_ms=latency_ms,
        started_at=started,
        finished_at=utcnow(),
    )


def call_counts(session: Session, job_id: str, route: Upstream) -> tuple[int, int]:
    """(failed or lost calls on this route, calls made for the job); skips are not calls."""
    same = (
        (Attempt.provider == route.provider)
        & (Attempt.model == route.model)
        & (Attempt.channel == route.channel)
        & Attempt.outcome.in_((AttemptOutcome.FAILED, AttemptOutcome.LOST))
    )
    row = session.execute(
        select(func.sum(case((same, 1), else_=0)), func.count()).where(
            Attempt.job_id == job_id, Attempt.outcome != AttemptOutcome.SKIPPED
        )
    ).one()
    return int(row[0] or 0), int(row[1])
