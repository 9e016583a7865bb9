"""A batch end to end: HTTP API → batches table → the feeder task on a real worker process →
jobs on both providers' queues → the emulators; counts, output and a cancel midway."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.integration

MODELS = ("yandexgpt-lite:latest", "GigaChat:latest")


def jsonl(n: int) -> str:
    return "\n".join(
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODELS[i % 2],
                    "messages": [{"role": "user", "content": f"Сколько будет {i} + {i}?"}],
                },
            }
        )
        for i in range(n)
    )


def create(client, auth, n: int) -> dict:
    headers = {**auth, "Content-Type": "application/jsonl"}
    response = client.post("/v1/batches", data=jsonl(n), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def wait_for(client, auth, runtime, batch_id: str, statuses, timeout: float = 90) -> dict:
    """Poll the batch, kicking the feeder each second as beat would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.get(f"/v1/batches/{batch_id}", headers=auth).get_json()
        if batch["status"] in statuses:
            return batch
        runtime.kick_feeder()
        time.sleep(1)
    raise AssertionError(f"batch {batch_id} did not end: {batch}")


def results(client, auth, batch_id: str, kind: str) -> list[dict]:
    response = client.get(f"/v1/batches/{batch_id}/{kind}", headers=auth)
    assert response.status_code == 200 and response.mimetype == "application/jsonl"
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def test_a_fifty_line_batch_runs_on_both_providers(worker, client, auth, runtime):
    batch = create(client, auth, 50)
    done = wait_for(client, auth, runtime, batch["id"], ("completed", "failed", "expired"))
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 50, "completed": 50, "failed": 0}
    output = results(client, auth, batch["id"], "output")
    assert sorted(line["custom_id"] for line in output) == sorted(f"req-{i}" for i in range(50))
    providers = {line["response"]["body"]["system_fingerprint"].split(":")[0] for line in output}
    assert providers == {"yandexgpt", "gigachat"}
    assert all(line["model_version"] and line["attempts"] >= 1 for line in output)
    assert results(client, auth, batch["id"], "errors") == []
    listed = client.get(f"/v1/jobs?batch_id={batch['id']}&limit=100", headers=auth).get_json()
    assert len(listed["data"]) == 50 and {j["status"] for j in listed["data"]} == {"succeeded"}


def test_a_cancel_midway_stops_the_batch(worker, client, auth, runtime):
    batch = create(client, auth, 60)
    time.sleep(0.5)  # let the feeder start on it
    cancelled = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] in ("cancelling", "cancelled")
    after = wait_for(client, auth, runtime, batch["id"], ("cancelled",), timeout=30)
    output = results(client, auth, batch["id"], "output")
    errors = results(client, auth, batch["id"], "errors")
    assert len(output) + len(errors) == 60
    assert after["request_counts"]["completed"] == len(output)
    assert all(e["error"]["code"] == "cancelled" for e in errors) and errors
    assert client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth).status_code == 409


def test_the_cli_submits_a_batch_and_a_job(worker, live_api, tmp_path):
    from click.testing import CliRunner

    from llmgw.cli import main
    from tests.integration.conftest import MASTER_KEY

    env = {"LLMGW_URL": live_api, "LLMGW_API_KEY": MASTER_KEY}
    file, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    file.write_text(jsonl(10))
    args = ["batch", "submit", str(file), "--wait", "--output", str(out), "--interval", "0.5"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert "10 done, 0 failed, 10 total" in result.output
    assert len(out.read_text().splitlines()) == 10
    answer = CliRunner().invoke(main, ["submit", "-m", "GigaChat:latest", "Привет"], env=env)
    assert answer.exit_code == 0 and answer.output.strip(), answer.output
