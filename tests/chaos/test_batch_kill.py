"""A worker SIGKILLed midway through a batch: no line is lost, none gets a second job, and no
line's provider is called twice — except a call the killed worker had in flight, which the
attempt log shows as `lost` (its answer died with the worker, so the line is called again)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from jobs.batch_file import parse_jsonl
from jobs.batches import create_batch
from storage.models import Attempt, Batch, BatchLine

LINES = 300


def batch_file(n: int) -> str:
    body = {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}]}
    return "\n".join(
        json.dumps(
            {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
        for i in range(n)
    )


def batch_state(stack, batch_id: str) -> tuple[str, int, int]:
    with stack.container.sessions() as session:
        batch = session.get_one(Batch, batch_id)
        return batch.status, batch.completed, batch.failed


def wait_for(stack, batch_id: str, until, timeout: float) -> tuple[str, int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = batch_state(stack, batch_id)
        if until(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} timed out at {batch_state(stack, batch_id)}")


def lost_by_job(stack) -> Counter:
    with stack.container.sessions() as session:
        rows = session.execute(
            select(Attempt.job_id, func.count())
            .where(Attempt.outcome == "lost")
            .group_by(Attempt.job_id)
        ).all()
    return Counter(dict(rows))


@pytest.mark.timeout(420)
@pytest.mark.stack_settings(
    job_lease_seconds=6,
    job_requeue_after_seconds=10,  # a queued line whose message died with the worker
    sweeper_interval_seconds=2,
    idempotency_grace_seconds=5,  # a line whose submission the kill cut short
    batch_window=60,
    batch_feeder_interval_seconds=1,
)
def test_worker_sigkill_midway_through_a_batch_loses_no_line_and_calls_none_twice(stack):
    requests.post(f"{stack.emulator}/_emulator/latency", json={"latency": 0.3}, timeout=5)
    stack.start_beat()
    worker = stack.start_worker()
    batch_id = create_batch(stack.container.sessions, "master", parse_jsonl(batch_file(LINES)))
    stack.container.kick_feeder()
    wait_for(stack, batch_id, lambda s: s[1] >= LINES // 4, timeout=120)  # a quarter answered
    stack.wait_for_calls_in_flight()
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    killed_at = batch_state(stack, batch_id)
    stack.start_worker()
    status, completed, failed = wait_for(stack, batch_id, lambda s: s[0] != "in_progress", 240)
    assert (status, completed, failed) == ("completed", LINES, 0), (killed_at, status)
    assert killed_at[1] < LINES, "the worker was killed midway, not after the end"
    with stack.container.sessions() as session:
        jobs_of_lines = session.scalars(
            select(BatchLine.job_id).where(BatchLine.batch_id == batch_id)
        ).all()
    assert len(set(jobs_of_lines)) == LINES and None not in jobs_of_lines  # one job a line
    jobs = stack.statuses()
    assert jobs == {"succeeded": LINES}, jobs  # and no other job was ever made
    logged = stack.logged_calls()
    assert logged["succeeded"] == LINES and logged["started"] == 0, logged
    assert stack.unlogged_calls() == {}  # every call the provider received is logged
    calls, lost = stack.calls_by_job(), lost_by_job(stack)
    twice = {job: n for job, n in calls.items() if n - lost[job] > 1}
    assert twice == {}, twice  # beyond a call lost with its worker, one call a line
    assert set(calls) == set(jobs_of_lines)
    print(
        f"batch worker kill at {killed_at}: {LINES} lines, {sum(calls.values())} calls received, "
        f"{dict(logged)} logged"
    )
