"""A batch at scale, and what it does to interactive traffic, from one run. Prints JSON, then
a one-line summary.

A real stack: embedded Redis, SQLite, the API (gunicorn), one worker, beat, the YandexGPT
emulator at a fixed latency. First interactive probe jobs are sent every `--probe-every`
seconds on the idle gateway; then one batch of `--lines` lines is created and the probes go
on until it ends. A probe's queue wait is the time from its submission (the job row's
`created_at`) to its claim by a worker (`started_at`). Meanwhile the worker's and the API's
RSS and the Redis queue lengths are sampled every second; their maxima are the bounded-memory
evidence (at most the feeder's window of line messages in Redis, never the whole batch).

    .venv/bin/python -m bench.batch --lines 10000 --latency 0.5     # lines/s, queue wait
    .venv/bin/python -m bench.batch --lines 100000 --latency 0.02   # RSS and queue maxima
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import select

from bench.profile import Profiler
from llmgw.container import Container
from llmgw.devdb import settings_env
from llmgw.processes import free_port, port_open, start_redis, stop_process, wait_until
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_FOLDER, EMULATOR_YANDEX_KEY
from storage.db import make_engine, make_session_factory
from storage.models import Batch, Job, utcnow
from workers.queues import MAINTENANCE_QUEUE, all_queue_names, waiting_messages

KEY = "bench-master-key"
MODEL = "yandexgpt-lite:latest"
UNACKED = "unacked"  # kombu's hash of the messages a worker holds and has not acked


def spawn(env: dict[str, str], log: Path, *args: str, nice: int = 0) -> subprocess.Popen:
    with log.open("w") as out:
        cmd = [*(("nice", "-n", str(nice)) if nice else ()), sys.executable, "-m", "llmgw.cli"]
        return subprocess.Popen(
            [*cmd, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass
class Stack:
    procs: dict[str, subprocess.Popen]
    settings: Settings
    api: str


def start(tmp: Path, args: argparse.Namespace) -> Stack:
    redis_port, emu_port, api_port = free_port(), free_port(), free_port()
    procs = {"redis": start_redis(tmp / "redis", redis_port, log_file=tmp / "redis.log")}
    emu = f"http://127.0.0.1:{emu_port}"
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        database_url=args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        master_key=KEY,
        yandexgpt_base_url=emu,
        yandexgpt_operations_url=emu,
        yandexgpt_iam_url=emu,
        yandexgpt_api_key=EMULATOR_YANDEX_KEY,
        yandexgpt_folder_id=EMULATOR_FOLDER,
        worker_concurrency=args.concurrency,
        batch_window=args.window,
        batch_max_in_flight=args.max_in_flight,
        max_body_bytes=256 * 1024 * 1024,
        _env_file=None,
    )
    env = settings_env(settings)
    for step in (("db", "upgrade"), ("models", "seed")):
        subprocess.run([sys.executable, "-m", "llmgw.cli", *step], env=env, check=True)
    emulator = ("emulator", "yandexgpt", "--port", str(emu_port), "--api-key", EMULATOR_YANDEX_KEY)
    limits = ("--latency", str(args.latency), "--max-concurrency", "5000")
    procs["emulator"] = spawn(env, tmp / "emu.log", *emulator, *limits)
    worker = ("worker", "-c", str(args.concurrency), "--loglevel", "WARNING")
    if args.feeder_worker:  # the feeder (maintenance queue) in a process of its own
        provider_queues = ",".join(q for q in all_queue_names() if q != MAINTENANCE_QUEUE)
        worker = (*worker, "-Q", provider_queues)
        feeder = ("worker", "-c", "4", "--loglevel", "WARNING", "-Q", MAINTENANCE_QUEUE)
        procs["feeder"] = spawn(env, tmp / "feeder.log", *feeder, nice=args.feeder_nice)
    procs["worker"] = spawn(env, tmp / "worker.log", *worker)
    procs["beat"] = spawn(env, tmp / "beat.log", "beat", "--schedule", str(tmp / "beat-schedule"))
    procs["api"] = spawn(env, tmp / "api.log", "api", "--port", str(api_port))
    for port in (emu_port, api_port):
        wait_until(lambda p=port: port_open(p), timeout=60, what=f"port {port}")
    return Stack(procs, settings, f"http://127.0.0.1:{api_port}")


def warm_up(api: str, http: requests.Session) -> None:
    """One job end to end: the worker is connected and the emulator answers."""
    job = submit_probe(api, http)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        url = f"{api}/v1/jobs/{job}?wait=5"
        status = http.get(url, headers=auth(), timeout=10).json()["status"]
        if status in ("succeeded", "incomplete"):
            return
        assert status in ("queued", "running"), f"the warm-up job ended {status}"
        time.sleep(0.2)
    raise TimeoutError("the warm-up job did not succeed")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


ANSWERED_AT: dict[str, float] = {}  # probe job id -> when its POST's 202 reached the client


def submit_probe(api: str, http: requests.Session) -> str:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "probe"}]}
    response = http.post(f"{api}/v1/jobs", json=body, headers=auth(), timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    ANSWERED_AT[job_id] = time.time()
    return job_id


def batch_file(n: int) -> str:
    return "\n".join(
        json.dumps(
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": f"{i} + {i}?"}],
                },
            }
        )
        for i in range(n)
    )


def create_batch(api: str, http: requests.Session, n: int) -> tuple[str, float]:
    started = time.perf_counter()
    headers = {**auth(), "Content-Type": "application/jsonl"}
    response = http.post(f"{api}/v1/batches", data=batch_file(n), headers=headers, timeout=600)
    assert response.status_code == 201, response.text[:500]
    return response.json()["id"], time.perf_counter() - started


# -- sampling --------------------------------------------------------------------------------


def group_rss_mb(pgid: int) -> float:
    """RSS of every process in a process group (the API's gunicorn master and workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss pages
        except (OSError, IndexError, ValueError):
            continue
    return total / 2**20


@dataclass
class Sampler:
    """Samples RSS and Redis every `every` seconds in a thread; keeps the maxima."""

    procs: dict[str, subprocess.Popen]
    redis_url: str
    every: float = 1.0
    maxima: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        queues = all_queue_names()
        while not self.stop.wait(self.every):
            now = {
                "worker_rss_mb": group_rss_mb(self.procs["worker"].pid),
                "api_rss_mb": group_rss_mb(self.procs["api"].pid),
                **(
                    {"feeder_worker_rss_mb": group_rss_mb(self.procs["feeder"].pid)}
                    if "feeder" in self.procs
                    else {}
                ),
                "redis_used_memory_mb": int(client.info("memory")["used_memory"]) / 2**20,
                "queued_messages": sum(waiting_messages(client, q) for q in queues),
                "unacked_messages": int(client.hlen(UNACKED)),
                "redis_keys": int(client.dbsize()),
            }
            for name, value in now.items():
                self.maxima[name] = max(self.maxima.get(name, 0.0), value)
            self.first = self.first or now
            self.last = now
            self.samples += 1


@dataclass
class Tracer:
    """Celery's task events (turned on in the workers for the run: a Redis publish per task
    state change) with their timestamps, to split a probe's queue wait into its legs:
    submission → the worker's consumer took the message (`task-received`: the API's commit
    and publish, Redis, the consumer's fetch), → a pool thread began the task (`task-started`:
    waiting for a free thread), → the claim (`started_at`: the task's first steps). Beside
    them, `to_answer`: submission → the 202 reached the client (the insert's commit, the
    publish, the response)."""

    celery: Any
    received: dict[str, float] = field(default_factory=dict)  # job id -> first receipt
    started: dict[str, float] = field(default_factory=dict)  # job id -> first start
    jobs: dict[str, str] = field(default_factory=dict)  # task id -> job id
    receiver: Any = None

    def run(self) -> None:
        def on_received(event: dict[str, Any]) -> None:
            if event.get("name") != "llmgw.run_job":
                return
            job = str(event.get("args", "")).strip("[]()'\", ")
            self.jobs[event["uuid"]] = job
            self.received.setdefault(job, event["timestamp"])

        def on_started(event: dict[str, Any]) -> None:
            job = self.jobs.get(event["uuid"])
            if job is not None:
                self.started.setdefault(job, event["timestamp"])

        with self.celery.connection_for_read() as conn:
            handlers = {"task-received": on_received, "task-started": on_started}
            self.receiver = self.celery.events.Receiver(conn, handlers=handlers)
            self.receiver.capture(limit=None, timeout=None, wakeup=True)

    def start(self) -> None:
        threading.Thread(target=self.run, daemon=True).start()
        wait_until(lambda: self.receiver is not None, timeout=10, what="the event receiver")
        time.sleep(0.5)
        self.celery.control.enable_events()

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True


# -- probes ----------------------------------------------------------------------------------


def probe_until(api: str, http: requests.Session, every: float, done: Any, limit: int) -> list:
    """Send a probe every `every` seconds until `done()` or `limit` probes; their ids."""
    ids: list[str] = []
    while len(ids) < limit and not done():
        ids.append(submit_probe(api, http))
        time.sleep(every)
    return ids


def claimed_probes(settings: Settings, ids: list[str], timeout: float = 120) -> list[Any]:
    """Each probe's (id, created_at, started_at), once claimed (waits for the claims)."""
    sessions = make_session_factory(make_engine(settings.database_url))
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            rows = session.execute(
                select(Job.id, Job.created_at, Job.started_at).where(Job.id.in_(ids))
            ).all()
        if all(row.started_at for row in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return [row for row in rows if row.started_at is not None]


def queue_waits(settings: Settings, ids: list[str]) -> list[float]:
    """Seconds from each probe's submission to its claim."""
    return [(r.started_at - r.created_at).total_seconds() for r in claimed_probes(settings, ids)]


def legs(settings: Settings, ids: list[str], tracer: Tracer) -> dict[str, Any]:
    """The probes' queue waits split at the worker's receipt and the task's start."""
    epoch = lambda t: t.replace(tzinfo=UTC).timestamp()  # noqa: E731 (naive UTC)
    split: dict[str, list[float]] = {
        "to_answer": [],
        "to_worker": [],
        "to_thread": [],
        "to_claim": [],
    }
    for row in claimed_probes(settings, ids):
        received, started = tracer.received.get(row.id), tracer.started.get(row.id)
        if received is None or started is None:
            continue
        split["to_answer"].append(ANSWERED_AT[row.id] - epoch(row.created_at))
        split["to_worker"].append(received - epoch(row.created_at))
        split["to_thread"].append(started - received)
        split["to_claim"].append(epoch(row.started_at) - started)
    return {name: stats(values) for name, values in split.items()}


def stats(waits: list[float]) -> dict[str, float | int]:
    if not waits:
        return {"n": 0}
    ordered = sorted(waits)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {
        "n": len(ordered),
        "p50_ms": ms(statistics.median(ordered)),
        "p95_ms": ms(p95),
        "max_ms": ms(ordered[-1]),
    }


def batch_state(api: str, http: requests.Session, batch_id: str) -> dict[str, Any]:
    return http.get(f"{api}/v1/batches/{batch_id}", headers=auth(), timeout=30).json()


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    http = requests.Session()
    warm_up(stack.api, http)
    tracer = Tracer(Container(stack.settings).celery) if args.trace else None
    if tracer is not None:
        tracer.start()
    idle = probe_until(stack.api, http, args.probe_every, lambda: False, args.idle_probes)
    sampler = Sampler(stack.procs, str(stack.settings.redis_url))
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    batch_id, create_s = create_batch(stack.api, http, args.lines)
    profiler = Profiler(args.profile)
    for name in ("worker", "feeder", "api"):
        if name in stack.procs:
            pid = stack.procs[name].pid
            profiler.start(name, pid, subprocesses=name == "api", idle=args.profile_idle)
    deadline = time.monotonic() + args.timeout
    last: dict[str, Any] = {}

    def ended() -> bool:
        nonlocal last
        last = batch_state(stack.api, http, batch_id)
        return last["status"] not in ("in_progress", "validating") or time.monotonic() > deadline

    limit = int(args.timeout / args.probe_every) + 1
    busy = probe_until(stack.api, http, args.probe_every, ended, limit)
    sampler.stop.set()
    thread.join()
    profile = profiler.stop()
    result = report(stack, args, batch_id, create_s, last, idle, busy, sampler)
    if tracer is not None:
        time.sleep(1)  # the last events
        tracer.stop()
        result["queue_wait_legs"] = {
            "idle": legs(stack.settings, idle, tracer),
            "during_batch": legs(stack.settings, busy, tracer),
        }
    if profile:
        result["profile"] = profile
    return result


def report(stack, args, batch_id, create_s, last, idle, busy, sampler) -> dict[str, Any]:  # noqa: ANN001
    sessions = make_session_factory(make_engine(stack.settings.database_url))
    with sessions() as session:
        batch = session.get_one(Batch, batch_id)
        ended_at = batch.completed_at or batch.expired_at or utcnow()  # else: still running
        seconds = (ended_at - batch.created_at).total_seconds()
    counts = last.get("request_counts", {})
    done = counts.get("completed", 0) + counts.get("failed", 0)
    return {
        "lines": args.lines,
        "status": last.get("status"),
        "request_counts": counts,
        "emulator_latency_s": args.latency,
        "worker_threads": args.concurrency,
        "batch_window": args.window,
        "batch_max_in_flight": args.max_in_flight or max(1, args.concurrency // 2),
        "feeder_worker": args.feeder_worker,
        "feeder_nice": args.feeder_nice,
        "database": stack.settings.database_url.split(":")[0],
        "create_request_s": round(create_s, 2),
        "run_s": round(seconds, 2),
        "lines_per_s": round(done / seconds, 1) if seconds else None,
        "ideal_lines_per_s": round(
            min(args.window, args.max_in_flight or max(1, args.concurrency // 2)) / args.latency,
            1,
        ),
        "interactive_queue_wait": {
            "idle": stats(queue_waits(stack.settings, idle)),
            "during_batch": stats(queue_waits(stack.settings, busy)),
        },
        "maxima_during_batch": {k: round(v, 1) for k, v in sampler.maxima.items()},
        "first_sample": {k: round(v, 1) for k, v in sampler.first.items()},
        "last_sample": {k: round(v, 1) for k, v in sampler.last.items()},
        "samples": sampler.samples,
    }


def summary(result: dict[str, Any]) -> str:
    waits = result["interactive_queue_wait"]
    idle, busy = waits["idle"], waits["during_batch"]
    peak = result["maxima_during_batch"]
    return (
        f"{result['lines']} lines {result['status']} in {result['run_s']} s = "
        f"{result['lines_per_s']} lines/s; interactive wait p50/p95/max idle "
        f"{idle.get('p50_ms')}/{idle.get('p95_ms')}/{idle.get('max_ms')} ms, during "
        f"{busy.get('p50_ms')}/{busy.get('p95_ms')}/{busy.get('max_ms')} ms; max worker RSS "
        f"{peak.get('worker_rss_mb')} MB, API RSS {peak.get('api_rss_mb')} MB, queued "
        f"{peak.get('queued_messages')} + unacked {peak.get('unacked_messages')} messages"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.5, help="emulator seconds per call")
    parser.add_argument("--concurrency", type=int, default=100, help="worker threads")
    parser.add_argument("--window", type=int, default=200, help="LLMGW_BATCH_WINDOW")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        help="LLMGW_BATCH_MAX_IN_FLIGHT (default: half the worker threads)",
    )
    parser.add_argument("--probe-every", type=float, default=0.5)
    parser.add_argument("--idle-probes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800, help="bound on the batch's run")
    parser.add_argument(
        "--database-url", help="an empty database (e.g. PostgreSQL); default: a new SQLite file"
    )
    parser.add_argument(
        "--feeder-worker",
        action="store_true",
        help="run the maintenance queue (the feeder) in a second worker process",
    )
    parser.add_argument(
        "--feeder-nice",
        type=int,
        default=0,
        help="with --feeder-worker: run that process at this nice level (lower CPU priority)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="turn Celery's task events on and split each probe's wait at the worker's receipt",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker(s) during the batch into this folder"
    )
    parser.add_argument(
        "--profile-idle", action="store_true", help="include idle (waiting) threads in the profile"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmgw-bench-batch-"))
    print(f"logs in {tmp}", file=sys.stderr)
    stack = start(tmp, args)
    try:
        result = run(stack, args)
    finally:
        for proc in reversed(list(stack.procs.values())):
            stop_process(proc)
    print(json.dumps(result, indent=2))
    print(summary(result))


if __name__ == "__main__":
    main()
