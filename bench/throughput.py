"""End-to-end jobs/s of llmgw against its floor, side by side in one run (the ratio holds on a
noisy machine). Prints JSON, then one summary line per figure.

- `emulator`: the GigaChat emulator alone, `--threads` clients calling it directly: it must
  be far above both others, or it is the bound.
- `floor`: bare Celery (`bench.floor`) on the same Redis, same pool and concurrency, each task
  one `requests` call to the same emulator; jobs published straight onto its queue.
- `llmgw_drain`: the worker's side alone, against the same floor: the jobs are submitted
  over HTTP with no worker running, then one worker starts and drains them; jobs/s = jobs /
  (the last `finished_at` - the first `started_at`, from the database). Submission, which
  the end-to-end figure also waits for, is left out.
- `llmgw`: jobs submitted over HTTP (`POST /v1/jobs`, gunicorn as `llmgw api` runs it) while
  one worker runs them, then long-polled (`GET /v1/jobs/<id>?wait=`) to the end.

    .venv/bin/python -m bench.throughput --jobs 1000 --latency 1 --threads 200
    .venv/bin/python -m bench.throughput --database postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis
import requests
from celery import Celery
from sqlalchemy import create_engine, func, select
from urllib3.util import Retry

from bench import floor
from bench.profile import Profiler
from bench.stack import KEY, MODEL, PROMPT, Stack, pythonpath_env, wait_for_ping
from jobs.status import TERMINAL, JobStatus
from storage.models import Job

CLIENT_THREADS = 32


def main() -> None:
    args = parse_args()
    with Stack(database=args.database, latency=args.latency, threads=args.threads) as stack:
        figures: dict[str, Any] = {"emulator": run_direct(stack, args)}
        figures["floor"] = run_floor(stack, args)
        api = stack.start_api()
        stack.pids["api"] = stack.procs[-1].pid
        figures["llmgw_drain"] = run_drain(stack, api, args)
        figures["llmgw"] = run_llmgw(stack, api, args)
    floor_rate, llmgw_rate = figures["floor"]["jobs_per_s"], figures["llmgw"]["jobs_per_s"]
    drain_rate = figures["llmgw_drain"]["jobs_per_s"]
    report = {
        "benchmark": "throughput",
        "jobs": args.jobs,
        "emulator_latency_s": args.latency,
        "worker_threads": args.threads,
        "database": (args.database or "sqlite").split(":")[0],
        **figures,
        "ratio_llmgw_to_floor": round(llmgw_rate / floor_rate, 3),
        "ratio_drain_to_floor": round(drain_rate / floor_rate, 3),
        "goal_ratio": 0.8,
    }
    print(json.dumps(report, indent=2))
    print(
        f"throughput: llmgw {llmgw_rate} jobs/s, floor {floor_rate} jobs/s, "
        f"ratio {report['ratio_llmgw_to_floor']} (goal >= 0.8); "
        f"emulator alone {figures['emulator']['calls_per_s']} calls/s"
    )
    print(
        f"throughput: the worker alone draining a filled queue {drain_rate} jobs/s, "
        f"ratio to the floor {report['ratio_drain_to_floor']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=1.0, help="emulator seconds per call")
    parser.add_argument("--threads", type=int, default=200, help="worker pool size (both)")
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: SQLite)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the llmgw run here")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on each run")
    return parser.parse_args()


def run_direct(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    token = stack.emulator_token()
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.threads))
    url = f"{stack.emulator}/api/v1/chat/completions"
    headers = {"Authorization": f"Bearer {token}"}

    def one(_: int) -> int:
        body = {"model": MODEL, "messages": PROMPT}
        return session.post(url, json=body, headers=headers, timeout=(5, 60)).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        codes = list(pool.map(one, range(args.jobs)))
    wall = time.perf_counter() - started
    assert codes.count(200) == args.jobs, f"emulator refused calls: {set(codes)}"
    return {"calls_per_s": round(args.jobs / wall, 1), "wall_s": round(wall, 2)}


def run_floor(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    env = pythonpath_env(stack.env) | {
        "LLMGW_BENCH_FLOOR_BROKER": stack.redis_url,
        "LLMGW_BENCH_FLOOR_URL": f"{stack.emulator}/api/v1/chat/completions",
        "LLMGW_BENCH_FLOOR_TOKEN": stack.emulator_token(),
    }
    worker = ("-A", "bench.floor", "worker", "-P", "threads", "-c", str(args.threads))
    proc = stack.spawn(
        "floor", *worker, "-Q", floor.QUEUE, "--loglevel", "WARNING", module="celery", env=env
    )
    app = Celery("floor-client", broker=stack.redis_url, set_as_current=False)
    try:
        wait_for_ping(env, proc, app)
        counter = redis.Redis.from_url(stack.redis_url)
        counter.delete(floor.DONE_KEY)
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(
                pool.map(
                    lambda n: app.send_task(floor.TASK, (n,), queue=floor.QUEUE), range(args.jobs)
                )
            )
        submitted = time.perf_counter() - started
        deadline = time.monotonic() + args.timeout
        while int(counter.get(floor.DONE_KEY) or 0) < args.jobs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"floor: {counter.get(floor.DONE_KEY)} of {args.jobs} ended")
            time.sleep(0.05)
        wall = time.perf_counter() - started
    finally:
        stack.stop(proc)
    return {
        "jobs_per_s": round(args.jobs / wall, 1),
        "wall_s": round(wall, 2),
        "submit_s": round(submitted, 2),
    }


def submitter(api: str, session: requests.Session):
    auth = {"Authorization": f"Bearer {KEY}"}

    def submit(n: int) -> str:
        body = {"model": MODEL, "messages": PROMPT, "metadata": {"n": str(n)}}
        response = session.post(f"{api}/v1/jobs", json=body, headers=auth, timeout=60)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    return submit


def run_drain(stack: Stack, api: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the queue with no worker, then time one worker emptying it (database clock)."""
    submit = submitter(api, client_session(CLIENT_THREADS))
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        ids = list(pool.map(submit, range(args.jobs)))
    engine = create_engine(stack.settings.database_url)
    ended = select(func.count()).where(Job.id.in_(ids), Job.status.in_(TERMINAL))
    span = select(func.min(Job.started_at), func.max(Job.finished_at), func.count()).where(
        Job.id.in_(ids), Job.status == JobStatus.SUCCEEDED
    )
    worker = stack.start_worker("worker-drain")
    profiler = Profiler(args.profile)
    profiler.start("worker-drain", worker.pid)
    try:
        deadline = time.monotonic() + args.timeout
        with engine.connect() as db:
            while db.scalar(ended) < len(ids):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"drain: {db.scalar(ended)} of {len(ids)} ended")
                time.sleep(0.2)
            first, last, succeeded = db.execute(span).one()
    finally:
        profile = profiler.stop()
        stack.stop(worker)
        engine.dispose()
    assert succeeded == len(ids), f"drain: {succeeded} of {len(ids)} succeeded"
    wall = (last - first).total_seconds()
    return {
        "jobs_per_s": round(len(ids) / wall, 1),
        "wall_s": round(wall, 2),
        **({"profile": profile} if profile else {}),
    }


