"""`llmgw up` as a user runs it: a subprocess on free ports, nothing but the project."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from llmgw.processes import free_port

MASTER_KEY = "e2e-master-key"


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llmgw up exited with {proc.returncode}:\n{log.read_text()[-5000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still warming up
            pass
        time.sleep(0.3)
    pytest.fail(f"stack not ready in {timeout} s:\n{log.read_text()[-5000:]}")


def start_stack(tmp: Path, *, as_background_job: bool = False) -> dict:
    """`as_background_job`: started as a shell without job control starts `cmd &`, with
    SIGINT ignored (what `llmgw up` must still stop on)."""
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGW_")}
    env.update(LLMGW_MASTER_KEY=MASTER_KEY)
    log = tmp / "up.log"
    # As `make run` does: the default var/ and SQLite path, relative to the working directory.
    cmd = [sys.executable, "-m", "llmgw.cli", "up"]
    cmd += ["--api-port", str(api_port), "--flower-port", str(flower_port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint if as_background_job else None,
        )
    url = f"http://127.0.0.1:{api_port}"
    stack = {"url": url, "proc": proc, "log": log, "api_port": api_port, "dir": tmp}
    stack["flower_port"] = flower_port
    try:
        wait_ready(url, proc, log)
    except BaseException:
        kill_stack(stack)
        raise
    return stack


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def kill_stack(stack: dict) -> None:
    proc = stack["proc"]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # its children lead their own process groups
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            for pgid in [proc.pid, *map(int, children)]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("up"))
    yield stack
    kill_stack(stack)
