"""Running one job: claim it, call the provider (no DB session held), record the attempt.

Idempotent by job id: the claim is one conditional UPDATE, so a duplicate or redelivered
message for a job that is finished, cancelled or being run by a live worker does nothing.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from llmgw.runtime import Runtime
from monitoring.metrics import JOBS_FINISHED, PROVIDER_CALLS, PROVIDER_LATENCY, TOKENS
from providers.base import CompletionRequest, CompletionResult, Message
from providers.errors import ProviderError, RateLimited
from storage import keys
from storage.models import Attempt, Job, utcnow
from workers.dispatch import publish_job

log = logging.getLogger(__name__)
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "incomplete"})
MAX_BACKOFF_SECONDS = 300.0
# The request itself is at fault: another candidate would refuse it too.
NOT_FALLBACKABLE = frozenset({"bad_request"})


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


def execute_job(runtime: Runtime, job_id: str) -> Outcome:
    call = claim_job(runtime, job_id)
    if call is None:
        return Outcome(status="skipped")
    if not runtime.breaker.allow(call.breaker_key):
        return move_on(runtime, call, None, skipped_reason="circuit_open")
    started, t0 = utcnow(), time.perf_counter()
    try:
        result = runtime.provider(call.provider).complete(call.request)
    except ProviderError as exc:
        error: ProviderError = exc
    except Exception as exc:  # a bug in an adapter must still end the job, not strand it
        log.exception("job %s: unexpected error calling %s", job_id, call.provider)
        error = ProviderError(f"Unexpected {type(exc).__name__} in the provider adapter.")
    else:
        latency = (time.perf_counter() - t0) * 1000
        observe_call(runtime, call, latency, result=result)
        return record_success(runtime, call, result, started=started, latency_ms=latency)
    latency = (time.perf_counter() - t0) * 1000
    observe_call(runtime, call, latency, error=error)
    return record_failure(runtime, call, error, started=started, latency_ms=latency)


def observe_call(runtime: Runtime, call: Call, latency_ms: float, *, result=None, error=None):
    if error is None:
        runtime.breaker.record_success(call.breaker_key)
    elif error.retryable and not isinstance(error, RateLimited):
        # Only upstream health counts: a content filter is no outage, and a 429 is our own
        # quota, paced by Retry-After rather than by switching the route off.
        runtime.breaker.record_failure(call.breaker_key)
    route = (call.provider, call.model, call.channel)
    outcome = "succeeded" if error is None else "failed"
    PROVIDER_CALLS.labels(*route, outcome, error.reason if error else "").inc()
    PROVIDER_LATENCY.labels(*route).observe(latency_ms / 1000)
    if result is not None:
        TOKENS.labels(*route, "prompt").inc(result.usage.prompt_tokens)
        TOKENS.labels(*route, "completion").inc(result.usage.completion_tokens)


def claim_job(runtime: Runtime, job_id: str) -> Call | None:
    """Atomically move a queued (or orphaned running) job to running; None if not ours."""
    now = utcnow()
    lease_expired = now - timedelta(seconds=runtime.settings.job_lease_seconds)
    claimable = or_(
        Job.status == "queued", and_(Job.status == "running", Job.updated_at < lease_expired)
    )
    with runtime.sessions() as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, claimable)
            .values(
                status="running",
                attempt_count=Job.attempt_count + 1,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
        )
        session.commit()
        if claimed.rowcount != 1:
            log.info("job %s is not claimable (missing, running elsewhere or ended)", job_id)
            return None
        job = session.get(Job, job_id)
        return Call(
            job.id,
            job.attempt_count,
            job.provider,
            job.model,
            job.channel,
            job.upstream_id,
            build_request(job),
        )


def build_request(job: Job) -> CompletionRequest:
    body = job.request
    return CompletionRequest(
        upstream_model=job.upstream_id,
        messages=tuple(Message(m["role"], m["content"]) for m in body["messages"]),
        temperature=body.get("temperature"),
        max_tokens=body.get("max_tokens"),
        top_p=body.get("top_p"),
        request_id=job.id,
    )


def _still_ours(job: Job, call: Call) -> bool:
    return job.status == "running" and job.attempt_count == call.number


def record_success(
    runtime: Runtime, call: Call, result: CompletionResult, *, started: datetime, latency_ms: float
) -> Outcome:
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        session.add(_attempt(call, started, latency_ms, "succeeded", result=result))
        if not _still_ours(job, call):
            session.commit()
            return Outcome(status=job.status)
        job.status, job.finished_at = "succeeded", utcnow()
        job.result = result_payload(call, result)
        job.prompt_tokens = result.usage.prompt_tokens
        job.completion_tokens = result.usage.completion_tokens
        job.total_tokens = result.usage.total_tokens
        session.commit()
    notify_done(runtime, call.job_id, "succeeded")
    JOBS_FINISHED.labels(call.provider, call.model, call.channel, "succeeded").inc()
    return Outcome(status="succeeded")


def record_failure(
    runtime: Runtime, call: Call, exc: ProviderError, *, started: datetime, latency_ms: float
) -> Outcome:
    """Retry the same candidate, fall back to the next one, or fail the job."""
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        session.add(_attempt(call, started, latency_ms, "failed", error=exc))
        if not _still_ours(job, call):
            session.commit()
            return Outcome(status=job.status)
        tries = failures_on_candidate(session, call)
        retry = exc.retryable and tries < runtime.settings.job_max_attempts
        if retry:
            job.status = "queued"
        session.commit()
    log.info("job %s attempt %d failed: %s", call.job_id, call.number, exc.reason)
    if retry:
        return Outcome(status="queued", retry_in=backoff_seconds(tries, exc))
    if exc.reason in NOT_FALLBACKABLE:
        return fail_job(runtime, call, exc)
    return move_on(runtime, call, exc)


def failures_on_candidate(session, call: Call) -> int:
    # The attempt just added is pending in the session; autoflush counts it.
    return session.scalar(
        select(func.count()).where(
            Attempt.job_id == call.job_id,
            Attempt.provider == call.provider,
            Attempt.model == call.model,
            Attempt.channel == call.channel,
            Attempt.outcome == "failed",
        )
    )


def move_on(
    runtime: Runtime, call: Call, exc: ProviderError | None, *, skipped_reason: str | None = None
) -> Outcome:
    """Switch the job to the next candidate of its plan whose circuit is closed, and publish
    it on that candidate's queue; candidates with an open circuit are logged as skipped."""
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        if not _still_ours(job, call):
            session.commit()
            return Outcome(status=job.status)
        if skipped_reason:
            job.status = "queued"  # so a skip record below is not mistaken for ours
            session.add(_skipped(job.id, job.attempt_count, _current_route(job), skipped_reason))
        target = _next_candidate(runtime, session, job, needs_bigger_context=_ctx(exc))
        if target is not None:
            job.provider, job.model, job.channel = (
                target["provider"],
                target["model"],
                target["channel"],
            )
            job.upstream_id, job.queue = target["upstream_id"], target["queue"]
            job.status = "queued"
        session.commit()
    if target is None:
        error = exc or ProviderError("Every candidate of the fallback plan was skipped.")
        if exc is None:
            error.reason = "no_route_available"
        return fail_job(runtime, call, error, already_ours=True)
    publish_job(
        runtime.celery, call.job_id, target["queue"], job.request.get("priority", "interactive")
    )
    log.info("job %s falls back to %s:%s", call.job_id, target["model"], target["channel"])
    return Outcome(status="queued")