def run_llmgw(stack: Stack, api: str, args: argparse.Namespace) -> dict[str, Any]:
    worker = stack.start_worker()
    wait_for_ping(stack.env, worker, stack_celery(stack))
    profiler = Profiler(args.profile)
    profiler.start("worker", worker.pid)
    profiler.start("api", stack.pids["api"], subprocesses=True)
    session = client_session(CLIENT_THREADS)
    auth = {"Authorization": f"Bearer {KEY}"}
    submit = submitter(api, session)

    def wait(job_id: str) -> str:
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            response = session.get(f"{api}/v1/jobs/{job_id}?wait=30", headers=auth, timeout=60)
            status = response.json()["status"]
            if status not in ("queued", "running"):
                return status
        raise TimeoutError(f"job {job_id} did not end")

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        ids = list(pool.map(submit, range(args.jobs)))
        submitted = time.perf_counter() - started
        statuses = list(pool.map(wait, ids))
    wall = time.perf_counter() - started
    profile = profiler.stop()
    ended = {s: statuses.count(s) for s in set(statuses)}
    assert ended == {"succeeded": args.jobs}, f"jobs did not all succeed: {ended}"
    return {
        "jobs_per_s": round(args.jobs / wall, 1),
        "wall_s": round(wall, 2),
        "submit_s": round(submitted, 2),
        "submit_per_s": round(args.jobs / submitted, 1),
        **({"profile": profile} if profile else {}),
    }


def client_session(size: int) -> requests.Session:
    """Pooled; a GET on a keep-alive connection the server has just closed is sent again."""
    session = requests.Session()
    retry = Retry(total=3, connect=3, read=3, allowed_methods=["GET"], backoff_factor=0.05)
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=size, max_retries=retry))
    return session


def stack_celery(stack: Stack) -> Celery:
    from llmgw.container import Container

    return Container(stack.settings).celery


if __name__ == "__main__":
    main()
