"""An Idempotency-Key whose job could not be written is released, not left pointing at nothing."""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import text

from storage import keys

GOOD = {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет"}]}


def test_key_is_released_when_the_job_row_cannot_be_written(unit_client, unit_runtime, master_auth):
    with unit_runtime.engine.begin() as conn:  # the database refuses the insert for real
        conn.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))
    headers = {**master_auth, "Idempotency-Key": "order-7"}
    response = unit_client.post("/v1/jobs", json=GOOD, headers=headers)
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert unit_runtime.redis.get(keys.idempotency_key("master", "order-7")) is None


def test_reused_key_with_another_body_is_a_conflict_before_anything_is_written(
    unit_client, unit_runtime, master_auth
):
    owner_key = keys.idempotency_key("master", "order-8")
    unit_runtime.redis.set(owner_key, '{"job_id": "j1", "body_sha256": "something else"}')
    headers = {**master_auth, "Idempotency-Key": "order-8"}
    response = unit_client.post("/v1/jobs", json=GOOD, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    with unit_runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0


def ghost_claim(runtime, key: str, age_seconds: float) -> None:
    """A claim as an API process that died before its commit left it (the body's hash)."""
    from jobs.spec import JobRequest

    body_hash = hashlib.sha256(JobRequest.model_validate(GOOD).model_dump_json().encode())
    claim = {"job_id": "ghost", "body_sha256": body_hash.hexdigest(), "at": time.time()}
    claim["at"] -= age_seconds
    runtime.redis.set(keys.idempotency_key("master", key), json.dumps(claim))


def test_a_stale_claim_of_a_job_never_written_is_taken_over(unit_client, unit_runtime, master_auth):
    ghost_claim(unit_runtime, "order-9", age_seconds=120)
    headers = {**master_auth, "Idempotency-Key": "order-9"}
    first = unit_client.post("/v1/jobs", json=GOOD, headers=headers)
    # Past the key, the job is written; unit tests have no broker, so publishing fails (503).
    assert first.get_json()["error"]["code"] == "queue_unavailable"
    claim = json.loads(unit_runtime.redis.get(keys.idempotency_key("master", "order-9")))
    assert claim["job_id"] != "ghost"
    again = unit_client.post("/v1/jobs", json=GOOD, headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == claim["job_id"]


def test_a_fresh_claim_without_its_row_is_still_in_progress(unit_client, unit_runtime, master_auth):
    ghost_claim(unit_runtime, "order-10", age_seconds=1)
    headers = {**master_auth, "Idempotency-Key": "order-10"}
    response = unit_client.post("/v1/jobs", json=GOOD, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_in_use"
