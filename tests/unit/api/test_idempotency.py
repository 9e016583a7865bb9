"""An Idempotency-Key whose job could not be written is released, not left pointing at nothing."""

from __future__ import annotations

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
