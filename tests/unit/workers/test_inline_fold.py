"""The inline run with the insert and the claim folded (`workers/inline.py`): when the first
call may go now, the sync job is inserted `running` with its `started` row in one commit, no
`llmgw:inline` mark, and the call follows; when Redis says wait (no pacing slot, circuit
open), the job is inserted `queued`, marked, and run by the claim path as before. A process
that dies after the folded commit leaves a leased `running` job: the sweeper puts it back and
the next claim logs the call as lost."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import event, update

from jobs.answered import Answered
from jobs.spec import JobRequest
from routing.breaker import CircuitsSeen
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
    """Through the runtime's submitter; its plan reads the same breaker as the run."""
    submitter = dataclasses.replace(
        runtime.submitter, dispatcher=ctx.dispatcher, circuits=ctx.breaker
    )
    return submitter.submit("owner", REQUEST, dispatch=False, opener=partial(open_first, ctx), **kw)


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
    """The plan saw the first candidate's circuit half-open (neither open nor closed), and
    its probe was taken by another caller before this one asked."""

    def __init__(self, refused: str) -> None:
        self.refused = refused

    def look(self, keys) -> CircuitsSeen:
        return CircuitsSeen(closed=frozenset(keys) - {self.refused})

    def allow(self, key: str) -> bool:
        return key != self.refused

    def is_open(self, key: str) -> bool:
        return key == self.refused


class CountingBreaker:
    """The real breaker, counting the `allow` scripts run."""

    def __init__(self, breaker) -> None:
        self.breaker, self.allowed = breaker, 0

    def look(self, keys) -> CircuitsSeen:
        return self.breaker.look(keys)

    def allow(self, key: str) -> bool:
        self.allowed += 1
        return self.breaker.allow(key)

    def record_success(self, key: str) -> str:
        return self.breaker.record_success(key)

    def record_failure(self, key: str) -> str:
        return self.breaker.record_failure(key)

    def is_open(self, key: str) -> bool:
        return self.breaker.is_open(key)


PRIMARY = keys.circuit_id("yandexgpt", "yandexgpt", "latest")


def test_a_circuit_the_plan_saw_closed_is_not_asked_again(runtime, provider):
    breaker = CountingBreaker(runtime.breaker)
    ctx = dataclasses.replace(context(runtime, provider), breaker=breaker)

    submitted = submit(runtime, ctx)

    assert submitted.started is not None and breaker.allowed == 0
    assert run_here(ctx, submitted.job_id, submitted.started).ended is True


def test_a_half_open_circuit_is_probed_by_the_script_and_the_probe_is_taken_once(runtime, provider):
    """Open past its deadline: the plan lets the candidate stay but did not see it closed,
    so the breaker's script takes the probe; a second request then finds it taken."""
    breaker = CountingBreaker(runtime.breaker)
    ctx = dataclasses.replace(context(runtime, provider), breaker=breaker)
    for _ in range(50):
        runtime.breaker.record_failure(PRIMARY)
    runtime.redis.hset(keys.circuit(PRIMARY), "open_until", 0)  # the cooldown is over

    probe = submit(runtime, ctx)

    assert breaker.allowed == 1 and probe.started is not None
    assert probe.started.claimed.channel == "latest"
    assert runtime.breaker.state(PRIMARY).state == "half_open"
    second = submit(runtime, ctx)  # the plan now sees the probe taken: the next candidate
    assert second.started is not None and second.started.claimed.channel != "latest"


def test_a_circuit_that_refuses_gives_the_slot_back_and_the_claim_moves_on(runtime, provider):
    ctx = dataclasses.replace(context(runtime, provider), breaker=RefusingBreaker(PRIMARY))

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
