"""The README promise: `llmgw up` starts the whole stack on a bare machine (embedded Redis,
SQLite, emulators, gunicorn, a worker, Flower); a job submitted over real HTTP succeeds on
both providers; Ctrl-C stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from llmgw.processes import free_port, port_open

MASTER_KEY = "e2e-master-key"


def wait_ready(url: str, proc: subprocess.Popen, log, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llmgw up exited with {proc.returncode}:\n{log.read_text()[-5000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"stack not ready in {timeout} s:\n{log.read_text()[-5000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("up")
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    env.update(LLMGW_MASTER_KEY=MASTER_KEY, LLMGW_DATABASE_URL=f"sqlite:///{tmp / 'llmgw.db'}")
    log = tmp / "up.log"
    cmd = [sys.executable, "-m", "llmgw.cli", "up", "--var-dir", str(tmp / "var")]
    cmd += ["--api-port", str(api_port), "--flower-port", str(flower_port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_ready(url, proc, log)
        yield {
            "url": url,
            "proc": proc,
            "log": log,
            "flower_port": flower_port,
            "api_port": api_port,
        }
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def run_job(url: str, model: str) -> dict:
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    body = {"model": model, "messages": [{"role": "user", "content": "Привет"}]}
    created = requests.post(f"{url}/v1/jobs", json=body, headers=auth, timeout=10)
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = requests.get(f"{url}{location}", headers=auth, timeout=10).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job did not finish: {job}")


@pytest.mark.parametrize("model", ["yandexgpt-lite:latest", "GigaChat:latest"])
def test_job_succeeds_over_http(stack, model):
    job = run_job(stack["url"], model)
    assert job["status"] == "succeeded", job
    assert job["result"]["content"]
    assert job["result"]["usage"]["total_tokens"] > 0


def test_banner_and_flower(stack):
    text = stack["log"].read_text()
    assert "llmgw is up" in text and "curl -s -X POST" in text
    flower = requests.get(f"http://127.0.0.1:{stack['flower_port']}/", timeout=10)
    assert flower.status_code == 200


def test_ctrl_c_stops_every_child(stack):
    proc = stack["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0, stack["log"].read_text()[-3000:]
    assert not port_open(stack["api_port"])
    assert not port_open(stack["flower_port"])
