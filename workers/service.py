"""Running one job: claim it, call the provider (no DB session held), record the attempt.

Idempotent by job id: a redelivered message for a finished job does nothing.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from llmgw.runtime import Runtime
from providers.base import CompletionRequest, CompletionResult, Message
from providers.errors import ProviderError, RateLimited
from storage.models import Attempt, Job, utcnow

log = logging.getLogger(__name__)
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "incomplete"})
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Call:
    """What one provider call was about, detached from any database session."""

    job_id: str
    number: int
    provider: str
    request: CompletionRequest


def execute_job(runtime: Runtime, job_id: str) -> Outcome:
    call = claim_job(runtime, job_id)
    if call is None:
        return Outcome(status="skipped")
    started, t0 = utcnow(), time.perf_counter()
    try:
        result = runtime.provider(call.provider).complete(call.request)
    except ProviderError as exc:
        latency = (time.perf_counter() - t0) * 1000
        return record_failure(runtime, call, exc, started=started, latency_ms=latency)
    except Exception as exc:  # a bug in an adapter must still end the job, not strand it
        log.exception("job %s: unexpected error calling %s", job_id, call.provider)
        latency = (time.perf_counter() - t0) * 1000
        error = ProviderError(f"Unexpected {type(exc).__name__} in the provider adapter.")
        return record_failure(runtime, call, error, started=started, latency_ms=latency)
    latency = (time.perf_counter() - t0) * 1000
    return record_success(runtime, call, result, started=started, latency_ms=latency)


def claim_job(runtime: Runtime, job_id: str) -> Call | None:
    with runtime.sessions() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            log.warning("job %s does not exist; message dropped", job_id)
            return None
        if job.status in TERMINAL:
            log.info("job %s is already %s; redelivery ignored", job_id, job.status)
            return None
        job.status = "running"
        job.started_at = job.started_at or utcnow()
        job.attempt_count += 1
        call = Call(job.id, job.attempt_count, job.provider, build_request(job))
        session.commit()
        return call


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


def record_success(
    runtime: Runtime, call: Call, result: CompletionResult, *, started, latency_ms: float
) -> Outcome:
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        session.add(_attempt(job, call, started, latency_ms, "succeeded", result=result))
        job.status, job.finished_at = "succeeded", utcnow()
        job.result = result_payload(job, result)
        job.prompt_tokens = result.usage.prompt_tokens
        job.completion_tokens = result.usage.completion_tokens
        job.total_tokens = result.usage.total_tokens
        session.commit()
    return Outcome(status="succeeded")


def record_failure(
    runtime: Runtime, call: Call, exc: ProviderError, *, started, latency_ms: float
) -> Outcome:
    retry = exc.retryable and call.number < runtime.settings.job_max_attempts
    with runtime.sessions() as session:
        job = session.get(Job, call.job_id, with_for_update=True)
        session.add(_attempt(job, call, started, latency_ms, "failed", error=exc))
        if retry:
            job.status = "queued"
        else:
            job.status, job.finished_at = "failed", utcnow()
            job.error_code, job.error_message = exc.reason, exc.message
        session.commit()
    log.info("job %s attempt %d failed: %s", call.job_id, call.number, exc.reason)
    if retry:
        return Outcome(status="queued", retry_in=backoff_seconds(call.number, exc))
    return Outcome(status="failed")


def backoff_seconds(attempt: int, exc: ProviderError) -> float:
    """Full-jitter exponential backoff; a provider's Retry-After is a floor."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
    delay = random.uniform(0, ceiling)
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


def result_payload(job: Job, result: CompletionResult) -> dict:
    return {
        "content": result.content,
        "finish_reason": result.finish_reason,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "provider": job.provider,
        "model": job.model,
        "channel": job.channel,
        "model_version": result.model_version,
    }


def _attempt(job, call, started, latency_ms, outcome, *, result=None, error=None) -> Attempt:
    return Attempt(
        job_id=job.id,
        number=call.number,
        provider=job.provider,
        model=job.model,
        channel=job.channel,
        upstream_id=job.upstream_id,
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
