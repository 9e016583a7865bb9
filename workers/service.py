"""Running one job: claim it, call the provider (no DB session held), record, decide.

Idempotent by job id: the claim is one conditional UPDATE (`jobs.lifecycle.claim`), so a
duplicate or redelivered message for a job that is finished, cancelled or being run by a
live worker does nothing. After the call the attempt and the job's transition are committed
first; the breaker, the metrics and the wake-ups come after, each guarded, so nothing that
touches Redis for bookkeeping stands between a provider's answer and the database.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from jobs import attempts, batches, events, lifecycle
from jobs.admission import settle_job
from jobs.answered import Answered
from jobs.events import JobStream
from jobs.feeder import request_refill
from jobs.lifecycle import Claimed
from jobs.spec import JobSpec
from jobs.status import TERMINAL, JobStatus
from monitoring.metrics import FALLBACKS, JOBS_FINISHED, QUEUE_WAIT
from providers.base import CompletionRequest, CompletionResult
from providers.errors import ProviderError, RateLimited, StreamInterrupted
from routing.errors import RoutingError
from routing.service import Route
from routing.snapshot import Pricing
from storage import keys
from storage.models import Job, utcnow
from workers import pacing, policy
from workers.attempt import AttemptRun, circuit_allows, observe, observe_cost, run_attempt
from workers.context import WorkerContext

log = logging.getLogger(__name__)
DatabaseBusy = (PoolTimeout, OperationalError)  # narrowed by `busy`


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None
    # This run ended the job with an answer it holds (`jobs.answered`): the inline sync
    # request answers from it without reading the job back.
    answered: Answered | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Call(Claimed):
    """What one provider call is about (the claim, the upstream it calls now, the provider
    request), detached from any database session."""

    request: CompletionRequest

    @property
    def circuit(self) -> str:
        return keys.circuit_id(self.provider, self.model, self.channel)

    @property
    def labels(self) -> tuple[str, str, str]:
        return (self.provider, self.model, self.channel)


def execute_job(ctx: WorkerContext, job_id: str) -> Outcome:
    try:
        call, gate = claim_and_open(ctx, job_id)
    except DatabaseBusy as exc:
        if not busy(exc):
            raise
        # Every database connection of this process stayed busy (thousands of threads on a
        # small pool), or SQLite's write lock did past its busy timeout: the transaction
        # wrote nothing. The message goes back with a short countdown instead of failing and
        # leaving the job queued until the sweeper's requeue.
        log.warning("job %s: the database is busy; trying again shortly", job_id)
        return Outcome(status=JobStatus.QUEUED, retry_in=pacing.wait_seconds())
    if call is None:
        return Outcome(status="skipped")
    if not isinstance(gate, pacing.Slot):
        return closed_gate(ctx, call, gate)
    return make_call(ctx, call, gate)


def make_call(ctx: WorkerContext, call: Call, gate: pacing.Slot) -> Outcome:
    """The claimed call, its `started` row committed: call the provider holding the slot and
    the lease, record the end, then observe and decide what comes next."""
    job_id = call.job_id
    stream = JobStream(ctx.redis, job_id) if call.spec.stream else None
    with gate, ctx.leases.hold(call.job_id, call.number):
        run = run_attempt(ctx.providers(call.provider), call.request, stream)
    result, error = run.result, run.error
    if error is None:
        assert result is not None
        outcome = patiently(job_id, lambda: record_success(ctx, call, run, result))
        observe(ctx.breaker, call.circuit, call.labels, run)
        observe_cost(model_pricing(ctx.resolver, call.model), call.labels, result.usage)
        finished(ctx, call, outcome, stream, result)
        return outcome
    patiently(job_id, lambda: record_failed_call(ctx, call, run, error))
    observe(ctx.breaker, call.circuit, call.labels, run)
    outcome = after_failure(ctx, call, error, published=run.published)
    return end_stream(stream, call, outcome, error)


CLAIM_TRIES = 3


def claim_and_open(ctx: WorkerContext, job_id: str) -> tuple[Call | None, pacing.Slot | str]:
    """Claim the job and, if the call may go now, log it `started`: one commit.

    The job is read first (no write lock), then Redis is asked what stands before the call
    (the route now, the circuit, a pacing slot), and only then is the claim written, if the
    job is still as read, with the `started` row: SQLite's single write lock, shared with the
    API's inserts, is held for two statements and a commit, not across Redis round trips.
    Lost to another claim or a move in between: the slot goes back and the job is read again
    (a half-open circuit's probe taken meanwhile lapses after its timeout)."""
    for _ in range(CLAIM_TRIES):
        with ctx.sessions() as session:
            seen = lifecycle.peek(session, job_id, ctx.sweep.lease_seconds)
        if seen is None:
            log.info("job %s is not claimable (missing, running elsewhere or ended)", job_id)
            return None, "skipped"
        call = planned_call(ctx, seen)
        gate = open_gate(ctx, call)
        if claim_with_gate(ctx, call, seen, gate):
            observe_queue_wait(call)
            return call, gate
        if isinstance(gate, pacing.Slot):
            gate.release()
    log.info("job %s: claimed elsewhere while this worker looked at it", job_id)
    return None, "skipped"


def observe_queue_wait(call: Call) -> None:
    """A first claim ends the job's wait since its submission (`llmgw_job_queue_wait_seconds`;
    `started_at - created_at`, docs/sla.md)."""
    if call.number == 1 and call.queued_since is not None:
        waited = (utcnow() - call.queued_since).total_seconds()
        QUEUE_WAIT.labels(*call.labels, call.priority).observe(max(waited, 0.0))


def claim_with_gate(ctx: WorkerContext, call: Call, seen: Claimed, gate: pacing.Slot | str) -> bool:
    """The claim, a dead worker's call logged lost, and (gate open) the `started` row: one
    commit. False if the job changed since it was read (nothing written)."""
    try:
        with ctx.sessions() as session:
            if not lifecycle.claim_seen(session, seen, ctx.sweep.lease_seconds, call.upstream_id):
                return False
            # A first claim has no earlier call to find; a later one may follow a dead worker's.
            if call.number > 1 and attempts.mark_lost(session, call.job_id):
                log.warning("job %s: a call of a lost worker is logged as lost", call.job_id)
            if isinstance(gate, pacing.Slot):  # the call is in the log before it goes out
                attempts.start_call(session, call.job_id, call.number, call)
            session.commit()
            return True
    except BaseException:
        if isinstance(gate, pacing.Slot):
            gate.release()
        raise


T = TypeVar("T")
RECORD_TRIES = 10


def patiently(job_id: str, record: Callable[[], T]) -> T:
    """Record a call's end, waiting out a pool with no free connection (each try waits the
    pool's timeout): the provider has answered, and giving up now would call it again after
    the lease. A busy database fails the transaction whole, so nothing is written twice."""
    for _ in range(RECORD_TRIES - 1):
        try:
            return record()
        except DatabaseBusy as exc:
            if not busy(exc):
                raise
            log.warning("job %s: the database is busy; recording the call again", job_id)
    return record()


def busy(exc: Exception) -> bool:
    """No connection free in the pool, or SQLite's write lock held past its busy timeout:
    the transaction was rolled back having written nothing, so it can simply run again."""
    return isinstance(exc, PoolTimeout) or "database is locked" in str(exc)


def open_gate(ctx: WorkerContext, call: Call) -> pacing.Slot | str:
    """What stands between the claim and the call: the circuit, a stream a lost worker began,
    the provider's pacing. A slot to call now, or why not (`closed_gate` acts on it). Read
    inside the claim's transaction, so the attempt row goes out in the claim's own commit."""
    if not circuit_allows(ctx.breaker, call.circuit):
        return "circuit_open"
    if call.spec.stream and JobStream(ctx.redis, call.job_id).started():
        return "stream_lost"
    return ctx.pacer.acquire(call.provider) or "no_slot"


def closed_gate(ctx: WorkerContext, call: Call, reason: str) -> Outcome:
    """The claim was committed without an attempt: move on, fail or wait, as `reason` says."""
    if reason == "circuit_open":
        return move_on(ctx, call, None, skipped_reason="circuit_open")
    if reason == "stream_lost":  # its worker died mid-answer: the text cannot be taken back
        lost = StreamInterrupted("The worker streaming this job was lost mid-stream.")
        stream = JobStream(ctx.redis, call.job_id)
        return end_stream(stream, call, fail_job(ctx, call, lost), lost)
    return wait_for_slot(ctx, call)  # the credential's slots are all busy: no attempt


def model_pricing(resolver: Any, model: str) -> Pricing | None:
    """The model's list price from the (cached) catalogue; None if it has none or the
    catalogue cannot be read now (the answer matters more than its cost metric)."""
    try:
        return resolver.catalogue().find(model).pricing
    except Exception:
        log.warning("no price for %s: catalogue unreadable", model, exc_info=True)
        return None


def end_stream(
    stream: JobStream | None, call: Call, outcome: Outcome, error: ProviderError
) -> Outcome:
    """A streamed job that ended without an answer ends its stream with an error event."""
    if stream is not None and outcome.status in TERMINAL:
        code = error.reason if outcome.status == JobStatus.FAILED else outcome.status
        stream.publish_safely("error", code=code, message=error.message)
    return outcome


def wait_for_slot(ctx: WorkerContext, call: Call) -> Outcome:
    """Back to queued with a short countdown; no attempt row, so the budget is untouched."""
    with ctx.sessions() as session:
        if not lifecycle.retry_later(session, call.job_id, call.number):
            return Outcome(status=current_status(session, call.job_id))
        session.commit()
    return Outcome(status=JobStatus.QUEUED, retry_in=pacing.wait_seconds())


def planned_call(ctx: WorkerContext, seen: Claimed) -> Call:
    """The call a claim of `seen` would make: the upstream `model:channel` means now."""
    upstream = current_upstream(ctx.resolver, seen)
    return call_of(seen, upstream)


def call_of(claimed: Claimed, upstream_id: str | None = None) -> Call:
    """The provider call of a claim, to `upstream_id` (default: the claim's own)."""
    claim = {f.name: getattr(claimed, f.name) for f in fields(Claimed)}
    claim["upstream_id"] = upstream_id or claimed.upstream_id
    return Call(**claim, request=request_from(claimed.job_id, claim["upstream_id"], claimed.spec))


def current_upstream(resolver: Any, claimed: Claimed) -> str:
    """What `model:channel` means now: a promote made after submission is honoured (the
    cached resolver sees a catalogue change on its next read). A channel that no longer
    resolves keeps the route fixed at submission."""
    try:
        route = resolver.resolve(f"{claimed.model}:{claimed.channel}")
    except RoutingError:
        return claimed.upstream_id
    return route.upstream_id if route.provider == claimed.provider else claimed.upstream_id


def request_from(job_id: str, upstream_id: str, spec: JobSpec) -> CompletionRequest:
    return CompletionRequest(
        upstream_model=upstream_id,
        messages=spec.provider_messages(),
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        top_p=spec.top_p,
        repetition_penalty=spec.repetition_penalty,
        request_id=job_id,
        stream=spec.stream,
        **spec.provider_fields(),
    )


def record_success(
    ctx: WorkerContext, call: Call, run: AttemptRun, result: CompletionResult
) -> Outcome:
    """Log the attempt and, if the job is still this attempt's, end it, in one transaction;
    a cancel or a re-claim in the meantime wins and only the attempt is kept."""
    status = JobStatus.INCOMPLETE if result.finish_reason == "length" else JobStatus.SUCCEEDED
    payload = result_payload(call, result)
    with ctx.sessions() as session:
        attempts.finish_call(session, call.job_id, call.number, run.latency_ms, result=result)
        ended = lifecycle.finish(
            session,
            call.job_id,
            call.number,
            status,
            result=payload,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            total_tokens=result.usage.total_tokens,
        )
        session.commit()
        if not ended:
            return Outcome(status=current_status(session, call.job_id))
    return Outcome(status=status, answered=Answered.of_first_call(call, status, payload))


def result_payload(call: Call, result: CompletionResult) -> dict[str, Any]:
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
        "tool_calls": tool_calls_payload(result),
    }


