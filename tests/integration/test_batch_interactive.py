"""Batch lines never starve interactive work (docs/batches.md, "Interactive work first"), on
the real pipeline: HTTP API → feeder on a real worker (16 threads) → both emulators.

The emulators hold every call 6 s, so a thread a batch line holds stays held that long. The
bound is checked structurally, not by a stopwatch: the feeder never has more batch lines in
flight than its cap (half the worker's threads), so a thread is always free, and an
interactive job submitted while the batch holds its cap is claimed before any batch line
then running has ended — it does not wait for a thread. Without the cap the batch's window
(200 lines) takes every thread, and the interactive job is claimed only when a line ends.
A generous time bound (2 s, which an idle gateway meets by far) is checked beside it."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from jobs.status import ACTIVE
from storage.models import BatchLine, Job
from tests.integration.test_batches import MODELS, create

pytestmark = pytest.mark.integration

CALL_SECONDS = 6.0
SETTLE_SECONDS = 1.0  # the batch's lines running, unchanged this long: the feeder is done
WORKER_THREADS = 16  # tests.helpers.start_worker
CAP = WORKER_THREADS // 2  # the default LLMGW_BATCH_MAX_IN_FLIGHT
WAIT_BOUND_SECONDS = 2.0


@pytest.fixture()
def held_calls(emulators):
    for url in emulators.values():
        requests.post(f"{url}/_emulator/latency", json={"latency": CALL_SECONDS}, timeout=5)
    yield emulators
    for url in emulators.values():
        requests.post(f"{url}/_emulator/latency", json={"latency": 0.0}, timeout=5)


def batch_jobs_active(session, batch_id: str, status=ACTIVE) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Job)
            .join(BatchLine, BatchLine.job_id == Job.id)
            .where(BatchLine.batch_id == batch_id, Job.status.in_(status))
        )
        or 0
    )


@pytest.mark.timeout(180)
def test_an_interactive_job_never_waits_for_a_batch_line_to_end(
    worker, client, auth, runtime, held_calls
):
    lines = 2 * WORKER_THREADS  # enough to take every thread without the cap
    batch = create(client, auth, lines)
    peak, stop = [0], threading.Event()

    def watch() -> None:  # batch lines in flight, sampled through the whole run
        while not stop.is_set():
            with runtime.sessions() as session:
                peak[0] = max(peak[0], batch_jobs_active(session, batch["id"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        deadline, seen, since = time.monotonic() + 60, 0, time.monotonic()
        while True:  # the batch holds all it can: its lines calling, their number settled
            with runtime.sessions() as session:
                running = batch_jobs_active(session, batch["id"], ("running",))
            if running != seen:
                seen, since = running, time.monotonic()
            if running >= CAP and time.monotonic() - since > SETTLE_SECONDS:
                break
            assert time.monotonic() < deadline, f"only {running} batch lines ever ran"
            time.sleep(0.05)
        probes = []
        for model in MODELS:
            body = {"model": model, "messages": [{"role": "user", "content": "probe"}]}
            response = client.post("/v1/jobs", json=body, headers=auth)
            assert response.status_code == 202, response.get_json()
            probes.append(response.get_json()["id"])
        deadline = time.monotonic() + 60
        while True:
            with runtime.sessions() as session:
                rows = session.execute(
                    select(Job.id, Job.created_at, Job.started_at).where(Job.id.in_(probes))
                ).all()
            if all(row.started_at for row in rows):
                break
            assert time.monotonic() < deadline, "a probe was never claimed"
            time.sleep(0.05)
        done = lambda: client.get(f"/v1/batches/{batch['id']}", headers=auth).get_json()  # noqa: E731
        deadline = time.monotonic() + 120
        while (state := done())["status"] == "in_progress":
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
    finally:
        stop.set()
        watcher.join()
    assert state["status"] == "completed", state
    assert state["request_counts"] == {"total": lines, "completed": lines, "failed": 0}
    with runtime.sessions() as session:
        for row in rows:
            # The batch lines running when the probe was submitted: none may have ended
            # before the probe was claimed (it would have waited for that line's thread).
            first_end = session.scalar(
                select(func.min(Job.finished_at))
                .join(BatchLine, BatchLine.job_id == Job.id)
                .where(BatchLine.batch_id == batch["id"])
                .where(Job.started_at <= row.created_at, Job.finished_at > row.created_at)
            )
            assert first_end is not None, "no batch line was running when the probe came"
            assert row.started_at < first_end, (row, first_end)
            waited = (row.started_at - row.created_at).total_seconds()
            assert waited < WAIT_BOUND_SECONDS, (row, waited)
    assert peak[0] <= CAP, f"{peak[0]} batch lines were in flight at once (cap {CAP})"
