"""One worker process's resident memory with 2,000 provider calls in flight, and over a soak.

The queue is filled first (jobs submitted over HTTP with the worker stopped), then one worker
with `--threads` threads starts and takes them as fast as it can while the emulator holds each
call for `--call-seconds`: in flight rises faster than calls end. RSS is read (psutil) when the
emulator's in-flight gauge stops rising. Then the soak: calls of `--soak-latency` s, jobs
submitted continuously for `--soak-seconds`, RSS sampled every few seconds; growth is the last
third's mean over the first third's. Prints JSON, then one summary line per figure.

    .venv/bin/python -m bench.memory --in-flight 2000 --soak-seconds 600
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
        f"{soak['last_third_mb']} MB (growth {soak['growth_mb']} MB; goal: none)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--in-flight", type=int, default=2000, help="jobs queued for the fill")
    parser.add_argument("--threads", type=int, default=2000, help="worker pool size")
    parser.add_argument("--call-seconds", type=float, default=150.0, help="emulator latency (fill)")
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--soak-latency", type=float, default=0.5, help="emulator latency (soak)")
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
    soak = run_soak(process, submit, args.soak_seconds)
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


def run_soak(process: psutil.Process, submit, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    count = [0]

    def feed() -> None:
        while not stop.is_set():
            submit(count[0])
            count[0] += 1

    feeders = [threading.Thread(target=feed, daemon=True) for _ in range(4)]
    for thread in feeders:
        thread.start()
    samples, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(process.memory_info().rss / MB)
        time.sleep(min(5.0, max(0.5, seconds / 60)))
    stop.set()
    for thread in feeders:
        thread.join(timeout=70)
    third = max(1, len(samples) // 3)
    first, last = statistics.mean(samples[:third]), statistics.mean(samples[-third:])
    return {
        "seconds": seconds,
        "jobs": count[0],
        "samples": len(samples),
        "first_third_mb": round(first, 1),
        "last_third_mb": round(last, 1),
        "max_mb": round(max(samples), 1),
        "growth_mb": round(last - first, 1),
    }


if __name__ == "__main__":
    main()