def tool_calls_payload(result: CompletionResult) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls]


def finished(
    ctx: WorkerContext,
    call: Call,
    outcome: Outcome,
    stream: JobStream | None,
    result: CompletionResult | None = None,
) -> None:
    """After a terminal transition is committed: count it, wake waiters, end the stream."""
    if outcome.status not in TERMINAL:
        return
    JOBS_FINISHED.labels(*call.labels, outcome.status).inc()
    if call.priority == "batch":
        count_batch_line(ctx, call.job_id, outcome.status)
    settle_job(ctx.redis, call.job_id, call.spec, result.usage.total_tokens if result else 0)
    events.notify_done(ctx.redis, call.job_id, outcome.status)
    if call.spec.has_callback:
        kick_callbacks(ctx)
    if stream is None or result is None:
        return
    if outcome.status in (JobStatus.SUCCEEDED, JobStatus.INCOMPLETE):
        payload = result_payload(call, result)
        del payload["content"]
        stream.publish_safely("done", status=outcome.status, **payload)
    else:
        message = f"The job ended as {outcome.status}."
        stream.publish_safely("error", code=outcome.status, message=message)


def count_batch_line(ctx: WorkerContext, job_id: str, status: str) -> None:
    """A batch line's job ended: count it now and ask the feeder to refill the batch's
    window (guarded: the feeder's recount and the beat catch up)."""
    try:
        with ctx.sessions() as session:
            batch_id = batches.line_ended(session, job_id, status)
            session.commit()
        if batch_id is not None and ctx.kick_batch is not None:
            request_refill(ctx.redis, batch_id, ctx.kick_batch)
    except Exception:
        log.exception("could not count the end of batch job %s", job_id)


