"""`/v1/admin/models`: admin-only catalogue operations, audited, seen by the next request."""

from __future__ import annotations

import pytest

from tests.unit.routing.conftest import add_job

ADMIN = "/v1/admin/models"


def test_non_admin_keys_are_forbidden(unit_client, user_auth):
    for method, url in [("get", ADMIN), ("post", f"{ADMIN}/yandexgpt/promote")]:
        response = getattr(unit_client, method)(url, headers=user_auth, json={})
        assert (response.status_code, response.get_json()["error"]["code"]) == (403, "forbidden")


def test_admin_list_shows_upstream_ids_and_policy(unit_client, master_auth):
    data = unit_client.get(ADMIN, headers=master_auth).get_json()["data"]
    giga = next(m for m in data if m["id"] == "GigaChat-Pro")
    assert {c["channel"]: c["upstream_id"] for c in giga["channels"]} == {
        "latest": "GigaChat-Pro",
        "rc": "GigaChat-Pro-preview",
    }
    assert giga["sunset_policy"] == "reject" and giga["equivalents"] == ["yandexgpt"]


def test_promote_is_audited_and_seen_by_the_next_request(unit_client, master_auth):
    before = unit_client.get("/v1/models/GigaChat-Pro/resolve", headers=master_auth).get_json()
    assert before["route"]["upstream_id"] == "GigaChat-Pro"
    response = unit_client.post(
        f"{ADMIN}/GigaChat-Pro/promote",
        json={"deprecation_days": 14, "reason": "rc has been stable for a month"},
        headers=master_auth,
    )
    event = response.get_json()
    assert response.status_code == 200, event
    assert (event["actor"], event["action"], event["model"]) == (
        "master",
        "promote",
        "GigaChat-Pro",
    )
    assert event["reason"] == "rc has been stable for a month"
    after = {c["channel"]: c for c in event["after"]["channels"]}
    assert after["latest"]["upstream_id"] == "GigaChat-Pro-preview"
    assert after["deprecated"]["upstream_id"] == "GigaChat-Pro"
    assert after["deprecated"]["sunset_at"] > after["deprecated"]["deprecated_at"]
    now = unit_client.get("/v1/models/GigaChat-Pro/resolve", headers=master_auth).get_json()
    assert now["route"]["upstream_id"] == "GigaChat-Pro-preview"
    events = unit_client.get(f"{ADMIN}/GigaChat-Pro/events", headers=master_auth).get_json()
    assert [e["action"] for e in events["data"]] == ["promote"]


def test_rollback_restores_the_state_before_the_promote(unit_client, master_auth):
    original = unit_client.get(f"{ADMIN}/yandexgpt", headers=master_auth).get_json()["channels"]
    unit_client.post(f"{ADMIN}/yandexgpt/promote", json={}, headers=master_auth)
    response = unit_client.post(f"{ADMIN}/yandexgpt/rollback", json={}, headers=master_auth)
    assert response.status_code == 200, response.get_json()
    shown = unit_client.get(f"{ADMIN}/yandexgpt", headers=master_auth).get_json()
    assert shown["channels"] == original
    assert [e["action"] for e in shown["events"]] == ["rollback", "promote"]


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        ("/gpt-4/promote", {}, 404, "model_not_found"),
        ("/yandexgpt/rollback", {}, 409, "catalogue_conflict"),
        ("/yandexgpt/pin", {"channel": "latest", "version": "1.0"}, 404, "version_not_found"),
        ("/yandexgpt/pin", {"channel": "beta", "version": "1.0"}, 404, "channel_not_found"),
        ("/yandexgpt/policy", {"sunset_policy": "explode"}, 409, "catalogue_conflict"),
        ("/yandexgpt/deprecate", {"successor": "nothing:latest"}, 404, "model_not_found"),
        ("/yandexgpt/promote", {"deprecation_days": 0}, 400, "invalid_request"),
    ],
)
def test_bad_operations_are_refused_with_a_code(unit_client, master_auth, url, body, status, code):
    response = unit_client.post(ADMIN + url, json=body, headers=master_auth)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_retire_then_requests_follow_the_sunset_policy(unit_client, master_auth):
    unit_client.post(f"{ADMIN}/GigaChat-Max/retire", json={"channel": "rc"}, headers=master_auth)
    response = unit_client.get("/v1/models/GigaChat-Max:rc/resolve", headers=master_auth)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (410, "model_sunset")
    assert error["successor"] == "GigaChat-Max:latest"
    unit_client.post(f"{ADMIN}/yandexgpt-lite/retire", json={"channel": "rc"}, headers=master_auth)
    redirected = unit_client.get("/v1/models/yandexgpt-lite:rc/resolve", headers=master_auth)
    assert redirected.get_json()["route"]["redirected_from"] == "yandexgpt-lite:rc"


