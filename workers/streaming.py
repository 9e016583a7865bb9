"""Streamed jobs: relay the provider's deltas to the job's Redis stream as they arrive.

The attempt and the result are recorded exactly as for a job answered in one piece (the
same steps of `workers.service`); the stream (`storage.keys.job_stream`) adds what a
`stream: true` chat request reads: a `delta` event per piece of text, then `done` (after
the result is committed) or `error`.

Before the first delta is published a failure takes the usual path (retry, next candidate,
fail). After it the text already sent cannot be taken back, so a failure is recorded and
the job fails with the error's reason instead of being retried behind the reader's back.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from llmgw.runtime import Runtime
from providers.base import CompletionResult, StreamChunk, Usage
from providers.errors import ProviderError, StreamInterrupted
from storage import keys
from storage.models import TERMINAL_STATUSES, utcnow
from workers import service
from workers.fallback import fail_job, record_failure
from workers.jobstate import Call, Outcome, attempt_row

log = logging.getLogger(__name__)


class JobStream:
    """The writing end of one job's Redis stream."""

    def __init__(self, redis: Any, job_id: str) -> None:
        self._redis = redis
        self.key = keys.job_stream(job_id)
        self.deltas = 0

    def started(self) -> bool:
        """Events were published for this job before (by a worker that was then lost)."""
        return bool(self._redis.xlen(self.key))

    def delta(self, content: str) -> None:
        self.publish("delta", content=content)
        self.deltas += 1

    def publish(self, event: str, **data: Any) -> None:
        fields = {"event": event, "data": json.dumps(data, ensure_ascii=False)}
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self.key, fields, maxlen=keys.JOB_STREAM_MAXLEN, approximate=True)
        pipe.expire(self.key, keys.JOB_STREAM_TTL_SECONDS)
        pipe.execute()


def stream_job(runtime: Runtime, call: Call) -> Outcome:
    """Run a claimed `stream: true` job: call `Provider.stream`, publish, record."""
    stream = JobStream(runtime.redis, call.job_id)
    if stream.started():
        lost = StreamInterrupted("The worker streaming this job was lost mid-stream.")
        return after_failure(runtime, call, stream, lost, utcnow(), 0.0, published=True)
    started, t0 = utcnow(), time.perf_counter()
    outcome = relay(runtime, call, stream)
    latency = (time.perf_counter() - t0) * 1000
    if isinstance(outcome, ProviderError):
        service.observe_call(runtime, call, latency, error=outcome)
        published = stream.deltas > 0
        return after_failure(runtime, call, stream, outcome, started, latency, published=published)
    service.observe_call(runtime, call, latency, result=outcome)
    ended = service.record_success(runtime, call, outcome, started=started, latency_ms=latency)
    publish_end(stream, call, ended, outcome)
    return ended


def relay(runtime: Runtime, call: Call, stream: JobStream) -> CompletionResult | ProviderError:
    """Publish each delta; the whole answer as a `CompletionResult`, or the error."""
    parts: list[str] = []
    try:
        for chunk in runtime.provider(call.provider).stream(call.request):
            if chunk.delta:
                stream.delta(chunk.delta)
                parts.append(chunk.delta)
            if chunk.is_final:
                return as_result(call, "".join(parts), chunk)
        return StreamInterrupted("The provider's stream ended without a final chunk.")
    except ProviderError as exc:
        return exc
    except Exception as exc:  # a bug, or Redis gone: the job must still end, not strand
        log.exception("job %s: unexpected error streaming from %s", call.job_id, call.provider)
        return ProviderError(f"Unexpected {type(exc).__name__} while streaming the answer.")


def as_result(call: Call, content: str, final: StreamChunk) -> CompletionResult:
    return CompletionResult(
        content=content,
        finish_reason=final.finish_reason or "stop",
        usage=final.usage or Usage(0, 0, 0),
        model_version=final.model_version,
        upstream_model=call.request.upstream_model,
    )


def after_failure(
    runtime: Runtime,
    call: Call,
    stream: JobStream,
    error: ProviderError,
    started: datetime,
    latency_ms: float,
    *,
    published: bool,
) -> Outcome:
    """Record the failed attempt; retry or fall back only if nothing was published yet."""
    with runtime.sessions() as session:
        session.add(attempt_row(call, started, latency_ms, "failed", error=error))
        session.commit()
    outcome = fail_job(runtime, call, error) if published else record_failure(runtime, call, error)
    if outcome.status in TERMINAL_STATUSES:
        code = error.reason if outcome.status == "failed" else outcome.status
        publish_safely(stream, "error", code=code, message=error.message)
    return outcome


def publish_end(stream: JobStream, call: Call, outcome: Outcome, result: CompletionResult) -> None:
    """`done` once the result is committed; a job cancelled meanwhile ends as an error."""
    if outcome.status in ("succeeded", "incomplete"):
        payload = service.result_payload(call, result)
        del payload["content"]
        publish_safely(stream, "done", status=outcome.status, **payload)
    elif outcome.status in TERMINAL_STATUSES:
        message = f"The job ended as {outcome.status}."
        publish_safely(stream, "error", code=outcome.status, message=message)


def publish_safely(stream: JobStream, event: str, **data: Any) -> None:
    """The job's row is the record; a reader that misses this event falls back to it."""
    try:
        stream.publish(event, **data)
    except Exception:
        log.warning("could not publish %s to %s", event, stream.key, exc_info=True)
