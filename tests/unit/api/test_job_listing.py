"""`GET /v1/jobs`: the caller's jobs newest first, filtered, paged by an opaque cursor."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.models import Batch, BatchLine, Job

START = datetime(2026, 12, 1, 9, 0, 0)


def add_job(runtime, job_id: str, owner: str = "master", minute: int = 0, **over) -> None:
    values = {
        "id": job_id,
        "owner": owner,
        "status": "queued",
        "model_requested": "yandexgpt",
        "provider": "yandexgpt",
        "model": "yandexgpt",
        "channel": "latest",
        "upstream_id": "gpt://f/yandexgpt/latest",
        "queue": "yandexgpt.latest",
        "request": {"model": "yandexgpt"},
        "created_at": START + timedelta(minutes=minute),
    } | over
    with runtime.sessions() as session:
        session.add(Job(**values))
        session.commit()


def client_key(client, auth) -> dict[str, str]:
    created = client.post("/v1/admin/keys", json={"name": "svc"}, headers=auth).get_json()
    return {"Authorization": f"Bearer {created['key']}", "id": created["id"]}


def ids(response) -> list[str]:
    return [job["id"] for job in response.get_json()["data"]]


def test_lists_newest_first_and_pages_with_the_cursor(unit_client, unit_runtime, master_auth):
    for minute in range(5):
        add_job(unit_runtime, f"j{minute}", minute=minute)
    add_job(unit_runtime, "tie", minute=4)  # same instant: the id breaks the tie
    first = unit_client.get("/v1/jobs?limit=2", headers=master_auth)
    body = first.get_json()
    assert first.status_code == 200 and body["object"] == "list"
    assert ids(first) == ["tie", "j4"] and body["has_more"] is True
    second = unit_client.get(f"/v1/jobs?limit=2&after={body['next_cursor']}", headers=master_auth)
    third_cursor = second.get_json()["next_cursor"]
    assert ids(second) == ["j3", "j2"]
    third = unit_client.get(f"/v1/jobs?limit=2&after={third_cursor}", headers=master_auth)
    assert ids(third) == ["j1", "j0"]
    assert third.get_json()["has_more"] is False and third.get_json()["next_cursor"] is None


def test_filters_by_status_model_and_batch(unit_client, unit_runtime, master_auth):
    add_job(unit_runtime, "a", status="succeeded")
    add_job(unit_runtime, "b", model_requested="GigaChat", minute=1)
    add_job(unit_runtime, "c", minute=2)
    with unit_runtime.sessions() as session:
        session.add(
            Batch(
                id="b1",
                owner="master",
                status="in_progress",
                completion_window="24h",
                expires_at=START,
            )
        )
        session.flush()
        session.add(BatchLine(batch_id="b1", line=1, custom_id="x", request={}, job_id="c"))
        session.commit()
    get = lambda q: ids(unit_client.get(f"/v1/jobs?{q}", headers=master_auth))  # noqa: E731
    assert get("status=succeeded") == ["a"]
    assert get("model=GigaChat") == ["b"]
    assert get("batch_id=b1") == ["c"]


def test_a_key_sees_only_its_own_jobs_and_admins_filter_by_key(
    unit_client, unit_runtime, master_auth
):
    key = client_key(unit_client, master_auth)
    auth = {"Authorization": key["Authorization"]}
    add_job(unit_runtime, "mine", owner=key["id"])
    add_job(unit_runtime, "theirs", owner="other")
    assert ids(unit_client.get("/v1/jobs", headers=auth)) == ["mine"]
    assert unit_client.get("/v1/jobs?key_id=other", headers=auth).status_code == 403
    assert ids(unit_client.get("/v1/jobs?key_id=other", headers=master_auth)) == ["theirs"]
    assert len(ids(unit_client.get("/v1/jobs", headers=master_auth))) == 2


def test_bounds_and_bad_cursor(unit_client, master_auth):
    for bad in ("limit=0", "limit=101", "status=bogus", "after=%25%25"):
        response = unit_client.get(f"/v1/jobs?{bad}", headers=master_auth)
        assert response.status_code == 400, bad
    bad_cursor = unit_client.get("/v1/jobs?after=bm90LWEtY3Vyc29y", headers=master_auth)
    assert bad_cursor.get_json()["error"]["code"] == "invalid_cursor"
