"""Admission through the API: scopes, expiry, limits, 429 bodies and headers, settle, usage."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event, text

from jobs.admission import GATEWAY_TTL_SECONDS, settle_ended
from storage import keys
from storage.models import GatewayLimit

GOOD = {"model": "GigaChat", "messages": [{"role": "user", "content": "Привет, мир"}]}


class Published(list):
    def publish(self, job_id: str, queue: str, priority: str) -> None:
        self.append(job_id)


@pytest.fixture()
def published(unit_runtime):
    sent = Published()
    submitter = dataclasses.replace(unit_runtime.submitter, dispatcher=sent)
    unit_runtime.__dict__["submitter"] = submitter
    return sent


def new_key(client, master_auth, **settings):
    response = client.post("/v1/admin/keys", json={"name": "t", **settings}, headers=master_auth)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["id"], {"Authorization": f"Bearer {body['key']}"}


def job_count(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM jobs")).scalar()


def test_requests_per_minute_refuses_with_429_and_writes_nothing(
    unit_client, unit_runtime, master_auth, published
):
    _, auth = new_key(unit_client, master_auth, limits=[{"requests_per_minute": 2}])
    first = unit_client.post("/v1/jobs", json=GOOD, headers=auth)
    assert first.status_code == 202
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert unit_client.post("/v1/jobs", json=GOOD, headers=auth).status_code == 202
    refused = unit_client.post("/v1/jobs", json=GOOD, headers=auth)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert (error["code"], error["scope"], error["kind"], error["limit"]) == (
        "rate_limited",
        "key",
        "rpm",
        2,
    )
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert job_count(unit_runtime) == 2 and len(published) == 2
    # Every response to a limited key carries the figures, not only submissions.
    assert unit_client.get("/v1/usage", headers=auth).headers["x-ratelimit-limit-requests"] == "2"


def test_per_model_quota_and_gateway_limit(unit_client, unit_runtime, master_auth, published):
    limits = [{"model": "gigachat", "tokens_per_day": 5000}]
    _, auth = new_key(unit_client, master_auth, limits=limits)
    body = {**GOOD, "max_tokens": 3000}
    assert unit_client.post("/v1/jobs", json=body, headers=auth).status_code == 202
    refused = unit_client.post("/v1/jobs", json=body, headers=auth).get_json()["error"]
    assert (refused["code"], refused["scope"]) == ("quota_exceeded", "key:gigachat")
    put = unit_client.put(
        "/v1/admin/limits/GigaChat:latest", json={"concurrent_jobs": 1}, headers=master_auth
    )
    assert put.status_code == 200 and put.get_json()["model"] == "gigachat:latest"
    listed = unit_client.get("/v1/admin/limits", headers=master_auth).get_json()["data"]
    assert [(x["model"], x["concurrent_jobs"]) for x in listed] == [("gigachat:latest", 1)]
    assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202
    refused = unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).get_json()["error"]
    assert (refused["code"], refused["scope"]) == ("concurrency_limited", "gateway:gigachat:latest")
    gone = unit_client.delete("/v1/admin/limits/gigachat:latest", headers=master_auth)
    assert gone.status_code == 200
    assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202


def test_allowed_models_and_expiry(unit_client, master_auth, published):
    key_id, auth = new_key(unit_client, master_auth, allowed_models=["yandexgpt-lite"])
    refused = unit_client.post("/v1/jobs", json=GOOD, headers=auth)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "model_not_allowed"
    patch = {"allowed_models": None, "expires_at": "2020-01-01T00:00:00Z"}
    changed = unit_client.patch(f"/v1/admin/keys/{key_id}", json=patch, headers=master_auth)
    assert changed.status_code == 200 and changed.get_json()["allowed_models"] is None
    expired = unit_client.post("/v1/jobs", json=GOOD, headers=auth)
    assert expired.status_code == 401
    assert expired.get_json()["error"]["code"] == "api_key_expired"
    shown = unit_client.get(f"/v1/admin/keys/{key_id}", headers=master_auth).get_json()
    assert shown["expires_at"] == "2020-01-01T00:00:00Z" and shown["name"] == "t"


class Reads(list):
    """The SELECTs the database is sent while the block runs."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self.seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.append(statement)

    def of(self, table: str) -> int:
        return sum(f"FROM {table}" in s for s in self)


