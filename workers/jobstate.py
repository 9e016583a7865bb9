"""What the worker's steps share: the call being made, outcomes, attempt rows, wake-ups."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from llmgw.runtime import Runtime
from monitoring.metrics import JOBS_FINISHED
from providers.base import CompletionRequest, CompletionResult
from providers.errors import ProviderError
from storage import keys
from storage.models import Attempt, Job, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Call:
    """What one provider call is about, detached from any database session."""

    job_id: str
    number: int
    provider: str
    model: str
    channel: str
    upstream_id: str
    request: CompletionRequest

    @property
    def breaker_key(self) -> str:
        return f"{self.provider}:{self.model}:{self.channel}"

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.provider, self.model, self.channel)


def still_ours(job: Job, call: Call) -> bool:
    """The job is still running this very attempt (not cancelled, not re-claimed)."""
    return job.status == "running" and job.attempt_count == call.number


def notify_done(runtime: Runtime, call: Call, status: str) -> None:
    """Count the end and wake long-polls; best effort, since pollers re-read the row anyway."""
    JOBS_FINISHED.labels(*call.labels, status).inc()
    try:
        runtime.redis.publish(keys.job_done_channel(call.job_id), status)
    except Exception:  # a missed wake-up costs a waiter its timeout, never the result
        log.warning("could not publish the end of job %s", call.job_id, exc_info=True)


def attempt_row(
    call: Call,
    started: datetime,
    latency_ms: float,
    outcome: str,
    *,
    result: CompletionResult | None = None,
    error: ProviderError | None = None,
) -> Attempt:
    return Attempt(
        job_id=call.job_id,
        number=call.number,
        provider=call.provider,
        model=call.model,
        channel=call.channel,
        upstream_id=call.upstream_id,
        outcome=outcome,
        error_reason=error.reason if error else None,
        error_message=error.message if error else None,
        latency_ms=round(latency_ms, 3),
        prompt_tokens=result.usage.prompt_tokens if result else None,
        completion_tokens=result.usage.completion_tokens if result else None,
        model_version=result.model_version if result else None,
        started_at=started,
        finished_at=utcnow(),
    )


def skipped_row(job_id: str, number: int, route: dict, reason: str) -> Attempt:
    now = utcnow()
    return Attempt(
        job_id=job_id,
        number=number,
        provider=route["provider"],
        model=route["model"],
        channel=route["channel"],
        upstream_id=route["upstream_id"],
        outcome="skipped",
        error_reason=reason,
        latency_ms=0.0,
        started_at=now,
        finished_at=now,
    )
