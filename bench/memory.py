"""One worker process's resident memory with 2,000 provider calls in flight, and over a soak.

The queue is filled first (jobs submitted over HTTP with the worker stopped), then one worker
with `--threads` threads starts and takes them as fast as it can while the emulator holds each
call for `--call-seconds`: in flight rises faster than calls end. RSS is read (psutil) when the
emulator's in-flight gauge stops rising. Then the soak: calls of `--soak-latency` s, jobs
submitted for `--soak-seconds` at a steady `--soak-rate` jobs/s (below what the worker drains,
so the backlog stays flat: a steady state, not an overload), RSS sampled every few seconds;
growth is the last third's mean over the first third's, and the backlog (jobs submitted and not
yet ended) at the start and the end of that window shows whether the worker kept up.
`--soak-rate 0` submits as fast as 4 client threads can (an overload test). Prints JSON, then
one summary line per figure.

    .venv/bin/python -m bench.memory --in-flight 2000 --soak-seconds 600 --soak-rate 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import requests

from bench.stack import KEY, MODEL, PROMPT, Stack, wait_for_ping

MB = 1024 * 1024
SUBMIT_THREADS = 32
FEEDERS = 8  # soak client threads; paced ones take turns, so one slow answer delays no other


def main() -> None:
    args = parse_args()
    extra = {"provider_read_timeout": args.call_seconds + 120}
    with Stack(
        database=args.database, latency=args.call_seconds, threads=args.threads, **extra
    ) as stack:
        report = measure(stack, args)
    print(json.dumps(report, indent=2))
    peak, soak = report["in_flight"], report["soak"]
    print(
        f"memory: worker RSS {peak['rss_mb']} MB with {peak['calls_in_flight']} calls in flight "
        f"(idle {report['idle_rss_mb']} MB; goal <= 300 MB at 2,000)"
    )
    print(
        f"memory: soak {soak['seconds']} s, {soak['jobs']} jobs: RSS {soak['first_third_mb']} → "
        f"{soak['last_third_mb']} MB (growth {soak['growth_mb']} MB; goal: none) at "
        f"{soak['rate']} jobs/s, backlog {soak['backlog_start']} → {soak['backlog_end']}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--in-flight", type=int, default=2000, help="jobs queued for the fill")
    parser.add_argument("--threads", type=int, default=2000, help="worker pool size")
    parser.add_argument("--call-seconds", type=float, default=150.0, help="emulator latency (fill)")
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--soak-latency", type=float, default=0.5, help="emulator latency (soak)")
    parser.add_argument(
        "--soak-rate", type=float, default=15.0, help="jobs/s during the soak (0: as fast as can)"
    )
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: SQLite)")
    return parser.parse_args()


def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    api = stack.start_api()
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=SUBMIT_THREADS))
    submit = submitter(session, api)
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(submit, range(args.in_flight)))
    worker = stack.start_worker()
    from llmgw.container import Container

    wait_for_ping(stack.env, worker, Container(stack.settings).celery)
    process = psutil.Process(worker.pid)
    idle = process.memory_info().rss
    in_flight, rss = fill(stack, process, args)
    stack.set_latency(args.soak_latency)
    wait_for_drain(stack, args.in_flight, timeout=args.call_seconds + 120)
    soak = run_soak(process, submit, args, backlog=lambda: backlog(stack))
    return {
        "benchmark": "memory",
        "worker_threads": args.threads,
        "idle_rss_mb": round(idle / MB, 1),
        "in_flight": {
            "calls_in_flight": in_flight,
            "rss_mb": round(rss / MB, 1),
            "jobs_queued": args.in_flight,
            "call_seconds": args.call_seconds,
        },
        "soak": soak,
    }


def submitter(session: requests.Session, api: str):
    auth = {"Authorization": f"Bearer {KEY}"}

    def submit(n: int) -> None:
        body = {"model": MODEL, "messages": PROMPT, "metadata": {"n": str(n)}}
        response = session.post(f"{api}/v1/jobs", json=body, headers=auth, timeout=60)
        assert response.status_code == 202, response.text

    return submit


def fill(stack: Stack, process: psutil.Process, args: argparse.Namespace) -> tuple[int, int]:
    """Wait until calls in flight stop rising (or reach the queue's size); their RSS then."""
    best, best_at = 0, time.monotonic()
    deadline = time.monotonic() + args.call_seconds * 0.9
    while time.monotonic() < deadline and best < args.in_flight:
        in_flight = stack.emulator_stats()["in_flight"]
        if in_flight > best:
            best, best_at = in_flight, time.monotonic()
        elif time.monotonic() - best_at > 20:  # the worker has taken all it can
            break
        time.sleep(0.5)
    return best, process.memory_info().rss


def backlog(stack: Stack) -> int:
    """Jobs submitted and not yet ended (queued or running)."""
    from sqlalchemy import create_engine, func, select

    from jobs.status import ACTIVE
    from storage.models import Job

    engine = create_engine(stack.settings.database_url)
    try:
        with engine.connect() as db:
            return int(db.scalar(select(func.count()).where(Job.status.in_(ACTIVE))) or 0)
    finally:
        engine.dispose()


def wait_for_drain(stack: Stack, jobs: int, timeout: float) -> None:
    """The fill's calls end before the soak starts, so the soak starts from an empty queue."""
    deadline = time.monotonic() + timeout
    while backlog(stack) and time.monotonic() < deadline:
        time.sleep(2)


def run_soak(process: psutil.Process, submit, args: argparse.Namespace, backlog) -> dict[str, Any]:
    stop = threading.Event()
    count = [0]
    lock = threading.Lock()

    def take() -> int:
        with lock:
            count[0] += 1
            return count[0]

    def flood() -> None:  # as fast as the API takes them
        while not stop.is_set():
            submit(take())

    def paced(start: float, nth: int, every: float) -> None:  # one of `nth` feeders, in turn
        k = 0
        while not stop.is_set():
            due = start + (k * FEEDERS + nth) * every
            stop.wait(max(0.0, due - time.monotonic()))
            if not stop.is_set():
                submit(take())
            k += 1

    seconds, rate = args.soak_seconds, args.soak_rate
    start = time.monotonic()
    feeders = [
        threading.Thread(target=paced, args=(start, n, 1 / rate), daemon=True)
        if rate > 0
        else threading.Thread(target=flood, daemon=True)
        for n in range(FEEDERS)
    ]
    for thread in feeders:
        thread.start()
    samples, backlogs, deadline = [], [], start + seconds
    while time.monotonic() < deadline:
        samples.append(process.memory_info().rss / MB)
        if len(samples) % 6 == 1:
            backlogs.append(backlog())
        time.sleep(min(5.0, max(0.5, seconds / 60)))
    stop.set()
    for thread in feeders:
        thread.join(timeout=70)
    third = max(1, len(samples) // 3)
    first, last = statistics.mean(samples[:third]), statistics.mean(samples[-third:])
    return {
        "seconds": seconds,
        "rate": rate or "flood",
        "jobs": count[0],
        "jobs_per_s": round(count[0] / seconds, 1),
        "samples": len(samples),
        "first_third_mb": round(first, 1),
        "last_third_mb": round(last, 1),
        "max_mb": round(max(samples), 1),
        "growth_mb": round(last - first, 1),
        "backlog_start": backlogs[0] if backlogs else None,
        "backlog_end": backlog(),
        "backlog_max": max(backlogs) if backlogs else None,
    }


if __name__ == "__main__":
    main()