def test_a_key_is_read_once_per_request_and_a_change_applies_to_its_next_request(
    unit_client, unit_runtime, master_auth, published
):
    key_id, auth = new_key(unit_client, master_auth, allowed_models=["yandexgpt-lite"])
    assert unit_client.post("/v1/jobs", json=GOOD, headers=auth).status_code == 403
    patch = {"allowed_models": None, "limits": [{"requests_per_minute": 1}]}
    assert (
        unit_client.patch(f"/v1/admin/keys/{key_id}", json=patch, headers=master_auth).status_code
        == 200
    )
    with Reads(unit_runtime.engine) as reads:
        assert unit_client.post("/v1/jobs", json=GOOD, headers=auth).status_code == 202
    # Authentication's read serves admission too; the gateway limits were read before.
    assert reads.of("api_keys") == 1
    assert unit_client.post("/v1/jobs", json=GOOD, headers=auth).status_code == 429
    lifted = {"limits": []}
    assert (
        unit_client.patch(f"/v1/admin/keys/{key_id}", json=lifted, headers=master_auth).status_code
        == 200
    )
    assert unit_client.post("/v1/jobs", json=GOOD, headers=auth).status_code == 202


def test_gateway_limits_are_kept_at_most_a_second(
    unit_client, unit_runtime, master_auth, published
):
    now = [1000.0]
    unit_runtime.admission.gateway_limits.clock = lambda: now[0]
    assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202
    # Another process sets a limit (here: a write that bypasses this process's API).
    with unit_runtime.sessions() as session:
        session.add(GatewayLimit(model="gigachat", limit={"concurrent_jobs": 1}))
        session.commit()
    with Reads(unit_runtime.engine) as reads:
        now[0] += GATEWAY_TTL_SECONDS - 0.01  # still this process's copy: not applied yet
        for _ in range(2):
            assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202
    assert reads.of("gateway_limits") == 0
    now[0] += 0.01  # a second after it was read: read again, applied
    assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202
    refused = unit_client.post("/v1/jobs", json=GOOD, headers=master_auth)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["scope"] == "gateway:gigachat"
    # A change through this process's API applies to its next request, whatever the clock.
    gone = unit_client.delete("/v1/admin/limits/gigachat", headers=master_auth)
    assert gone.status_code == 200
    assert unit_client.post("/v1/jobs", json=GOOD, headers=master_auth).status_code == 202


def tpm_total(runtime, key_id: str) -> int:
    _, amounts = keys.limit_counters(f"key:{key_id}", "tpm")
    return int(runtime.redis.hget(amounts, "_total") or 0)


def test_cancel_refunds_and_the_sweeper_settles_a_job_whose_worker_died(
    unit_client, unit_runtime, master_auth, published
):
    limits = [{"tokens_per_minute": 100_000, "concurrent_jobs": 5}]
    key_id, auth = new_key(unit_client, master_auth, limits=limits)
    body = {**GOOD, "max_tokens": 100}
    a = unit_client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    b = unit_client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    reserved = tpm_total(unit_runtime, key_id) // 2
    assert reserved > 100
    assert unit_client.delete(f"/v1/jobs/{a}", headers=auth).status_code == 200
    assert tpm_total(unit_runtime, key_id) == reserved
    with unit_runtime.engine.begin() as conn:  # b's worker committed its end, then died
        conn.execute(
            text("UPDATE jobs SET status='succeeded', total_tokens=42 WHERE id=:id"), {"id": b}
        )
    assert settle_ended(unit_runtime.sessions, unit_runtime.redis, 100, grace=0) == 1
    assert tpm_total(unit_runtime, key_id) == 42
    conc, _ = keys.limit_counters(f"key:{key_id}", "conc")
    assert unit_runtime.redis.zcard(conc) == 0
    assert settle_ended(unit_runtime.sessions, unit_runtime.redis, 100, grace=0) == 0


def test_usage_from_finished_jobs(unit_client, unit_runtime, master_auth, published):
    key_id, auth = new_key(unit_client, master_auth)
    job = unit_client.post("/v1/jobs", json=GOOD, headers=auth).get_json()["id"]
    with unit_runtime.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE jobs SET status='succeeded', prompt_tokens=5, completion_tokens=7, "
                "total_tokens=12, finished_at=CURRENT_TIMESTAMP WHERE id=:id"
            ),
            {"id": job},
        )
    own = unit_client.get("/v1/usage", headers=auth).get_json()["data"]
    assert own == [
        {
            "model": "GigaChat",
            "channel": "latest",
            "requests": 1,
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "total_tokens": 12,
            "key_id": None,
        }
    ]
    admin = unit_client.get(
        f"/v1/admin/usage?key_id={key_id}&group_by=key&from=2020-01-01T00:00:00Z",
        headers=master_auth,
    ).get_json()["data"]
    assert [(r["key_id"], r["requests"]) for r in admin] == [(key_id, 1)]
    later = unit_client.get("/v1/usage?from=2999-01-01T00:00:00Z", headers=auth).get_json()
    assert later["data"] == []
