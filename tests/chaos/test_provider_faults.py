"""The provider misbehaving at random: 5 % of calls answer 500. Retries absorb it: fewer
than 1 % of jobs fail for the client, and every call is in its job's attempt log."""

from __future__ import annotations

import requests

JOBS = 200


def test_five_percent_random_5xx_leave_under_one_percent_failed(stack):
    requests.post(f"{stack.emulator}/_emulator/latency", json={"latency": 0.05}, timeout=5)
    fault = {"kind": "http_500", "probability": 0.05, "seed": 7}
    requests.post(f"{stack.emulator}/_emulator/faults", json=fault, timeout=5).raise_for_status()
    stack.start_worker(concurrency=16)
    stack.submit(JOBS)
    counts = stack.wait_all_terminal(timeout=120)
    assert sum(counts.values()) == JOBS and set(counts) <= {"succeeded", "failed"}, counts
    assert counts["failed"] < JOBS * 0.01, counts
    logged = stack.logged_calls()
    assert logged["failed"] >= 1, logged  # the faults did fire, and were retried
    assert stack.unlogged_calls() == {}
    assert sum(stack.calls_by_job().values()) == sum(logged.values()), logged
    print(
        f"5 % 5xx: {JOBS} jobs, {dict(counts)}, {sum(stack.calls_by_job().values())} calls "
        f"received, {dict(logged)} logged"
    )
