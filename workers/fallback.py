"""After a failed call: retry the candidate, move to the plan's next one, or fail the job.

One retry loop, one budget: each candidate gets up to `job_max_attempts` calls for retryable
errors; the whole job gets at most `job_attempt_budget` calls and `job_deadline_seconds` of
wall time from submission, across its whole fallback plan.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from llmgw.runtime import Runtime
from monitoring.metrics import FALLBACKS
from providers.errors import ProviderError, RateLimited
from storage.models import Attempt, Job, utcnow
from workers.dispatch import publish_job
from workers.jobstate import Call, Outcome, notify_done, skipped_row, still_ours

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 300.0
# Permanent errors that another candidate may not have: go straight to the next one.
FALLBACK_TRIGGERS = frozenset({"content_filtered", "context_too_long"})


def record_failure(runtime: Runtime, call: Call, exc: ProviderError) -> Outcome:
    """The attempt row is already written; decide what comes next."""
    with runtime.sessions() as session:
        job = session.get_one(Job, call.job_id, with_for_update=True)
        if not still_ours(job, call):
            return Outcome(status=job.status)
        on_candidate, calls = call_counts(session, call)
        budget = within_budget(runtime, job, calls)
        retry = exc.retryable and on_candidate < runtime.settings.job_max_attempts and budget
        if retry:
            job.status = "queued"
            session.commit()
    log.info("job %s attempt %d failed: %s", call.job_id, call.number, exc.reason)
    if retry:
        return Outcome(status="queued", retry_in=backoff_seconds(on_candidate, exc))
    if budget and (exc.retryable or exc.reason in FALLBACK_TRIGGERS):
        return move_on(runtime, call, exc)
    return fail_job(runtime, call, exc)


def call_counts(session: Session, call: Call) -> tuple[int, int]:
    """(failed calls on this candidate, calls made for the job), skips not counted."""
    same = (
        (Attempt.provider == call.provider)
        & (Attempt.model == call.model)
        & (Attempt.channel == call.channel)
        & (Attempt.outcome == "failed")
    )
    row = session.execute(
        select(func.sum(case((same, 1), else_=0)), func.count()).where(
            Attempt.job_id == call.job_id, Attempt.outcome != "skipped"
        )
    ).one()
    return int(row[0] or 0), int(row[1])


def within_budget(runtime: Runtime, job: Job, calls: int) -> bool:
    settings = runtime.settings
    deadline = job.created_at + timedelta(seconds=settings.job_deadline_seconds)
    return calls < settings.job_attempt_budget and utcnow() < deadline


def backoff_seconds(attempt: int, exc: ProviderError) -> float:
    """Full-jitter exponential backoff; a provider's Retry-After is a floor, within the cap."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
    delay = random.uniform(0, ceiling)
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


def move_on(
    runtime: Runtime, call: Call, exc: ProviderError | None, *, skipped_reason: str | None = None
) -> Outcome:
    """Switch the job to the next usable candidate of its plan and publish it on that
    candidate's queue; candidates passed over are logged as skipped attempts. With no
    candidate left the job fails with the last error, in the same transaction."""
    reason = skipped_reason or (exc.reason if exc else "unknown")
    with runtime.sessions() as session:
        job = session.get_one(Job, call.job_id, with_for_update=True)
        if not still_ours(job, call):
            return Outcome(status=job.status)
        if skipped_reason:
            session.add(skipped_row(job.id, job.attempt_count, current_route(job), reason))
        target = next_candidate(runtime, session, job, bigger_context=reason == "context_too_long")
        if target is None:
            mark_failed(job, exc or no_route_error())
        else:
            switch_route(job, target, reason)
        session.commit()
        priority = job.request.get("priority", "interactive")
    if target is None:
        notify_done(runtime, call, "failed")
        return Outcome(status="failed")
    to = (target["provider"], target["model"], target["channel"])
    FALLBACKS.labels(*call.labels, *to, reason).inc()
    publish_job(runtime.celery, call.job_id, target["queue"], priority)
    log.info("job %s falls back to %s:%s (%s)", call.job_id, to[1], to[2], reason)
    return Outcome(status="queued")


def no_route_error() -> ProviderError:
    error = ProviderError("Every candidate of the fallback plan was skipped.")
    error.reason = "no_route_available"
    return error


def mark_failed(job: Job, exc: ProviderError) -> None:
    job.status, job.finished_at = "failed", utcnow()
    job.error_code, job.error_message = exc.reason, exc.message


def switch_route(job: Job, target: dict, reason: str) -> None:
    hop = {
        "from": f"{job.model}:{job.channel}",
        "to": f"{target['model']}:{target['channel']}",
        "reason": reason,
        "at": utcnow().isoformat(),
    }
    job.fallbacks = [*(job.fallbacks or []), hop]
    job.provider, job.model, job.channel = target["provider"], target["model"], target["channel"]
    job.upstream_id, job.queue, job.status = target["upstream_id"], target["queue"], "queued"


def current_route(job: Job) -> dict:
    return {
        "provider": job.provider,
        "model": job.model,
        "channel": job.channel,
        "upstream_id": job.upstream_id,
    }


def next_candidate(runtime: Runtime, session: Session, job: Job, *, bigger_context: bool):
    """The next route of the plan to try (None: the plan is used up); skips are logged."""
    routes = [c["route"] for c in job.request.get("plan", {}).get("candidates", [])]
    current = (job.provider, job.model, job.channel)
    here = next(
        (i for i, r in enumerate(routes) if (r["provider"], r["model"], r["channel"]) == current),
        len(routes),
    )
    window = (routes[here].get("context_window") or 0) if here < len(routes) else 0
    for route in routes[here + 1 :]:
        reason = skip_reason(runtime, route, window if bigger_context else None)
        if reason is None:
            return route
        job.attempt_count += 1
        session.add(skipped_row(job.id, job.attempt_count, route, reason))
    return None


def skip_reason(runtime: Runtime, route: dict, min_window: int | None) -> str | None:
    if min_window is not None and (route.get("context_window") or 0) <= min_window:
        return "context_too_small"
    key = f"{route['provider']}:{route['model']}:{route['channel']}"
    return "circuit_open" if runtime.breaker.is_open(key) else None


def fail_job(runtime: Runtime, call: Call, exc: ProviderError) -> Outcome:
    with runtime.sessions() as session:
        job = session.get_one(Job, call.job_id, with_for_update=True)
        if not still_ours(job, call):
            return Outcome(status=job.status)
        mark_failed(job, exc)
        session.commit()
    notify_done(runtime, call, "failed")
    return Outcome(status="failed")