def _current_route(job: Job) -> dict:
    return {
        "provider": job.provider,
        "model": job.model,
        "channel": job.channel,
        "upstream_id": job.upstream_id,
    }


def _ctx(exc: ProviderError | None) -> bool:
    return exc is not None and exc.reason == "context_too_long"


def _next_candidate(runtime: Runtime, session, job: Job, *, needs_bigger_context: bool):
    """The next route of the plan to try (None: the plan is used up); skips are logged."""
    routes = [c["route"] for c in job.request.get("plan", {}).get("candidates", [])]
    current = (job.provider, job.model, job.channel)
    here = next(
        (i for i, r in enumerate(routes) if (r["provider"], r["model"], r["channel"]) == current),
        len(routes),
    )
    window = (routes[here].get("context_window") or 0) if here < len(routes) else 0
    for route in routes[here + 1 :]:
        reason = _skip_reason(runtime, route, window if needs_bigger_context else None)
        if reason is None:
            return route
        job.attempt_count += 1
        session.add(_skipped(job.id, job.attempt_count, route, reason))
    return None


def _skip_reason(runtime: Runtime, route: dict, min_window: int | None) -> str | None:
    if min_window is not None and (route.get("context_window") or 0) <= min_window:
        return "context_too_small"
    key = f"{route['provider']}:{route['model']}:{route['channel']}"
    return "circuit_open" if runtime.breaker.is_open(key) else None


def fail_job(
    runtime: Runtime, call: Call, exc: ProviderError, *, already_ours: bool = False
) -> Outcome:
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        if not already_ours and not _still_ours(job, call):
            return Outcome(status=job.status)
        if job.status in TERMINAL:
            return Outcome(status=job.status)
        job.status, job.finished_at = "failed", utcnow()
        job.error_code, job.error_message = exc.reason, exc.message
        session.commit()
    notify_done(runtime, call.job_id, "failed")
    JOBS_FINISHED.labels(call.provider, call.model, call.channel, "failed").inc()
    return Outcome(status="failed")


def notify_done(runtime: Runtime, job_id: str, status: str) -> None:
    """Wake long-polls; best effort, since pollers re-read the database anyway."""
    try:
        runtime.redis.publish(keys.job_done_channel(job_id), status)
    except Exception:  # a missed wake-up costs a waiter its timeout, never the result
        log.warning("could not publish the end of job %s", job_id, exc_info=True)


def backoff_seconds(attempt: int, exc: ProviderError) -> float:
    """Full-jitter exponential backoff; a provider's Retry-After is a floor."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
    delay = random.uniform(0, ceiling)
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


def result_payload(call: Call, result: CompletionResult) -> dict:
    return {
        "content": result.content,
        "finish_reason": result.finish_reason,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "provider": call.provider,
        "model": call.model,
        "channel": call.channel,
        "model_version": result.model_version,
    }


def _skipped(job_id: str, number: int, route: dict, reason: str) -> Attempt:
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


def _attempt(call: Call, started, latency_ms, outcome, *, result=None, error=None) -> Attempt:
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
