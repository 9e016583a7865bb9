"""Batches at scale on the real pipeline (HTTP API → feeder on a real worker → both emulators):
a 1,000-line batch with injected provider faults ends with every line accounted for exactly
once, fed by the refills its own lines' ends kick (nothing here runs beat or kicks the feeder
after the batch's creation); and a batch past its completion window expires with its partial
results."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from jobs.batch_file import parse_jsonl
from jobs.batches import attach_job, cancel_batch, create_batch
from jobs.spec import JobRequest
from storage import keys
from storage.models import Attempt, Batch, BatchLine, Job, utcnow
from tests.integration.test_batches import create, jsonl, results

pytestmark = pytest.mark.integration

ENDED = ("completed", "failed", "expired", "cancelled")
FAULTS = [  # retryable 5xx on 10 % of calls, and 3 % refused for good (400: the line fails)
    {"kind": "http_400", "probability": 0.03, "seed": 11},
    {"kind": "http_500", "probability": 0.10, "seed": 7},
]


@pytest.fixture()
def faulty(emulators):
    for url in emulators.values():
        requests.post(f"{url}/_emulator/faults", json=FAULTS, timeout=5).raise_for_status()
    yield emulators
    for url in emulators.values():
        requests.delete(f"{url}/_emulator/faults", timeout=5).raise_for_status()


@pytest.fixture()
def slow(emulators):
    for url in emulators.values():
        requests.post(f"{url}/_emulator/latency", json={"latency": 0.3}, timeout=5)
    yield emulators
    for url in emulators.values():
        requests.post(f"{url}/_emulator/latency", json={"latency": 0.0}, timeout=5)


def poll(client, auth, batch_id: str, until, timeout: float, beat=None) -> dict:
    """Read the batch each half second until `until(batch)`; `beat()` each time if given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.get(f"/v1/batches/{batch_id}", headers=auth).get_json()
        if until(batch):
            return batch
        if beat is not None:
            beat()
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} timed out: {batch}")


def calls_received(emulators, job_ids: set[str]) -> Counter:
    calls: Counter = Counter()
    for url in emulators.values():
        log = requests.get(f"{url}/_emulator/requests", timeout=10).json()["requests"]
        calls.update(r["request_id"] for r in log if r["request_id"] in job_ids)
    return calls


@pytest.mark.timeout(480)  # 1,000 lines on a 16-thread worker, retries' countdowns included
def test_a_thousand_line_batch_with_faults_accounts_for_every_line_once(
    worker, client, auth, runtime, faulty
):
    lines = 1000
    batch = create(client, auth, lines)
    done = poll(client, auth, batch["id"], lambda b: b["status"] in ENDED, timeout=420)
    assert done["status"] == "completed", done
    output = results(client, auth, batch["id"], "output")
    errors = results(client, auth, batch["id"], "errors")
    seen = Counter(line["custom_id"] for line in output + errors)
    assert seen == Counter(f"req-{i}" for i in range(lines))  # each line exactly once
    counts = done["request_counts"]
    assert counts == {"total": lines, "completed": len(output), "failed": len(errors)}
    assert errors, "the permanent faults fired on some lines"
    assert {e["error"]["code"] for e in errors} <= {"bad_request", "upstream_5xx"}, errors[:3]
    with runtime.sessions() as session:
        job_ids = set(
            session.scalars(select(BatchLine.job_id).where(BatchLine.batch_id == batch["id"]))
        )
        logged = dict(
            session.execute(
                select(Attempt.job_id, func.count())
                .where(Attempt.job_id.in_(job_ids), Attempt.outcome != "skipped")
                .group_by(Attempt.job_id)
            ).all()
        )
        retried = session.scalar(
            select(func.count()).select_from(Job).where(Job.id.in_(job_ids), Job.attempt_count > 1)
        )
    assert len(job_ids) == lines and None not in job_ids  # one job per line, no duplicate
    assert retried, "the 5xx faults were retried"
    received = calls_received(faulty, job_ids)
    assert received == Counter(logged)  # every provider call is one logged attempt


