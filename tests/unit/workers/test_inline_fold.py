"""The inline run with the insert and the claim folded (`workers/inline.py`): when the first
call may go now, the sync job is inserted `running` with its `started` row in one commit, no
`llmgw:inline` mark, and the call follows; when Redis says wait (no pacing slot, circuit
open), the job is inserted `queued`, marked, and run by the claim path as before. A process
that dies after the folded commit leaves a leased `running` job: the sweeper puts it back and
the next claim logs the call as lost."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from jobs.answered import Answered
from jobs.spec import JobRequest
from storage import keys
from storage.models import Job, utcnow
from tests.unit.workers.fakes import SeeingProvider, attempt_rows
from workers import pacing
from workers.inline import open_first, run_here
from workers.service import execute_job
from workers.sweeper import sweep

REQUEST = JobRequest(model="yandexgpt:latest", messages=[{"role": "user", "content": "Hi"}])


class Published(list):
    """Stands in for the broker."""

    def publish(self, job_id, queue, priority="interactive", countdown=None) -> None:
        self.append((job_id, countdown))


class CountingPacer:
    """Gives a slot or none, and counts the slots given back."""

    def __init__(self, free: bool) -> None:
        self.free, self.released = free, 0

    def acquire(self, provider: str) -> pacing.Slot | None:
        return pacing.Slot(provider, "t", "h", self) if self.free else None  # type: ignore[arg-type]

    def give_back(self, slot: pacing.Slot) -> None:
        self.released += 1


def job_row(runtime, job_id) -> tuple[str, int]:
    with runtime.sessions() as session:
        job = session.get_one(Job, job_id)
        return job.status, job.attempt_count


@pytest.fixture()
def provider(runtime):
    return SeeingProvider(runtime)


def context(runtime, provider, *, free: bool = True):
    return dataclasses.replace(
        runtime.worker_context,
        providers=lambda name: provider,
        dispatcher=Published(),
        pacer=CountingPacer(free),
    )


def submit(runtime, ctx, **kw):
    submitter = dataclasses.replace(runtime.submitter, dispatcher=ctx.dispatcher)
    return submitter.submit(
        "owner", REQUEST, dispatch=False, opener=lambda r, s: open_first(ctx, r, s), **kw
    )


def marked(runtime) -> list[bytes]:
    return runtime.redis.zrange(keys.INLINE_JOBS, 0, -1)


def test_a_call_that_may_go_is_inserted_claimed_in_one_commit(runtime, provider):
    ctx = context(runtime, provider)
    commits: list[int] = []
    event.listen(runtime.engine, "commit", lambda conn: commits.append(1))

    submitted = submit(runtime, ctx)

    assert submitted.started is not None and submitted.started.claimed.number == 1
    assert len(commits) == 1  # the job, its claim and its `started` row together
    assert job_row(runtime, submitted.job_id) == ("running", 1)
    assert attempt_rows(runtime, submitted.job_id) == [(1, "started")]
    assert marked(runtime) == []  # no moment between insert and claim to cover

    assert run_here(ctx, submitted.job_id, submitted.started).ended is True

    assert provider.seen == [("running", [(1, "started")])]
    assert len(commits) == 2  # and the record: two commits a request, not three
    assert attempt_rows(runtime, submitted.job_id) == [(1, "succeeded")]
    assert ctx.pacer.released == 1 and ctx.dispatcher == []


def read_back(runtime, job_id) -> Answered:
    with runtime.sessions() as session:
        return Answered.of_job(session.get_one(Job, job_id))


def test_the_run_that_ends_the_job_holds_its_answer_as_committed(runtime, provider):
    """What the sync view answers from without a read-back equals the job read back."""
    ctx = context(runtime, provider)
    submitted = submit(runtime, ctx)

    ran = run_here(ctx, submitted.job_id, submitted.started)

    assert ran.ended and ran.answered is not None
    assert ran.answered == read_back(runtime, submitted.job_id)
    assert (ran.answered.calls, ran.answered.fallbacks) == (1, 0)


def test_a_job_claimed_after_a_queued_insert_is_read_back(runtime, provider):
    """Inserted `queued` (no slot then), the run does not know when the row was created nor
    what came before its call: no answer held, the view reads the job back."""
    ctx = context(runtime, provider, free=False)
    submitted = submit(runtime, ctx)
    ctx.pacer.free = True

    outcome = execute_job(ctx, submitted.job_id)

    assert outcome.status == "succeeded" and outcome.answered is None


def test_no_pacing_slot_inserts_it_queued_and_marked_and_the_wait_goes_to_the_queue(
    runtime, provider
):
    ctx = context(runtime, provider, free=False)
    submitted = submit(runtime, ctx)

    assert submitted.started is None
    assert job_row(runtime, submitted.job_id) == ("queued", 0)
    assert marked(runtime) == [submitted.job_id.encode()]

    assert run_here(ctx, submitted.job_id, submitted.started).ended is False

    assert provider.seen == [] and attempt_rows(runtime, submitted.job_id) == []
    [(job_id, countdown)] = ctx.dispatcher
    assert job_id == submitted.job_id and countdown is not None and countdown > 0


class RefusingBreaker:
    """The first candidate's circuit opened between the plan and the call."""

    def __init__(self, refused: str) -> None:
        self.refused = refused

    def allow(self, key: str) -> bool:
        return key != self.refused

    def is_open(self, key: str) -> bool:
        return key == self.refused


