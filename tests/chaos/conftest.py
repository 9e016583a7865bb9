"""Chaos fixtures: the pieces as production runs them — an embedded Redis with AOF (always
our own, since tests kill it; never the machine's), SQLite, the GigaChat emulator over HTTP,
and worker and beat as separate processes — plus the two checks every experiment ends with:
each job reached exactly one terminal state, and the provider received no call that the
attempt log does not show."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from jobs.spec import JobRequest
from jobs.status import TERMINAL
from llmgw.container import Container
from llmgw.processes import free_port, start_redis, stop_process
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_GIGACHAT_KEY
from providers.emulators import gigachat
from providers.emulators.server import start_in_thread
from storage.models import Attempt, Job
from tests.helpers import reset_database, seed, settings_env, start_worker, wait_for_worker

pytestmark = pytest.mark.chaos
HELLO = [{"role": "user", "content": "Привет"}]


@dataclass
class Stack:
    tmp: Path
    settings: Settings
    container: Container
    emulator: str
    redis: subprocess.Popen
    redis_port: int
    worker: subprocess.Popen | None = None
    beat: subprocess.Popen | None = None
    workers_started: int = 0

    def start_worker(self, concurrency: int = 32) -> subprocess.Popen:
        self.workers_started += 1
        log = self.tmp / f"worker{self.workers_started}.log"
        self.worker = start_worker(self.settings, log, concurrency=concurrency)
        wait_for_worker(self.container.celery, self.worker, log)
        return self.worker

    def start_beat(self) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "llmgw.cli", "beat", "--schedule", str(self.tmp / "beat")]
        with (self.tmp / "beat.log").open("w") as log:
            self.beat = subprocess.Popen(
                cmd,
                env=settings_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.beat

    def kill_redis(self, how: signal.Signals = signal.SIGKILL) -> None:
        os.killpg(self.redis.pid, how)
        self.redis.wait()

    def restart_redis(self) -> None:
        self.redis = start_redis(
            self.tmp / "redis", self.redis_port, log_file=self.tmp / "redis.log"
        )

    def submit(self, count: int) -> list[str]:
        request = JobRequest(model="GigaChat", messages=HELLO)
        return [self.container.submitter.submit("master", request).job_id for _ in range(count)]

    def held_by_workers(self) -> int:
        """Messages the workers hold unacknowledged, as they record them (`workers.held`)."""
        from storage import keys

        redis = self.container.redis
        return sum(
            redis.hlen(keys.worker_held(w.decode())) for w in redis.zrange(keys.WORKERS, 0, -1)
        )

    def statuses(self) -> Counter:
        with self.container.sessions() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return Counter(dict(rows))

    def wait_all_terminal(self, timeout: float) -> Counter:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.statuses()
            if set(counts) <= TERMINAL:
                return counts
            time.sleep(1)
        return self.statuses()

    def wait_for_calls_in_flight(self, timeout: float = 30) -> None:
        """Until the provider is answering some of the jobs (a loaded machine starts slowly):
        completion calls, not the token request that comes before the first of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = requests.get(f"{self.emulator}/_emulator/stats", timeout=5).json()
            if any("completions" in route for route in stats["in_flight_by_route"]):
                return
            time.sleep(0.1)
        raise AssertionError(f"no provider call started within {timeout} s")

    def provider_calls(self) -> int:
        stats = requests.get(f"{self.emulator}/_emulator/stats", timeout=5).json()
        return sum(n for route, n in stats["requests"].items() if "completions" in route)

    def calls_by_job(self) -> Counter:
        """Provider calls the emulator received, per request id (the gateway sends the job id)."""
        log = requests.get(f"{self.emulator}/_emulator/requests", timeout=5).json()
        return Counter(r["request_id"] for r in log["requests"] if "completions" in r["path"])

    def logged_by_job(self) -> Counter:
        with self.container.sessions() as session:
            rows = session.execute(
                select(Attempt.job_id, func.count())
                .where(Attempt.outcome != "skipped")
                .group_by(Attempt.job_id)
            ).all()
        return Counter(dict(rows))

    def unlogged_calls(self) -> dict[str, tuple[int, int]]:
        """Jobs the provider received more calls for than their attempt log shows."""
        received, logged = self.calls_by_job(), self.logged_by_job()
        return {job: (n, logged[job]) for job, n in received.items() if n > logged[job]}

    def logged_calls(self) -> Counter:
        with self.container.sessions() as session:
            rows = session.execute(
                select(Attempt.outcome, func.count())
                .where(Attempt.outcome != "skipped")
                .group_by(Attempt.outcome)
            ).all()
        return Counter(dict(rows))


@pytest.fixture()
def stack(tmp_path, request):
    """Settings per test come from `@pytest.mark.stack_settings(...)`."""
    marker = request.node.get_closest_marker("stack_settings")
    overrides = marker.kwargs if marker else {}
    port = free_port()
    redis = start_redis(tmp_path / "redis", port, log_file=tmp_path / "redis.log")
    database = f"sqlite:///{tmp_path / 'llmgw.db'}"
    reset_database(database)
    seed(database)
    config = gigachat.GigaChatEmulatorConfig(
        credentials={EMULATOR_GIGACHAT_KEY}, max_concurrency=1000, latency=2.0
    )
    emulator = start_in_thread(gigachat.create_app(config))
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{port}/0",
        database_url=database,
        master_key="chaos-master-key",
        gigachat_base_url=f"{emulator.url}/api/v1",
        gigachat_auth_url=f"{emulator.url}/api/v2/oauth",
        gigachat_credentials=EMULATOR_GIGACHAT_KEY,
        provider_read_timeout=10,
        _env_file=None,
        **overrides,
    )
    built = Stack(tmp_path, settings, Container(settings), emulator.url, redis, port)
    try:
        yield built
    finally:
        for proc in (built.worker, built.beat, built.redis):
            if proc is not None:
                stop_process(proc)
        emulator.stop()


def start_api(stack: Stack, port: int) -> subprocess.Popen:
    """`llmgw api` (gunicorn, as production runs it) on 127.0.0.1:<port>."""
    from llmgw.processes import port_open, wait_until

    cmd = [sys.executable, "-m", "llmgw.cli", "api", "--port", str(port), "--workers", "1"]
    with (stack.tmp / f"api{port}-{time.monotonic_ns()}.log").open("w") as log:
        proc = subprocess.Popen(
            cmd,
            env=settings_env(stack.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="api")
    return proc