def test_deprecate_a_whole_model_with_a_successor(unit_client, master_auth):
    response = unit_client.post(
        f"{ADMIN}/yandexgpt-32k/deprecate",
        json={"sunset_at": "2027-01-15T00:00:00", "successor": "yandexgpt:latest"},
        headers=master_auth,
    )
    assert response.status_code == 200
    resolved = unit_client.get("/v1/models/yandexgpt-32k/resolve", headers=master_auth)
    assert resolved.headers["Sunset"] == "Fri, 15 Jan 2027 00:00:00 GMT"
    assert "yandexgpt:latest" in resolved.get_json()["warnings"][0]["message"]


def test_pin_registers_a_new_rc_version(unit_client, master_auth):
    response = unit_client.post(
        f"{ADMIN}/yandexgpt/pin",
        json={"channel": "rc", "version": "01.10.2025", "upstream_id": "yandexgpt/rc"},
        headers=master_auth,
    )
    assert response.status_code == 200, response.get_json()
    route = unit_client.get("/v1/models/yandexgpt:01.10.2025/resolve", headers=master_auth)
    assert route.get_json()["route"]["channel"] == "rc"
    old = unit_client.get("/v1/models/yandexgpt:22.05.2025/resolve", headers=master_auth)
    assert old.get_json()["route"]["redirected_from"] == "yandexgpt:22.05.2025"


def test_compare_shows_versions_side_by_side(unit_client, unit_runtime, master_auth):
    add_job(unit_runtime, channel="rc")
    add_job(unit_runtime, channel="rc", status="failed")
    job = add_job(unit_runtime, channel="latest")
    unit_client.post(f"/v1/jobs/{job}/feedback", json={"score": 5}, headers=master_auth)
    body = unit_client.get(f"{ADMIN}/yandexgpt/compare", headers=master_auth).get_json()
    rc, latest = body["versions"]
    assert (rc["model_id"], rc["jobs"], rc["attempts"], rc["error_rate"]) == (
        "yandexgpt:rc",
        2,
        2,
        0.5,
    )
    assert latest["feedback"] == {"count": 1, "mean_score": 5.0}
    assert rc["latency_ms"]["p50"] == 120.0 and rc["served_versions"] == {"22.05.2025": 2}
    assert (rc["fallbacks"], latest["fallbacks"]) == (0, 0)


def test_compare_counts_jobs_that_fell_back(unit_client, unit_runtime, master_auth):
    add_job(unit_runtime, channel="rc", attempts=[("rc", "failed"), ("latest", "succeeded")])
    body = unit_client.get(
        f"{ADMIN}/yandexgpt/compare?channel=rc&channel=latest&channel=deprecated",
        headers=master_auth,
    ).get_json()
    rc, latest, deprecated = body["versions"]
    assert (rc["jobs"], rc["fallbacks"], rc["error_rate"]) == (1, 1, 1.0)
    assert (latest["jobs"], latest["attempts"], latest["error_rate"]) == (0, 1, 0.0)
    assert deprecated["attempts"] == 0 and deprecated["error_rate"] is None


def test_key_policy_decides_the_dry_run_of_that_key(unit_client, master_auth, user_auth):
    url = "/v1/models/yandexgpt:deprecated/resolve?cross_provider=true"
    before = unit_client.get(url, headers=user_auth).get_json()
    assert [c["reason"] for c in before["candidates"]] == [
        "requested",
        "cross_provider",
        "cross_provider",
    ]
    response = unit_client.put(
        "/v1/admin/routing/keys/user1",
        json={"cross_provider": False, "reason": "data must stay with Yandex"},
        headers=master_auth,
    )
    assert response.status_code == 200 and response.get_json()["model"] == "key:user1"
    after = unit_client.get(url, headers=user_auth).get_json()
    assert [c["reason"] for c in after["candidates"]] == ["requested"]
    assert after["policy"]["source"] == "key"
    shown = unit_client.get("/v1/admin/routing/keys/user1", headers=master_auth).get_json()
    assert shown == {"key_id": "user1", "cross_provider": False}
    forbidden = unit_client.put("/v1/admin/routing/keys/user1", json={}, headers=user_auth)
    assert forbidden.status_code == 403


def test_circuits_are_listed_and_can_be_reset(unit_client, unit_runtime, master_auth):
    from routing.breaker import CircuitBreaker

    breaker = CircuitBreaker(unit_runtime.redis, min_calls=2)
    for _ in range(2):
        breaker.record_failure("gigachat:GigaChat:rc")
    data = unit_client.get("/v1/admin/routing/circuits", headers=master_auth).get_json()["data"]
    by_key = {c["key"]: c for c in data}
    assert by_key["gigachat:GigaChat:rc"]["state"] == "open"
    assert (
        by_key["gigachat:GigaChat:rc"]["refusing"] and by_key["gigachat:GigaChat:rc"]["fails"] == 2
    )
    assert by_key["yandexgpt:yandexgpt:latest"] == {
        "key": "yandexgpt:yandexgpt:latest",
        "state": "closed",
        "open_until": None,
        "calls": 0,
        "fails": 0,
        "refusing": False,
    }
    reset = unit_client.post(
        "/v1/admin/routing/circuits/gigachat:GigaChat:rc/reset", headers=master_auth
    )
    assert reset.get_json() == {"key": "gigachat:GigaChat:rc", "reset": True}
    assert breaker.allow("gigachat:GigaChat:rc")