def test_a_circuit_that_refuses_gives_the_slot_back_and_the_claim_moves_on(runtime, provider):
    circuit = keys.circuit_id("yandexgpt", "yandexgpt", "latest")
    ctx = dataclasses.replace(context(runtime, provider), breaker=RefusingBreaker(circuit))

    submitted = submit(runtime, ctx)

    assert submitted.started is None and ctx.pacer.released == 1
    assert job_row(runtime, submitted.job_id) == ("queued", 0)
    assert marked(runtime) == [submitted.job_id.encode()]
    assert run_here(ctx, submitted.job_id, submitted.started).ended is False  # today's path
    assert provider.seen == []
    assert attempt_rows(runtime, submitted.job_id) == [(1, "skipped")]
    assert [job for job, _ in ctx.dispatcher] == [submitted.job_id]  # on the next candidate


def test_a_candidate_the_plan_skipped_changes_nothing_the_primary_is_run_folded(runtime, provider):
    """As on the claim path: the job's route is the plan's first usable candidate."""
    ctx = context(runtime, provider)
    for _ in range(50):
        runtime.breaker.record_failure(keys.circuit_id("yandexgpt", "yandexgpt", "latest"))

    submitted = submit(runtime, ctx)

    assert submitted.started is not None
    assert submitted.started.claimed.channel != "latest"
    assert run_here(ctx, submitted.job_id, submitted.started).ended is True
    assert attempt_rows(runtime, submitted.job_id) == [(1, "succeeded")]


def test_an_idempotent_replay_gives_its_slot_back(runtime, provider):
    ctx = context(runtime, provider)
    first = submit(runtime, ctx, idempotency_key="k")
    assert run_here(ctx, first.job_id, first.started).ended
    replay = submit(runtime, ctx, idempotency_key="k")
    assert (replay.job_id, replay.created, replay.started) == (first.job_id, False, None)
    assert ctx.pacer.released == 2


def test_a_process_dead_after_the_folded_commit_leaves_a_job_the_sweeper_brings_back(
    runtime, provider
):
    ctx = context(runtime, provider)
    submitted = submit(runtime, ctx)  # ... and the process dies before the call's end
    with runtime.sessions() as session:  # a lease later, nobody renewed it
        lapsed = utcnow() - timedelta(seconds=ctx.sweep.lease_seconds + 1)
        session.execute(update(Job).where(Job.id == submitted.job_id).values(updated_at=lapsed))
        session.commit()
    runtime.redis.delete(keys.SWEEPER_LOCK)

    assert sweep(ctx) == 1
    assert [job for job, _ in ctx.dispatcher] == [submitted.job_id]
    assert execute_job(ctx, submitted.job_id).status == "succeeded"  # a worker takes it

    assert provider.seen == [("running", [(1, "lost"), (2, "started")])]
    assert attempt_rows(runtime, submitted.job_id) == [(1, "lost"), (2, "succeeded")]
