"""The client commands over real HTTP (the unit app served on loopback): jobs list/show,
batch submit/status/list/results/cancel, and API errors as one line."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from llmgw.app import create_app
from llmgw.cli import main
from llmgw.cli.client import progress
from tests.conftest import UNIT_MASTER_KEY


@pytest.fixture()
def gateway(unit_runtime, monkeypatch):
    monkeypatch.setattr(type(unit_runtime), "kick_feeder", lambda self: None)
    server = make_server("127.0.0.1", 0, create_app(container=unit_runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def run(gateway: str, *args: str, key: str = UNIT_MASTER_KEY):
    env = {"LLMGW_URL": gateway, "LLMGW_API_KEY": key}
    return CliRunner().invoke(main, list(args), env=env)


def request_line(custom_id: str) -> str:
    body = {"model": "yandexgpt", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line)


def test_batch_commands(gateway, tmp_path):
    file = tmp_path / "in.jsonl"
    file.write_text("\n".join([request_line("a"), request_line("b")]))
    created = run(gateway, "batch", "submit", str(file))
    assert created.exit_code == 0, created.output
    batch_id = created.output.strip()
    status = json.loads(run(gateway, "batch", "status", batch_id).output)
    assert status["request_counts"]["total"] == 2
    assert batch_id in run(gateway, "batch", "list").output
    assert run(gateway, "batch", "results", batch_id).output == ""
    assert "cancelling" in run(gateway, "batch", "cancel", batch_id).output
    assert len(run(gateway, "batch", "results", "--errors", batch_id).output.splitlines()) == 2


def test_a_bad_file_prints_its_lines(gateway, tmp_path):
    file = tmp_path / "bad.jsonl"
    file.write_text(request_line("a") + "\n{oops\n")
    result = run(gateway, "batch", "submit", str(file))
    assert result.exit_code == 1
    assert "invalid_batch" in result.output and "line 2: not valid JSON" in result.output


def test_jobs_commands_and_errors(gateway):
    assert run(gateway, "jobs", "list").exit_code == 0
    missing = run(gateway, "jobs", "show", "nope")
    assert missing.exit_code == 1 and "job_not_found" in missing.output
    refused = run(gateway, "jobs", "list", key="wrong")
    assert refused.exit_code == 1 and "401" not in refused.output and ":" in refused.output


def test_progress_line():
    batch = {
        "status": "in_progress",
        "request_counts": {"total": 100, "completed": 40, "failed": 10},
    }
    line = progress(batch, 10.0)
    assert "40 done, 10 failed, 100 total, 5.0/s, ETA 10s" in line


def test_callback_url_options_reach_the_api(gateway, tmp_path):
    """The unit gateway has no signing secret: both commands relay its 503, proving the
    option was sent (without it they succeed)."""
    hook = "https://93.184.216.34/hook"
    job = run(gateway, "submit", "-m", "yandexgpt", "--no-wait", "--callback-url", hook, "hi")
    assert job.exit_code == 1 and "callbacks_unavailable" in job.output
    file = tmp_path / "in.jsonl"
    file.write_text(request_line("a"))
    batch = run(gateway, "batch", "submit", "--callback-url", hook, str(file))
    assert batch.exit_code == 1 and "callbacks_unavailable" in batch.output
    assert run(gateway, "batch", "submit", str(file)).exit_code == 0
