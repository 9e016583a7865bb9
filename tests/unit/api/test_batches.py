"""`/v1/batches`: creation (JSON and JSONL), the shapes, cancel, output; the feeder in-process
with a dispatcher that records instead of publishing (unit tests have no broker)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest
from sqlalchemy import select, update

from jobs import batches, lifecycle
from jobs.feeder import FeedPolicy, feed_batches
from storage.models import Batch, BatchLine, Job

START = datetime(2026, 1, 1)


def line(custom_id: str, model: str = "yandexgpt") -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": f"say {custom_id}"}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


@pytest.fixture(autouse=True)
def no_kick(unit_runtime, monkeypatch):
    kicks: list[int] = []
    monkeypatch.setattr(type(unit_runtime), "kick_feeder", lambda self: kicks.append(1))
    return kicks


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, str]] = []

    def publish(self, job_id: str, queue: str, priority: str = "interactive") -> None:
        self.published.append((job_id, queue, priority))


def feed(runtime, window: int = 200, cap: int | None = None) -> Recorder:
    recorder = Recorder()
    submitter = dataclasses.replace(runtime.submitter, dispatcher=recorder)
    feed_batches(runtime.sessions, runtime.redis, submitter, FeedPolicy(window, cap))
    return recorder


def create(client, auth, requests, **options):
    return client.post("/v1/batches", json={"requests": requests, **options}, headers=auth)


def test_json_batch_is_created_in_progress_with_counts(unit_client, master_auth, no_kick):
    response = create(unit_client, master_auth, [line("a"), line("b")], metadata={"k": "v"})
    body = response.get_json()
    assert response.status_code == 201, body
    assert body["object"] == "batch" and body["status"] == "in_progress"
    assert body["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
    assert body["metadata"] == {"k": "v"} and body["expires_at"].endswith("Z")
    assert no_kick == [1]
    got = unit_client.get(f"/v1/batches/{body['id']}", headers=master_auth).get_json()
    assert got["id"] == body["id"]
    listed = unit_client.get("/v1/batches", headers=master_auth).get_json()
    assert [b["id"] for b in listed["data"]] == [body["id"]] and listed["has_more"] is False


def test_jsonl_body_with_bad_lines_is_a_400_naming_them(unit_client, master_auth):
    text = "\n".join([json.dumps(line("a")), "{oops", json.dumps(line("a"))])
    headers = {**master_auth, "Content-Type": "application/jsonl"}
    response = unit_client.post("/v1/batches", data=text, headers=headers)
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_batch"
    assert [p["line"] for p in error["lines"]] == [2, 3]
    assert "line 2" in error["message"]


def test_on_invalid_skip_runs_the_valid_lines_and_reports_the_rest(unit_client, master_auth):
    text = "\n".join([json.dumps(line("a")), "{oops"])
    headers = {**master_auth, "Content-Type": "application/jsonl"}
    response = unit_client.post("/v1/batches?on_invalid=skip", data=text, headers=headers)
    body = response.get_json()
    assert response.status_code == 201
    assert body["request_counts"]["total"] == 1
    assert body["invalid_lines"][0]["line"] == 2


def test_other_media_types_are_still_refused(unit_client, master_auth):
    headers = {**master_auth, "Content-Type": "text/csv"}
    assert unit_client.post("/v1/batches", data="a,b", headers=headers).status_code == 415


def test_feeder_keeps_a_bounded_window_and_counts_line_ends(unit_client, unit_runtime, master_auth):
    batch_id = create(unit_client, master_auth, [line(str(i)) for i in range(5)]).get_json()["id"]
    first = feed(unit_runtime, window=2)
    assert len(first.published) == 2 and {p[2] for p in first.published} == {"batch"}
    assert len(feed(unit_runtime, window=2).published) == 0  # the window is full
    job_ids = [p[0] for p in first.published]
    finish(unit_runtime, job_ids[0], "succeeded")
    finish(unit_runtime, job_ids[1], "failed")
    counts = unit_client.get(f"/v1/batches/{batch_id}", headers=master_auth).get_json()
    assert counts["request_counts"] == {"total": 5, "completed": 1, "failed": 1}
    assert len(feed(unit_runtime, window=2).published) == 2
    output = unit_client.get(f"/v1/batches/{batch_id}/output", headers=master_auth)
    assert output.mimetype == "application/jsonl"
    [answer] = [json.loads(x) for x in output.get_data(as_text=True).splitlines()]
    assert answer["custom_id"] == "0" and answer["response"]["body"]["object"] == "chat.completion"
    assert answer["model_version"] == "v1"
    errors = unit_client.get(f"/v1/batches/{batch_id}/errors", headers=master_auth)
    [error] = [json.loads(x) for x in errors.get_data(as_text=True).splitlines()]
    assert error["custom_id"] == "1" and error["error"]["code"] == "boom"


def test_the_cap_bounds_batch_lines_in_flight_across_batches(
    unit_client, unit_runtime, master_auth
):
    for name in ("a", "b"):
        create(unit_client, master_auth, [line(f"{name}{i}") for i in range(4)])
    first = feed(unit_runtime, window=3, cap=4)
    assert len(first.published) == 4  # the first batch's window (3), then 1 of the second
    assert feed(unit_runtime, window=3, cap=4).published == []  # the cap is held
    finish(unit_runtime, first.published[0][0], "succeeded")
    assert len(feed(unit_runtime, window=3, cap=4).published) == 1  # one line ended: one more


def test_cancel_stops_feeding_and_cancels_queued_lines(unit_client, unit_runtime, master_auth):
    batch_id = create(unit_client, master_auth, [line(str(i)) for i in range(4)]).get_json()["id"]
    fed = feed(unit_runtime, window=2)
    cancelled = unit_client.post(f"/v1/batches/{batch_id}/cancel", headers=master_auth)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelling"
    assert feed(unit_runtime).published == []  # its run finalizes it, feeding nothing
    got = unit_client.get(f"/v1/batches/{batch_id}", headers=master_auth).get_json()
    assert got["status"] == "cancelled" and got["cancelled_at"]
    with unit_runtime.sessions() as session:
        statuses = {session.get_one(Job, job_id).status for job_id, _, _ in fed.published}
        outcomes = session.scalars(select(BatchLine.outcome)).all()
    assert statuses == {"cancelled"} and set(outcomes) == {"cancelled"}
    again = unit_client.post(f"/v1/batches/{batch_id}/cancel", headers=master_auth)
    assert again.status_code == 409
    errors = unit_client.get(f"/v1/batches/{batch_id}/errors", headers=master_auth)
    assert len(errors.get_data(as_text=True).splitlines()) == 4


def test_reconciliation_recounts_and_completes(unit_client, unit_runtime, master_auth):
    batch_id = create(unit_client, master_auth, [line("a")]).get_json()["id"]
    [(job_id, _, _)] = feed(unit_runtime).published
    with unit_runtime.sessions() as session:  # ended without the hook (e.g. DELETE /v1/jobs)
        lifecycle.cancel(session, job_id)
        session.execute(update(Job).where(Job.id == job_id).values(status="succeeded"))
        session.commit()
    feed(unit_runtime)
    body = unit_client.get(f"/v1/batches/{batch_id}", headers=master_auth).get_json()
    assert body["status"] == "completed" and body["request_counts"]["completed"] == 1
    assert body["completed_at"] is not None


def test_unknown_model_fails_its_line_at_feeding(unit_client, unit_runtime, master_auth):
    batch_id = create(unit_client, master_auth, [line("a", model="nope")]).get_json()["id"]
    assert feed(unit_runtime).published == []
    feed(unit_runtime)
    body = unit_client.get(f"/v1/batches/{batch_id}", headers=master_auth).get_json()
    assert body["status"] == "completed" and body["request_counts"]["failed"] == 1


def test_a_key_sees_only_its_batches(unit_client, master_auth):
    created = unit_client.post("/v1/admin/keys", json={"name": "svc"}, headers=master_auth)
    other = {"Authorization": f"Bearer {created.get_json()['key']}"}
    batch_id = create(unit_client, master_auth, [line("a")]).get_json()["id"]
    assert unit_client.get(f"/v1/batches/{batch_id}", headers=other).status_code == 404
    assert unit_client.get("/v1/batches", headers=other).get_json()["data"] == []


def finish(runtime, job_id: str, status: str) -> None:
    """End a fed job as a worker would: the transition, then the batch hook."""
    result = {
        "content": "ok",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "provider": "yandexgpt",
        "model": "yandexgpt",
        "channel": "latest",
        "model_version": "v1",
    }
    with runtime.sessions() as session:
        number = lifecycle.claim(session, job_id, 45).number
        if status == "succeeded":
            lifecycle.finish(session, job_id, number, lifecycle.JobStatus.SUCCEEDED, result=result)
        else:
            lifecycle.fail(session, job_id, number, "boom", "it broke")
        batches.line_ended(session, job_id, status)
        session.commit()


def test_admission_applies_as_lines_are_fed(unit_client, unit_runtime, master_auth):
    body = {"name": "svc", "limits": [{"requests_per_minute": 2}]}
    created = unit_client.post("/v1/admin/keys", json=body, headers=master_auth).get_json()
    auth = {"Authorization": f"Bearer {created['key']}"}
    batch_id = create(unit_client, auth, [line(str(i)) for i in range(5)]).get_json()["id"]
    assert len(feed(unit_runtime).published) == 2  # the third line is refused: feeding pauses
    assert len(feed(unit_runtime).published) == 0
    got = unit_client.get(f"/v1/batches/{batch_id}", headers=auth).get_json()
    assert got["status"] == "in_progress" and got["request_counts"]["failed"] == 0


def test_a_batch_past_its_window_expires_and_its_lines_are_cancelled(
    unit_client, unit_runtime, master_auth
):
    batch_id = create(unit_client, master_auth, [line("a"), line("b")]).get_json()["id"]
    fed = feed(unit_runtime, window=1)
    with unit_runtime.sessions() as session:
        session.execute(update(Batch).where(Batch.id == batch_id).values(expires_at=START))
        session.commit()
    feed(unit_runtime)
    got = unit_client.get(f"/v1/batches/{batch_id}", headers=master_auth).get_json()
    assert got["status"] == "expired" and got["expired_at"]
    with unit_runtime.sessions() as session:
        assert session.get_one(Job, fed.published[0][0]).status == "cancelled"
    errors = unit_client.get(f"/v1/batches/{batch_id}/errors", headers=master_auth)
    assert len(errors.get_data(as_text=True).splitlines()) == 2
