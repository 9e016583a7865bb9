"""The job as the HTTP API shows it (`JobOut`), built from its row and its spec."""

from __future__ import annotations

from api.schemas import (
    AttemptOut,
    CallbackOut,
    ErrorOut,
    JobOut,
    JobPlanOut,
    ResultOut,
    RouteOut,
)
from jobs.callbacks import PENDING
from jobs.spec import JobSpec
from storage.models import CallbackDelivery, Job


def job_view(job: Job) -> JobOut:
    spec = JobSpec.load(job.request)
    return JobOut(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]
        model=job.model_requested,
        route=RouteOut(
            provider=job.provider,
            model=job.model,
            channel=job.channel,
            upstream_id=job.upstream_id,
            queue=job.queue,
        ),
        result=ResultOut.model_validate(job.result) if job.result else None,
        error=ErrorOut(code=job.error_code, message=job.error_message or "")
        if job.error_code
        else None,
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in job.attempts],
        plan=JobPlanOut.model_validate(spec.plan.model_dump(mode="json")),
        warnings=spec.warnings,
        fallbacks=job.fallbacks or [],
        result_expired=job.result_expired_at is not None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        metadata=spec.metadata,
        callback=callback_view(job.callback) if spec.has_callback else None,
    )


def callback_view(row: CallbackDelivery | None) -> CallbackOut | None:
    if row is None:
        return None
    waiting = row.status == PENDING and row.attempts > 0
    return CallbackOut(
        url=row.url,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if waiting else None,
        delivered_at=row.delivered_at,
    )


def deprecation_headers(job: Job) -> dict[str, str]:
    return JobSpec.load(job.request).deprecation_headers
