"""Admin key management: create (secret shown once, stored hashed), list, revoke."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from llmgw.cli import main
from storage.models import ApiKey


def create(client, auth, **body):
    return client.post("/v1/admin/keys", json={"name": "svc", **body}, headers=auth)


def test_created_key_works_and_only_its_hash_is_stored(unit_client, unit_runtime, master_auth):
    created = create(unit_client, master_auth)
    assert created.status_code == 201
    body = created.get_json()
    assert body["key"].startswith("llmgw_") and body["admin"] is False
    with unit_runtime.sessions() as session:
        row = session.get(ApiKey, body["id"])
        assert row.key_hash != body["key"] and body["key"] not in row.key_hash
    user = {"Authorization": f"Bearer {body['key']}"}
    assert unit_client.get("/v1/models", headers=user).status_code == 200
    listed = unit_client.get("/v1/admin/keys", headers=master_auth).get_json()["data"]
    assert [k["id"] for k in listed] == [body["id"]]
    assert "key" not in listed[0]


def test_client_keys_cannot_manage_keys(unit_client, master_auth):
    key = create(unit_client, master_auth).get_json()["key"]
    response = create(unit_client, {"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_revoked_key_is_refused_at_once(unit_client, master_auth):
    created = create(unit_client, master_auth).get_json()
    user = {"Authorization": f"Bearer {created['key']}"}
    revoked = unit_client.delete(f"/v1/admin/keys/{created['id']}", headers=master_auth)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    refused = unit_client.get("/v1/models", headers=user)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_api_key"
    missing = unit_client.delete("/v1/admin/keys/nope", headers=master_auth)
    assert missing.status_code == 404


def test_bad_key_body(unit_client, master_auth):
    response = create(unit_client, master_auth, name="", extra=1)
    assert response.status_code == 400
    fields = {p["field"] for p in response.get_json()["error"]["problems"]}
    assert fields == {"name", "extra"}


def test_cli_create_list_revoke(unit_settings, unit_runtime, monkeypatch):
    monkeypatch.setenv("LLMGW_DATABASE_URL", unit_settings.database_url)
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "batch-jobs", "--admin"])
    assert created.exit_code == 0, created.output
    with unit_runtime.sessions() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.name == "batch-jobs"))
    assert key.is_admin and f"id      {key.id}" in created.output
    assert key.id in runner.invoke(main, ["keys", "list"]).output
    assert runner.invoke(main, ["keys", "revoke", key.id]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list"]).output
    assert runner.invoke(main, ["keys", "revoke", "nope"]).exit_code == 1
