"""Killing real processes under load: Redis and a worker, mid-run.

Each experiment ends with: every job in exactly one terminal state (all of them succeeded
here: the provider never failed), the worker (or its replacement) alive, and no call the
provider received missing from the attempt log — a call lost with its worker stays in the log
as `lost`."""

from __future__ import annotations

import os
import signal
import time

import pytest

JOBS = 60
# Recovery waits out the lease of the killed calls (45 s) and a sweep; the bound that matters is
# `wait_all_terminal`'s, so the test as a whole gets more than pytest's default 120 s.
pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.stack_settings(job_requeue_after_seconds=10, sweeper_interval_seconds=2)
def test_redis_killed_mid_run_the_worker_reconnects_and_every_job_ends(stack, how):
    """Redis's AOF is fsynced every second, so messages published in the last second before
    the kill can be gone: their jobs stay `queued` and the sweeper publishes them again."""
    stack.start_beat()
    stack.start_worker()
    stack.submit(JOBS)
    stack.wait_for_calls_in_flight()  # calls in flight, more waiting
    stack.kill_redis(how)
    time.sleep(3.0)
    stack.restart_redis()
    back = time.monotonic()
    counts = stack.wait_all_terminal(timeout=180)
    recovered_in = time.monotonic() - back
    assert counts == {"succeeded": JOBS}, counts
    assert stack.worker.poll() is None, "the worker died with Redis"
    logged = stack.logged_calls()
    assert stack.provider_calls() <= sum(logged.values()), logged
    assert logged["succeeded"] == JOBS and logged["started"] == 0
    assert stack.unlogged_calls() == {}
    print(
        f"redis {how.name}: {JOBS} jobs, {dict(counts)}, {stack.provider_calls()} calls received, "
        f"{dict(logged)} logged, all ended {recovered_in:.1f} s after Redis came back"
    )


# Leases of 10 s: a lease renewal waits for SQLite's write lock like any writer, and on a
# loaded machine a 6 s lease could lapse under a live worker (its job then runs twice).
@pytest.mark.stack_settings(job_lease_seconds=10, sweeper_interval_seconds=2)
def test_worker_sigkill_mid_call_every_job_recovers_and_lost_calls_are_logged(stack):
    stack.start_beat()
    worker = stack.start_worker()
    stack.submit(JOBS)
    stack.wait_for_calls_in_flight()  # the first calls are in flight (2 s each)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    started = time.monotonic()
    stack.start_worker()
    counts = stack.wait_all_terminal(timeout=180)
    recovered_in = time.monotonic() - started
    assert counts == {"succeeded": JOBS}, counts
    logged = stack.logged_calls()
    received = stack.provider_calls()
    assert logged["started"] == 0 and logged["succeeded"] == JOBS
    assert logged["lost"] >= 1, logged  # the killed worker's calls are in the log
    # Every call the provider received is logged; a logged call may have died before sending.
    assert received <= sum(logged.values()) <= received + logged["lost"], (received, logged)
    assert stack.unlogged_calls() == {}
    print(
        f"worker kill: {JOBS} jobs, {received} calls received, {dict(logged)} logged, "
        f"all ended {recovered_in:.1f} s after the new worker started"
    )


@pytest.mark.stack_settings(
    job_lease_seconds=10, sweeper_interval_seconds=2, gigachat_max_in_flight=4
)
def test_worker_sigkill_while_jobs_wait_out_countdowns_they_run_without_waiting_for_requeue(stack):
    """Four calls at a time: many jobs sit in the worker as countdown (ETA) messages, `queued`
    and in no queue list. Killed, the worker takes them along; the sweeper publishes them again
    once its beat is a lease old (`workers.held`), long before `requeue_after_seconds`."""
    assert stack.settings.job_requeue_after_seconds >= 900
    stack.start_beat()
    worker = stack.start_worker()
    stack.submit(JOBS)
    stack.wait_for_calls_in_flight()
    deadline = time.monotonic() + 10  # the jobs without a slot are back with a countdown
    while (held := stack.held_by_workers()) < JOBS // 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert held >= JOBS // 4, held  # many of them are in the worker, not in Redis's lists
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    started = time.monotonic()
    stack.start_worker()
    counts = stack.wait_all_terminal(timeout=150)
    recovered_in = time.monotonic() - started
    assert counts == {"succeeded": JOBS}, counts
    logged = stack.logged_calls()
    assert logged["started"] == 0 and logged["succeeded"] == JOBS
    assert stack.unlogged_calls() == {}
    print(f"countdowns: {held} jobs held by the killed worker; all ended in {recovered_in:.1f} s")
