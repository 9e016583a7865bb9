"""Plain functions behind the jobs endpoints: submit (publish after commit) and read."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import Session

from api.auth import Principal
from api.errors import ApiError
from api.schemas import AttemptOut, ErrorOut, JobCreate, JobOut, ResultOut, RouteOut
from llmgw.runtime import Runtime
from routing.service import resolve
from storage.models import Job, utcnow

log = logging.getLogger(__name__)
RUN_JOB_TASK = "llmgw.run_job"


def submit_job(runtime: Runtime, principal: Principal, body: JobCreate) -> Job:
    with runtime.sessions() as session:
        route = resolve(session, body.model)
        job = Job(
            id=uuid.uuid4().hex,
            owner=principal.id,
            status="queued",
            model_requested=body.model,
            provider=route.provider,
            model=route.model,
            channel=route.channel,
            upstream_id=route.upstream_id,
            queue=route.queue,
            request=body.model_dump(mode="json"),
        )
        session.add(job)
        session.commit()
    dispatch(runtime, job)
    return job


def dispatch(runtime: Runtime, job: Job) -> None:
    try:
        runtime.celery.send_task(RUN_JOB_TASK, args=[job.id], queue=job.queue)
    except Exception as exc:  # the broker is down: say so, and never leave a silent orphan
        log.exception("could not publish job %s", job.id)
        _mark_dispatch_failed(runtime, job.id)
        raise ApiError(
            503, "queue_unavailable", "The job queue is unavailable; try again shortly."
        ) from exc


def _mark_dispatch_failed(runtime: Runtime, job_id: str) -> None:
    with runtime.sessions() as session:
        job = session.get(Job, job_id)
        if job is not None and job.status == "queued":
            job.status, job.error_code = "failed", "dispatch_failed"
            job.error_message, job.finished_at = "The job could not be queued.", utcnow()
            session.commit()


def load_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or (job.owner != principal.id and not principal.is_admin):
        raise ApiError(404, "job_not_found", f"No job with id {job_id!r}.")
    return job


def job_view(job: Job) -> JobOut:
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
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        metadata=job.request.get("metadata", {}),
    )