def kick_callbacks(ctx: WorkerContext) -> None:
    """Deliver the job's callback now (guarded: the beat schedule delivers it anyway)."""
    try:
        ctx.kick_callbacks()
    except Exception:
        log.warning("could not kick the callback delivery", exc_info=True)


def record_failed_call(ctx: WorkerContext, call: Call, run: AttemptRun, error: ProviderError):
    with ctx.sessions() as session:
        attempts.finish_call(session, call.job_id, call.number, run.latency_ms, error=error)
        session.commit()


def after_failure(
    ctx: WorkerContext, call: Call, error: ProviderError, *, published: bool
) -> Outcome:
    """Retry, move to the next candidate, or fail; text already streamed cannot be retried."""
    log.info("job %s attempt %d failed: %s", call.job_id, call.number, error.reason)
    if published:
        return fail_job(ctx, call, error)
    with ctx.sessions() as session:
        failed_here, calls = attempts.call_counts(session, call.job_id, call)
        created = session.scalar(select(Job.created_at).where(Job.id == call.job_id))
        age = (utcnow() - created).total_seconds() if created else 0.0
        decision = policy.decide(
            error, failed_here=failed_here, calls=calls, age_seconds=age, policy=ctx.retry
        )
        if decision.action == "retry":
            if not lifecycle.retry_later(session, call.job_id, call.number):
                return Outcome(status=current_status(session, call.job_id))
            session.commit()
            return Outcome(status=JobStatus.QUEUED, retry_in=decision.delay)
    if decision.action == "move_on":
        return move_on(ctx, call, error)
    return fail_job(ctx, call, error)