@pytest.mark.timeout(240)
def test_a_batch_past_its_window_expires_with_partial_results(worker, client, auth, runtime, slow):
    lines = 300
    batch = create(client, auth, lines)
    poll(client, auth, batch["id"], lambda b: b["request_counts"]["completed"] >= 20, timeout=120)
    with runtime.sessions() as session:  # the completion window, shortened to what has passed
        session.execute(
            update(Batch)
            .where(Batch.id == batch["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    # The next refill round expires it, as does the beat's run (kicked here as beat would).
    ended = lambda b: b["status"] in ENDED  # noqa: E731
    done = poll(client, auth, batch["id"], ended, timeout=60, beat=runtime.kick_feeder)
    assert done["status"] == "expired", done
    assert done["expired_at"] is not None
    output = results(client, auth, batch["id"], "output")
    errors = results(client, auth, batch["id"], "errors")
    seen = Counter(line["custom_id"] for line in output + errors)
    assert seen == Counter(f"req-{i}" for i in range(lines))
    assert 20 <= len(output) < lines and done["request_counts"]["completed"] == len(output)
    assert {e["error"]["code"] for e in errors} == {"cancelled"}
    with runtime.sessions() as session:
        open_jobs = session.scalar(
            select(func.count())
            .select_from(Job)
            .join(BatchLine, BatchLine.job_id == Job.id)
            .where(BatchLine.batch_id == batch["id"], Job.status.in_(("queued", "running")))
        )
    assert open_jobs == 0


def test_a_line_whose_submission_was_left_half_done_waits_and_is_fed_later(
    worker, runtime, client, auth
):
    """A feeder killed inside `submit` leaves the line's Idempotency-Key claimed for a job
    never written: the line waits (it does not fail) until the claim is stale, then runs."""
    parsed = parse_jsonl(jsonl(40))
    batch_id = create_batch(runtime.sessions, "master", parsed)
    held = parsed.lines[2]
    body = JobRequest.model_validate(held.request).model_dump_json().encode()
    claim = {"job_id": "never-written", "body_sha256": hashlib.sha256(body).hexdigest()}
    key = keys.idempotency_key("master", f"batch:{batch_id}:{held.line}")
    runtime.redis.set(key, json.dumps({**claim, "at": time.time()}), ex=600)
    runtime.kick_feeder()
    others_ended = lambda b: b["request_counts"]["completed"] + b["request_counts"]["failed"] == 39  # noqa: E731
    waiting = poll(client, auth, batch_id, others_ended, 120)
    assert waiting["status"] == "in_progress" and waiting["request_counts"]["failed"] == 0
    with runtime.sessions() as session:
        line = session.get_one(BatchLine, (batch_id, held.line))
        assert (line.job_id, line.outcome) == (None, None)
    runtime.redis.set(key, json.dumps({**claim, "at": time.time() - 3600}), ex=600)  # stale
    done = poll(client, auth, batch_id, lambda b: b["status"] in ENDED, 60, runtime.kick_feeder)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 40, "completed": 40, "failed": 0}


def test_two_feeder_runs_recording_the_same_line_keep_its_job(runtime):
    """Two runs that both fed a line (one outlived its lock) got the same job through the
    line's Idempotency-Key; the second recording must not take it for a cancelled line."""
    parsed = parse_jsonl(jsonl(2))
    batch_id = create_batch(runtime.sessions, "master", parsed)
    first = parsed.lines[0]
    request = JobRequest.model_validate(first.request)
    key = f"batch:{batch_id}:{first.line}"
    job_ids = {runtime.submitter.submit("master", request, idempotency_key=key).job_id}
    job_ids.add(runtime.submitter.submit("master", request, idempotency_key=key).job_id)
    (job_id,) = job_ids
    assert attach_job(runtime.sessions, runtime.redis, batch_id, first.line, job_id)
    assert attach_job(runtime.sessions, runtime.redis, batch_id, first.line, job_id)
    with runtime.sessions() as session:
        assert session.get_one(Job, job_id).status != "cancelled"
        line = session.get_one(BatchLine, (batch_id, first.line))
        # A worker of the session may already have run the job: the line then has its end.
        assert line.job_id == job_id and line.outcome in (None, "succeeded"), line.outcome
        cancel_batch(runtime.sessions, runtime.redis, batch_id, None)  # leave nothing running
