"""Running one job: claim it, call the provider (no DB session held), record the attempt.

Idempotent by job id: the claim is one conditional UPDATE, so a duplicate or redelivered
message for a job that is finished, cancelled or being run by a live worker does nothing.
What happens after a failure lives in `workers.fallback`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, func, or_, select, update

from llmgw.runtime import Runtime
from monitoring.metrics import PROVIDER_CALLS, PROVIDER_LATENCY, TOKENS
from providers.base import CompletionRequest, CompletionResult, Message
from providers.errors import ProviderError, RateLimited
from routing.cache import resolver_for
from routing.errors import RoutingError
from storage.models import Job, utcnow
from workers import streaming
from workers.fallback import move_on, record_failure
from workers.jobstate import Call, Outcome, attempt_row, notify_done

log = logging.getLogger(__name__)


def execute_job(runtime: Runtime, job_id: str) -> Outcome:
    call = claim_job(runtime, job_id)
    if call is None:
        return Outcome(status="skipped")
    if not runtime.breaker.allow(call.breaker_key):
        return move_on(runtime, call, None, skipped_reason="circuit_open")
    if call.request.stream:
        return streaming.stream_job(runtime, call)
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
    with runtime.sessions() as session:
        session.add(attempt_row(call, started, latency, "failed", error=error))
        session.commit()
    return record_failure(runtime, call, error)


def observe_call(
    runtime: Runtime,
    call: Call,
    latency_ms: float,
    *,
    result: CompletionResult | None = None,
    error: ProviderError | None = None,
) -> None:
    if error is None:
        runtime.breaker.record_success(call.breaker_key)
    elif error.retryable and not isinstance(error, RateLimited):
        # Only upstream health counts: a content filter is no outage, and a 429 is our own
        # quota, paced by Retry-After rather than by switching the route off.
        runtime.breaker.record_failure(call.breaker_key)
    outcome = "succeeded" if error is None else "failed"
    PROVIDER_CALLS.labels(*call.labels, outcome, error.reason if error else "").inc()
    PROVIDER_LATENCY.labels(*call.labels).observe(latency_ms / 1000)
    if result is not None:
        TOKENS.labels(*call.labels, "prompt").inc(result.usage.prompt_tokens)
        TOKENS.labels(*call.labels, "completion").inc(result.usage.completion_tokens)


def claim_job(runtime: Runtime, job_id: str) -> Call | None:
    """Atomically move a queued (or orphaned running) job to running; None if not ours.

    One UPDATE … RETURNING: the claim and the row the call needs in a single statement."""
    now = utcnow()
    lease_expired = now - timedelta(seconds=runtime.settings.job_lease_seconds)
    claimable = or_(
        Job.status == "queued", and_(Job.status == "running", Job.updated_at < lease_expired)
    )
    with runtime.sessions() as session:
        row = session.execute(
            update(Job)
            .where(Job.id == job_id, claimable)
            .values(
                status="running",
                attempt_count=Job.attempt_count + 1,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .returning(
                Job.attempt_count,
                Job.provider,
                Job.model,
                Job.channel,
                Job.upstream_id,
                Job.request,
            )
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is None:
            session.commit()
            log.info("job %s is not claimable (missing, running elsewhere or ended)", job_id)
            return None
        upstream = current_upstream(runtime, row.provider, row.model, row.channel, row.upstream_id)
        if upstream != row.upstream_id:
            session.execute(update(Job).where(Job.id == job_id).values(upstream_id=upstream))
        session.commit()
    request = request_from(job_id, upstream, row.request)
    return Call(job_id, row.attempt_count, row.provider, row.model, row.channel, upstream, request)


def current_upstream(runtime: Runtime, provider: str, model: str, channel: str, stored: str) -> str:
    """What `model:channel` means now: a promote made after submission is honoured (the
    cached resolver sees a catalogue change on its next read). A channel that no longer
    resolves keeps the route fixed at submission."""
    try:
        route = resolver_for(runtime).resolve(f"{model}:{channel}")
    except RoutingError:
        return stored
    return route.upstream_id if route.provider == provider else stored


def build_request(job: Job) -> CompletionRequest:
    return request_from(job.id, job.upstream_id, job.request)


def request_from(job_id: str, upstream_id: str, body: dict[str, Any]) -> CompletionRequest:
    return CompletionRequest(
        upstream_model=upstream_id,
        messages=tuple(Message(m["role"], m["content"]) for m in body["messages"]),
        temperature=body.get("temperature"),
        max_tokens=body.get("max_tokens"),
        top_p=body.get("top_p"),
        repetition_penalty=body.get("repetition_penalty"),
        request_id=job_id,
        stream=bool(body.get("stream")),
    )


def record_success(
    runtime: Runtime, call: Call, result: CompletionResult, *, started: datetime, latency_ms: float
) -> Outcome:
    """Log the attempt and, if the job is still this attempt's, end it — one conditional
    UPDATE, so a cancel or a re-claim in the meantime wins and only the attempt is kept."""
    # A reply cut by max_tokens is kept, as `incomplete`: the caller asked for the cut.
    status = "incomplete" if result.finish_reason == "length" else "succeeded"
    now = utcnow()
    with runtime.sessions() as session:
        session.add(attempt_row(call, started, latency_ms, "succeeded", result=result))
        ended: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Job)
            .where(
                Job.id == call.job_id,
                Job.status == "running",
                Job.attempt_count == call.number,
            )
            .values(
                status=status,
                finished_at=now,
                updated_at=now,
                result=result_payload(call, result),
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
                total_tokens=result.usage.total_tokens,
            )
            .execution_options(synchronize_session=False)
        )
        if ended.rowcount != 1:
            status = session.scalar(select(Job.status).where(Job.id == call.job_id)) or "missing"
            session.commit()
            return Outcome(status=status)
        session.commit()
    notify_done(runtime, call, status)
    return Outcome(status=status)


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