def fail_job(ctx: WorkerContext, call: Call, error: ProviderError) -> Outcome:
    with ctx.sessions() as session:
        ok = lifecycle.fail(
            session,
            call.job_id,
            call.number,
            error.reason,
            error.message,
            retry_after=retry_after_of(error),
        )
        session.commit()
        outcome = Outcome(JobStatus.FAILED if ok else current_status(session, call.job_id))
    if ok:
        finished(ctx, call, outcome, None)
    return outcome


def move_on(
    ctx: WorkerContext,
    call: Call,
    error: ProviderError | None,
    *,
    skipped_reason: str | None = None,
) -> Outcome:
    """Switch the job to the next usable candidate of its plan and publish it on that
    candidate's queue; candidates passed over are logged as skipped attempts. With no
    candidate left the job fails with the last error, in the same transaction."""
    reason = skipped_reason or (error.reason if error else "unknown")
    with ctx.sessions() as session:
        if skipped_reason:
            attempts.record_skip(session, call.job_id, call.number, call, skipped_reason)
        target, skips = next_candidate(ctx, session, call, bigger=reason == "context_too_long")
        if target is None:
            error = error or no_route_error()
            ok = lifecycle.fail(
                session,
                call.job_id,
                call.number,
                error.reason,
                error.message,
                skipped=skips,
                retry_after=retry_after_of(error),
            )
        else:
            ok = lifecycle.move_to(
                session, call.job_id, call.number, target, hop(call, target, reason), skipped=skips
            )
        if not ok:
            session.rollback()
            return Outcome(status=current_status(session, call.job_id))
        session.commit()
    if target is None:
        outcome = Outcome(status=JobStatus.FAILED)
        finished(ctx, call, outcome, None)
        return outcome
    FALLBACKS.labels(*call.labels, target.provider, target.model, target.channel, reason).inc()
    ctx.dispatcher.publish(call.job_id, target.queue, call.priority)
    log.info("job %s falls back to %s (%s)", call.job_id, target.model_id, reason)
    return Outcome(status=JobStatus.QUEUED)


