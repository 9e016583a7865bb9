"""The README promise: `llmgw up` starts the whole stack on a bare machine (embedded Redis,
SQLite, emulators, gunicorn, a worker, Flower); a job submitted over real HTTP succeeds on
both providers; Ctrl-C stops every child."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from llmgw.processes import port_open
from tests.e2e.conftest import MASTER_KEY, start_stack

pytestmark = pytest.mark.e2e


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
    assert (stack["dir"] / "var" / "llmgw.db").is_file()  # the defaults, as `make run` uses
    assert list((stack["dir"] / "var" / "redis").iterdir())  # the embedded Redis's data
    user, password = re.search(r"basic auth (\S+):(\S+)\)", text).groups()
    flower = f"http://127.0.0.1:{stack['flower_port']}/"
    assert requests.get(flower, timeout=10).status_code == 401
    assert requests.get(flower, auth=(user, password), timeout=10).status_code == 200


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port`, as `ss -ltn` lists them."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def test_api_and_flower_listen_on_loopback_only(stack):
    for port in (stack["api_port"], stack["flower_port"]):
        assert listening_addresses(port) == {"127.0.0.1"}, port


def second_terminal(stack, *args: str) -> subprocess.CompletedProcess:
    """An `llmgw` command in the stack's directory, without any LLMGW_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    cmd = [sys.executable, "-m", "llmgw.cli", *args]
    return subprocess.run(cmd, env=env, cwd=stack["dir"], capture_output=True, text=True)


def test_second_terminal_finds_the_stack(stack):
    record = json.loads((stack["dir"] / "var" / "llmgw-up.json").read_text())
    assert record["pid"] == stack["proc"].pid
    assert record["api_url"] == stack["url"]
    assert record["redis_url"].startswith("redis://127.0.0.1:")
    assert set(record["emulators"]) == {"yandexgpt", "gigachat"}
    listed = second_terminal(stack, "models", "list")
    assert listed.returncode == 0 and "yandexgpt-lite:latest" in listed.stdout, listed.stderr
    circuits = second_terminal(stack, "models", "circuits")  # needs the embedded Redis
    assert circuits.returncode == 0, circuits.stderr
    assert "gigachat:GigaChat:latest\tclosed" in circuits.stdout


def child_pids(pid: int, word: str) -> list[int]:
    """The direct children of `pid` whose command line has `word` as an argument."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if word.encode() in argv:
            found.append(int(child))
    return found


def test_a_killed_worker_is_restarted_and_jobs_still_succeed(stack):
    (worker,) = child_pids(stack["proc"].pid, "worker")
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while "worker restarted (pid" not in stack["log"].read_text():
        assert time.monotonic() < deadline, stack["log"].read_text()[-3000:]
        time.sleep(0.2)
    assert "worker exited with code -9; restarting it in" in stack["log"].read_text()
    assert child_pids(stack["proc"].pid, "worker") not in ([], [worker])
    job = run_job(stack["url"], "GigaChat:latest")
    assert job["status"] == "succeeded", job
    assert stack["proc"].poll() is None


def test_ctrl_c_stops_every_child(tmp_path):
    stack = start_stack(tmp_path, as_background_job=True)  # Ctrl-C works even then
    assert run_job(stack["url"], "GigaChat")["status"] == "succeeded"
    proc = stack["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        tree = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,etime,args"], capture_output=True)
        log = stack["log"].read_text()[-3000:]
        pytest.fail(f"not stopped in 60 s\n{log}\n{tree.stdout.decode()}")
    assert code == 0, stack["log"].read_text()[-3000:]
    assert not port_open(stack["api_port"])
    assert not port_open(stack["flower_port"])
    assert not (tmp_path / "var" / "llmgw-up.json").exists()
