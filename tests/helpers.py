"""Test helpers: databases built from the Alembic revisions, Redis, the worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from llmgw.devdb import reset_database, seed, settings_env
from llmgw.processes import free_port, start_redis
from llmgw.settings import Settings

__all__ = ["reset_database", "seed", "settings_env"]  # moved to llmgw.devdb; re-exported


def redis_for_tests(tmp: Path):
    """(url, process) — the machine's Redis when LLMGW_TEST_REDIS_URL is set, else embedded."""
    url = os.environ.get("LLMGW_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()
        return url, None
    port = free_port()
    return f"redis://127.0.0.1:{port}/0", start_redis(tmp / "redis", port)


def start_worker(settings: Settings, log_path: Path, concurrency: int = 16) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llmgw.cli", "worker", "-c", str(concurrency)]
    with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_worker(celery_app, proc: subprocess.Popen, log_path: Path, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-4000:]}")
        if celery_app.control.ping(timeout=0.5):
            return
    raise TimeoutError(f"worker did not answer ping:\n{log_path.read_text()[-4000:]}")
