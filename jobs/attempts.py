"""The attempt log: one row per provider call (and per candidate skipped without a call).

Rows are written in the caller's transaction, beside the job's transition they explain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from jobs.status import AttemptOutcome
from providers.base import CompletionResult
from providers.errors import ProviderError
from storage.models import Attempt, utcnow


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


def record_call(
    session: Session,
    job_id: str,
    number: int,
    route: Upstream,
    started: datetime,
    latency_ms: float,
    *,
    result: CompletionResult | None = None,
    error: ProviderError | None = None,
) -> None:
    """A call made: succeeded with `result`, or failed with `error`."""
    outcome = AttemptOutcome.FAILED if error else AttemptOutcome.SUCCEEDED
    row = _row(job_id, number, route, outcome, started, round(latency_ms, 3))
    if error is not None:
        row.error_reason, row.error_message = error.reason, error.message
    if result is not None:
        row.prompt_tokens = result.usage.prompt_tokens
        row.completion_tokens = result.usage.completion_tokens
        row.model_version = result.model_version
    session.add(row)


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
    """(failed calls on this route, calls made for the job); skips are not calls."""
    same = (
        (Attempt.provider == route.provider)
        & (Attempt.model == route.model)
        & (Attempt.channel == route.channel)
        & (Attempt.outcome == AttemptOutcome.FAILED)
    )
    row = session.execute(
        select(func.sum(case((same, 1), else_=0)), func.count()).where(
            Attempt.job_id == job_id, Attempt.outcome != AttemptOutcome.SKIPPED
        )
    ).one()
    return int(row[0] or 0), int(row[1])
