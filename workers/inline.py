"""A synchronous request's job run by the API thread that waits for it (`LLMGW_SYNC_INLINE`).

`POST /v1/chat/completions` without `stream` holds its HTTP request open until the job
ends. Queued, that job crosses three processes (API → worker → API: the message, the done
event) for one provider call; run here, the waiting thread does the work the worker would,
with the same function (`workers.service.execute_job`): the same atomic claim, the
`started` attempt row committed before the call goes out, the lease kept while it runs,
pacing, the breaker, the fallback plan, and one terminal transition. Nothing else changes:
the job row, its attempts and its events are the ones a worker would have written.

When nothing has to wait, the insert is the claim: just before it, `open_first` asks
Redis what a claim would (a pacing slot, then the circuit), and if the call may go the
submission inserts the job already `running` as attempt 1, leased, with the call's
`started` row, in one commit (`jobs.lifecycle.create_running`); this thread then makes the
call (`workers.service.make_call`). Where Redis says wait (no pacing slot, the circuit open
or its half-open probe taken), the job is inserted `queued` and run as before: the claim
through `execute_job`, which asks again and acts on the answer (a countdown, the next
candidate). Pacing is asked before the circuit, so a half-open probe is never taken for a
call that then waits for a slot.

What the first try cannot finish goes to the queue as it would from a worker: a retry
after its backoff (or a pacing wait) is published with that countdown, and a move to the
next candidate publishes itself (`workers.service.move_on`); the request then waits for
the job as a queued one does. An unexpected error here publishes the job too, so a worker
finishes it; a claim that lost to another runner does nothing. If the API process dies
mid-call, the job is `running` with a lease nobody renews: the sweeper puts it back after
the lease and a worker records the lost call, as for a worker that died. A job inserted
`running` has no moment between its insert and its claim, so it needs no other record; one
inserted `queued` for a run here does: the submission records it in Redis first
(`jobs.dispatch.mark_run_here`), and if the process dies before the claim the sweeper
publishes it a lease later.

The composition root hands this to the API as a callable (the API never imports workers/).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from jobs.answered import Ran
from jobs.spec import JobSpec
from jobs.status import TERMINAL, JobStatus
from jobs.submit import Started
from routing.service import Route
from storage.models import Job
from workers import pacing
from workers.attempt import circuit_allows
from workers.context import WorkerContext
from workers.logcontext import bound_job
from workers.service import Outcome, call_of, execute_job, make_call

log = logging.getLogger(__name__)


def open_first(
    ctx: WorkerContext, route: Route, spec: JobSpec, *, circuit_closed: bool = False
) -> pacing.Slot | None:
    """May the job about to be inserted make its first call now? A pacing slot to hold while
    it runs, or None (no slot, the circuit refuses, a streamed job): insert it `queued`.
    `circuit_closed`: the submission's plan has just read the circuit closed, where `allow`
    would let the call go without writing anything; the breaker's script is asked only
    when the plan saw it otherwise (open past its deadline or half-open: the probe must be
    taken by the script, atomically)."""
    if spec.stream:
        return None
    slot = ctx.pacer.acquire(route.provider)
    if slot is None:
        return None
    if not circuit_closed and not circuit_allows(ctx.breaker, route.breaker_key):
        slot.release()
        return None
    return slot


def run_here(ctx: WorkerContext, job_id: str, started: Started | None = None) -> Ran:
    """Run the job's first try in this thread (`started`: inserted already claimed, with its
    gate open); hand what is left to the queue. Ended when the job has ended (committed), so
    the caller need not wait for it; with the answer when this run ended it with one that
    needs no read-back (`jobs.answered`)."""
    with bound_job(job_id):
        try:
            outcome = run_started(ctx, started) if started else execute_job(ctx, job_id)
        except Exception:
            log.exception("job %s: running it in the API failed; handing it to a worker", job_id)
            to_queue(ctx, job_id, None)
            return Ran(ended=False)
    if outcome.retry_in is not None:
        to_queue(ctx, job_id, outcome.retry_in)
    return Ran(ended=outcome.status in TERMINAL, answered=outcome.answered)


def run_started(ctx: WorkerContext, started: Started) -> Outcome:
    slot = started.gate
    assert isinstance(slot, pacing.Slot)
    return make_call(ctx, call_of(started.claimed), slot)


def to_queue(ctx: WorkerContext, job_id: str, countdown: float | None) -> None:
    """Publish the job on its current queue if it is still waiting for a run."""
    with ctx.sessions() as session:
        row = session.execute(
            select(Job.queue, Job.priority, Job.status).where(Job.id == job_id)
        ).one_or_none()
    if row is not None and row.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        ctx.dispatcher.publish(job_id, row.queue, row.priority, countdown=countdown)