def hop(call: Call, target: Route, reason: str) -> dict[str, str]:
    return {
        "from": f"{call.model}:{call.channel}",
        "to": target.model_id,
        "reason": reason,
        "at": utcnow().isoformat(),
    }


def retry_after_of(error: ProviderError) -> int | None:
    """The provider's Retry-After in whole seconds, kept on a job that fails rate-limited."""
    if isinstance(error, RateLimited) and error.retry_after:
        return max(1, math.ceil(error.retry_after))
    return None


def no_route_error() -> ProviderError:
    error = ProviderError("Every candidate of the fallback plan was skipped.")
    error.reason = "no_route_available"
    return error


def next_candidate(
    ctx: WorkerContext, session: Session, call: Call, *, bigger: bool
) -> tuple[Route | None, int]:
    """The next route of the plan to try (None: the plan is used up) and how many were
    skipped on the way; each skip is logged as an attempt numbered after the call's."""
    routes = call.spec.plan.routes()
    here = next(
        (i for i, r in enumerate(routes) if (r.provider, r.model, r.channel) == call.labels),
        len(routes),
    )
    window = (routes[here].context_window or 0) if here < len(routes) else 0
    skips = 0
    for route in routes[here + 1 :]:
        reason = skip_reason(ctx, route, window if bigger else None)
        if reason is None:
            return route, skips
        skips += 1
        attempts.record_skip(session, call.job_id, call.number + skips, route, reason)
    return None, skips


def skip_reason(ctx: WorkerContext, route: Route, min_window: int | None) -> str | None:
    if min_window is not None and (route.context_window or 0) <= min_window:
        return "context_too_small"
    circuit = keys.circuit_id(route.provider, route.model, route.channel)
    return None if circuit_allows_peek(ctx, circuit) else "circuit_open"


def circuit_allows_peek(ctx: WorkerContext, circuit: str) -> bool:
    try:
        return not ctx.breaker.is_open(circuit)
    except Exception:
        log.warning("circuit %s unreadable; treating it as closed", circuit, exc_info=True)
        return True


def current_status(session: Session, job_id: str) -> str:
    return session.scalar(select(Job.status).where(Job.id == job_id)) or "missing"
