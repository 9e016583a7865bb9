"""A 100 % 5xx storm on one route: its circuit opens, traffic falls back to the next channel
(no client sees a failure), and once the storm is over the circuit closes again and the
route serves again."""

from __future__ import annotations

import time

import requests

from jobs.spec import JobRequest
from storage import keys
from storage.models import Job

STORM_SECONDS = 30
RC = keys.circuit_id("gigachat", "GigaChat", "rc")


def test_a_5xx_storm_opens_the_circuit_falls_back_and_recovers(stack):
    requests.post(f"{stack.emulator}/_emulator/latency", json={"latency": 0.05}, timeout=5)
    storm = {"kind": "http_500", "model": "GigaChat", "branch": "rc"}  # GigaChat-preview
    requests.post(f"{stack.emulator}/_emulator/faults", json=storm, timeout=5).raise_for_status()
    stack.start_worker(concurrency=8)
    request = JobRequest(model="GigaChat:rc", messages=[{"role": "user", "content": "Привет"}])
    submitted, opened_at, started = 0, None, time.monotonic()
    while time.monotonic() - started < STORM_SECONDS:
        for _ in range(5):
            stack.container.submitter.submit("master", request)
            submitted += 1
        if opened_at is None and stack.container.breaker.state(RC).state == "open":
            opened_at = time.monotonic() - started
        time.sleep(1)
    assert opened_at is not None, "the circuit never opened"
    counts = stack.wait_all_terminal(timeout=60)
    assert counts == {"succeeded": submitted}, counts  # every job fell back to latest
    requests.delete(f"{stack.emulator}/_emulator/faults", timeout=5)
    storm_over = time.monotonic()
    served_by_rc = None
    while time.monotonic() - storm_over < 90 and served_by_rc is None:
        job_id = stack.container.submitter.submit("master", request).job_id
        stack.wait_all_terminal(timeout=30)
        with stack.container.sessions() as session:
            if session.get_one(Job, job_id).channel == "rc":
                served_by_rc = time.monotonic() - storm_over
        time.sleep(1)
    assert served_by_rc is not None, "the route never came back"
    assert stack.container.breaker.state(RC).state == "closed"
    assert stack.unlogged_calls() == {}
    print(
        f"circuit storm: {submitted} jobs in {STORM_SECONDS} s, all succeeded; circuit open "
        f"after {opened_at:.1f} s; rc served again {served_by_rc:.1f} s after the storm"
    )
