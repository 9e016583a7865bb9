"""Plain functions behind the jobs endpoints: submit (publish after commit), read, wait, cancel."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from api.auth import Principal
from api.errors import ApiError
from api.schemas import AttemptOut, ErrorOut, JobCreate, JobOut, ResultOut, RouteOut
from llmgw.runtime import Runtime
from monitoring.metrics import JOBS_SUBMITTED
from routing.cache import resolver_for
from routing.plan import FallbackPlan, FallbackPolicy
from storage import keys
from storage.models import TERMINAL_STATUSES, Job, utcnow
from workers.dispatch import publish_job

log = logging.getLogger(__name__)


def submit_job(
    runtime: Runtime, principal: Principal, body: JobCreate, *, idempotency_key: str | None = None
) -> tuple[Job, bool]:
    """Create and publish a job; returns (job, created). A replayed key returns the first job."""
    job = new_job(runtime, principal, body)
    if idempotency_key:
        existing = reserve_idempotency_key(runtime, principal, idempotency_key, body, job.id)
        if existing is not None:
            return existing, False
    try:
        with runtime.sessions() as session:
            session.add(job)
            session.commit()
    except Exception:
        if idempotency_key:  # nothing was created: the key must not point at a ghost
            runtime.redis.delete(keys.idempotency_key(principal.id, idempotency_key))
        raise
    dispatch(runtime, job)
    JOBS_SUBMITTED.labels(job.provider, job.model, job.channel, body.priority).inc()
    return job, True


def estimate_tokens(body: JobCreate) -> int:
    """A cheap upper-ish estimate (about 3 characters a token, plus the answer's budget)."""
    prompt = sum(len(m.content) for m in body.messages) // 3 + 4 * len(body.messages)
    return prompt + (body.max_tokens or 0)


def plan_for(runtime: Runtime, principal: Principal, body: JobCreate) -> FallbackPlan:
    """The plan for this request under this key's routing policy (cross-provider or not)."""
    policy = FallbackPolicy(cross_provider=body.cross_provider, explicit=tuple(body.fallback))
    return resolver_for(runtime).plan(
        body.model,
        policy,
        estimated_tokens=estimate_tokens(body),
        breaker=runtime.breaker,
        key_id=principal.id,
    )


def new_job(runtime: Runtime, principal: Principal, body: JobCreate) -> Job:
    plan = plan_for(runtime, principal, body)
    route = plan.primary  # NoRouteAvailable when every candidate is skipped
    request = body.model_dump(mode="json")
    request["plan"] = {
        "candidates": [c.as_dict() for c in plan.candidates],
        "skipped": [s.as_dict() for s in plan.skipped],
    }
    request["warnings"] = plan.route.warnings()
    request["deprecation_headers"] = plan.route.deprecation_headers()
    return Job(
        id=uuid.uuid4().hex,
        owner=principal.id,
        status="queued",
        model_requested=body.model,
        provider=route.provider,
        model=route.model,
        channel=route.channel,
        upstream_id=route.upstream_id,
        queue=route.queue,
        request=request,
        attempt_count=0,
        created_at=utcnow(),
    )


def reserve_idempotency_key(
    runtime: Runtime, principal: Principal, key: str, body: JobCreate, job_id: str
) -> Job | None:
    """Claim the key for `job_id`; if it was claimed before, return that job (or 409)."""
    body_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    redis_key = keys.idempotency_key(principal.id, key)
    claim = json.dumps({"job_id": job_id, "body_sha256": body_hash})
    if runtime.redis.set(redis_key, claim, nx=True, ex=keys.IDEMPOTENCY_TTL_SECONDS):
        return None
    previous = json.loads(runtime.redis.get(redis_key) or "{}")
    if previous.get("body_sha256") != body_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    with runtime.sessions() as session:
        job = session.get(Job, previous["job_id"])
    if job is None:
        raise ApiError(
            409, "idempotency_key_in_use", "A request with this Idempotency-Key is in progress."
        )
    return job


def dispatch(runtime: Runtime, job: Job) -> None:
    try:
        publish_job(runtime.celery, job.id, job.queue, job.request.get("priority", "interactive"))
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


def wait_for_job(runtime: Runtime, principal: Principal, job_id: str, timeout: float) -> Job:
    """Return the job once it has ended or `timeout` passed; woken by Redis, not by polling."""
    pubsub = runtime.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.job_done_channel(job_id))
    try:
        deadline = time.monotonic() + timeout
        while True:
            with runtime.sessions() as session:
                job = load_job(session, principal, job_id)
            remaining = deadline - time.monotonic()
            if job.status in TERMINAL_STATUSES or remaining <= 0:
                return job
            # Re-read the row at least every 5 s in case a notification was lost.
            pubsub.get_message(timeout=min(remaining, 5.0))
    finally:
        pubsub.close()


def cancel_job(runtime: Runtime, principal: Principal, job_id: str) -> None:
    with runtime.sessions() as session:
        job = load_job(session, principal, job_id)
        cancelled: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Job)
            .where(Job.id == job.id, Job.status.in_(("queued", "running")))
            .values(status="cancelled", finished_at=utcnow(), updated_at=utcnow())
        )
        session.commit()
        session.refresh(job)
    if cancelled.rowcount != 1:
        raise ApiError(
            409,
            "job_not_cancellable",
            f"The job has already ended ({job.status}).",
            job_status=job.status,
        )
    runtime.redis.publish(keys.job_done_channel(job_id), "cancelled")


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
        plan=job.request.get("plan"),
        warnings=job.request.get("warnings", []),
        fallbacks=job.fallbacks or [],
        result_expired=job.result_expired_at is not None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        metadata=job.request.get("metadata", {}),
    )
