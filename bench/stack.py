"""The pieces every benchmark starts: Redis, a database, the GigaChat emulator, llmgw's worker
and API, as child processes on free 127.0.0.1 ports, stopped in reverse order.

Nothing here imports `tests/`: the database helpers live in `llmgw.devdb`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from llmgw.devdb import reset_database, seed, settings_env
from llmgw.processes import free_port, port_open, start_redis, stop_process, wait_until
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_GIGACHAT_KEY

KEY = "bench-master-key"
MODEL = "GigaChat"  # the catalogue's GigaChat:latest, served by the emulator as "GigaChat"
PROMPT = [{"role": "user", "content": "ping"}]


class Stack:
    """One run's processes; `with Stack(...) as stack:` stops them all on the way out."""

    def __init__(self, *, database: str | None, latency: float, threads: int, **extra: Any):
        self.tmp = Path(tempfile.mkdtemp(prefix="llmgw-bench-"))
        print(f"logs in {self.tmp}", file=sys.stderr)
        self.procs: list[subprocess.Popen] = []
        self.pids: dict[str, int] = {}  # llmgw's processes by name, for the profiler
        self.database, self.latency, self.threads, self.extra = database, latency, threads, extra

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        redis_port, emu_port = free_port(), free_port()
        self.procs.append(start_redis(self.tmp / "redis", redis_port, log_file=self.tmp / "r.log"))
        db_url = self.database or f"sqlite:///{self.tmp / 'bench.db'}"
        reset_database(db_url)
        seed(db_url)
        self.emulator = f"http://127.0.0.1:{emu_port}"
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.settings = Settings(
            redis_url=self.redis_url,
            database_url=db_url,
            master_key=KEY,
            gigachat_base_url=f"{self.emulator}/api/v1",
            gigachat_auth_url=f"{self.emulator}/api/v2/oauth",
            gigachat_credentials=EMULATOR_GIGACHAT_KEY,
            worker_concurrency=self.threads,
            _env_file=None,
            **self.extra,
        )
        self.env = settings_env(self.settings)
        emu = ("emulator", "gigachat", "--port", str(emu_port), "--latency", str(self.latency))
        self.spawn("emulator", *emu, "--credentials", EMULATOR_GIGACHAT_KEY, *LIMITLESS)
        wait_until(lambda: port_open(emu_port), timeout=60, what="emulator")

    def spawn(self, name: str, *args: str, module: str = "llmgw.cli", env=None) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str = "worker", *extra: str) -> subprocess.Popen:
        args = ("worker", "-c", str(self.threads), "--loglevel", "WARNING", *extra)
        return self.spawn(name, *args)

    def start_api(self, workers: int = 2, threads: int = 64) -> str:
        port = free_port()
        self.spawn(
            "api", "api", "--port", str(port), "--workers", str(workers), "--threads", str(threads)
        )
        wait_until(lambda: port_open(port), timeout=60, what="api")
        return f"http://127.0.0.1:{port}"

    def stop(self, proc: subprocess.Popen | None = None) -> None:
        for child in [proc] if proc else reversed(self.procs):
            stop_process(child)

    # -- the emulator ------------------------------------------------------------------

    def emulator_token(self) -> str:
        """A GigaChat access token, fetched once, as the floor and a direct client use it."""
        response = requests.post(
            f"{self.emulator}/api/v2/oauth",
            headers={"Authorization": f"Basic {EMULATOR_GIGACHAT_KEY}", "RqUID": RQUID},
            data={"scope": "GIGACHAT_API_PERS"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def emulator_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.emulator}/_emulator/stats", timeout=10).json()

    def set_latency(self, seconds: float) -> None:
        body = {"latency": seconds}
        requests.post(
            f"{self.emulator}/_emulator/latency", json=body, timeout=10
        ).raise_for_status()


RQUID = "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e"
# The emulator's 429 concurrency gauge raised far above any benchmark's load.
LIMITLESS = ("--max-concurrency", "100000")


def wait_for_ping(env: dict[str, str], proc: subprocess.Popen, app: Any, timeout: float = 60):
    """A Celery worker answers a ping (it consumes its queues from then on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the worker exited at start-up; see its log")
        if app.control.ping(timeout=0.5):
            return
    raise TimeoutError("the worker did not answer a ping")


def pythonpath_env(env: dict[str, str]) -> dict[str, str]:
    """The environment with this checkout importable (`bench.floor` for the floor worker)."""
    root = str(Path(__file__).resolve().parent.parent)
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))}
