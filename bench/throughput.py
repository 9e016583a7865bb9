"""End-to-end throughput: N jobs through gunicorn → Redis → one worker → an emulator with a
fixed latency. Prints JSON. The figure that matters is `efficiency`: the ideal wall time
(N × latency ÷ worker threads) over the measured one, both from this one run.

    .venv/bin/python -m bench.throughput --jobs 1000 --latency 1 --concurrency 200
    LLMGW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test ...  # PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import func, select

from llmgw.processes import free_port, port_open, start_redis, stop_process, wait_until
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_FOLDER, EMULATOR_YANDEX_KEY
from storage.db import make_engine, make_session_factory
from storage.models import Job
from tests.helpers import reset_database, seed, settings_env

KEY = "bench-master-key"


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    out = log.open("w")
    cmd = [sys.executable, "-m", "llmgw.cli", *args]
    return subprocess.Popen(
        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def start(tmp: Path, args) -> tuple[list[subprocess.Popen], Settings, str]:
    redis_port, emu_port, api_port = free_port(), free_port(), free_port()
    procs = [start_redis(tmp / "redis", redis_port, log_file=tmp / "redis.log")]
    db_url = os.environ.get("LLMGW_BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    reset_database(db_url)
    seed(db_url)
    emu = f"http://127.0.0.1:{emu_port}"
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        database_url=db_url,
        master_key=KEY,
        yandexgpt_base_url=emu,
        yandexgpt_operations_url=emu,
        yandexgpt_iam_url=emu,
        yandexgpt_api_key=EMULATOR_YANDEX_KEY,
        yandexgpt_folder_id=EMULATOR_FOLDER,
        worker_concurrency=args.concurrency,
        _env_file=None,
    )
    env = settings_env(settings)
    procs.append(
        spawn(
            env,
            tmp / "emu.log",
            "emulator",
            "yandexgpt",
            "--port",
            str(emu_port),
            "--api-key",
            EMULATOR_YANDEX_KEY,
            "--latency",
            str(args.latency),
            "--max-concurrency",
            str(args.emulator_concurrency),
        )
    )
    if not args.drain:
        procs += start_workers(env, tmp, args.workers)
    procs.append(spawn(env, tmp / "api.log", "api", "--port", str(api_port)))
    for port in (emu_port, api_port):
        wait_until(lambda p=port: port_open(p), timeout=60, what=f"port {port}")
    time.sleep(2)  # the worker connects to the broker
    return procs, settings, f"http://127.0.0.1:{api_port}"


def start_workers(env: dict[str, str], tmp: Path, n: int) -> list[subprocess.Popen]:
    """n worker processes sharing the threads (`worker_concurrency`) between them."""
    threads = str(max(1, int(env["LLMGW_WORKER_CONCURRENCY"]) // n))
    return [
        spawn(env, tmp / f"worker{i}.log", "worker", "-c", threads, "--loglevel", "WARNING")
        for i in range(n)
    ]


def submit_all(api: str, n: int) -> float:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    body = {"model": "yandexgpt-lite:latest", "messages": [{"role": "user", "content": "ping"}]}

    def one(i: int) -> tuple[int, str]:
        payload = {**body, "metadata": {"n": str(i)}}
        headers = {"Authorization": f"Bearer {KEY}"}
        response = session.post(f"{api}/v1/jobs", json=payload, headers=headers, timeout=60)
        return response.status_code, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, range(n)))
    failed = [text for code, text in answers if code != 202]
    assert not failed, f"{len(failed)} submissions refused, e.g. {failed[0]}"
    return time.perf_counter() - started


def wait_all(settings: Settings, n: int, timeout: float) -> dict[str, int]:
    sessions = make_session_factory(make_engine(settings.database_url))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
        if counts.get("succeeded", 0) + counts.get("failed", 0) >= n:
            with sessions() as session:
                errors = session.execute(
                    select(Job.error_code, func.count())
                    .where(Job.status == "failed")
                    .group_by(Job.error_code)
                ).all()
            return {**counts, **{f"error:{code}": c for code, c in errors}}
        time.sleep(0.2)
    raise TimeoutError(f"not all jobs ended: {counts}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument(
        "--emulator-concurrency",
        type=int,
        default=2000,
        help="in-flight calls the emulator allows before 429 (the real Yandex default is 10)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--drain",
        action="store_true",
        help="submit everything first, then start the worker and time only the drain",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmgw-bench-"))
    print(f"logs in {tmp}", file=sys.stderr)
    if True:
        procs, settings, api = start(tmp, args)
        try:
            started = time.perf_counter()
            submit_seconds = submit_all(api, args.jobs)
            if args.drain:  # the queue is full; now time the worker alone
                procs += start_workers(settings_env(settings), tmp, args.workers)
                started = time.perf_counter()
            counts = wait_all(settings, args.jobs, timeout=args.jobs * args.latency + 300)
            wall = time.perf_counter() - started
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    ideal = args.jobs * args.latency / args.concurrency
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "mode": "drain (worker only, includes its start-up)"
                if args.drain
                else "end to end",
                "emulator_latency_s": args.latency,
                "emulator_max_concurrency": args.emulator_concurrency,
                "worker_threads": args.concurrency,
                "worker_processes": args.workers,
                "database": settings.database_url.split(":")[0],
                "statuses": counts,
                "submit_seconds": round(submit_seconds, 2),
                "submit_rate_per_s": round(args.jobs / submit_seconds, 1),
                "wall_seconds": round(wall, 2),
                "jobs_per_second": round(args.jobs / wall, 1),
                "ideal_seconds": round(ideal, 2),
                "efficiency": round(ideal / wall, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
