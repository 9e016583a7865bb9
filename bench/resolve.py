"""Resolution cost: uncached (database) vs cached (Redis version check + in-process snapshot).

Both run in this one process, interleaved in rounds so drift hits both alike, against the
same SQLite database and a real Redis (embedded, or LLMGW_BENCH_REDIS_URL). Prints JSON:
per-call microseconds (median and p95) for each path, a bare Redis GET as the floor, and
`speedup` = uncached median / cached median. `cached_overhead_us` is what versioning adds
on top of the one Redis round trip that checks the catalogue version.

    .venv/bin/python -m bench.resolve --calls 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from llmgw.devdb import reset_database, seed
from llmgw.processes import free_port, start_redis, stop_process
from routing.cache import VERSION_KEY, Resolver
from routing.service import resolve
from storage.db import make_engine, make_session_factory

MODEL_IDS = ("yandexgpt-pro:rc", "GigaChat-Pro", "yandexgpt-lite:latest", "yandexgpt:23.10.2024")


def timed(fn: Callable[[str], object], calls: int) -> list[float]:
    samples = []
    for i in range(calls):
        model_id = MODEL_IDS[i % len(MODEL_IDS)]
        t0 = time.perf_counter()
        fn(model_id)
        samples.append((time.perf_counter() - t0) * 1e6)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p95_us": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "calls": len(ordered),
    }


def run(redis_url: str, database_url: str, calls: int, rounds: int) -> dict[str, object]:
    sessions = make_session_factory(make_engine(database_url))
    client = redis.Redis.from_url(redis_url)
    resolver = Resolver(sessions, client)

    def uncached(model_id: str) -> object:
        with sessions() as session:
            return resolve(session, model_id)

    paths = {"uncached": uncached, "cached": resolver.resolve, "redis_get": _get(client)}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for fn in paths.values():
        timed(fn, 50)  # warm-up: connections, snapshot, statement cache
    for _ in range(rounds):
        for name, fn in paths.items():
            samples[name] += timed(fn, calls)
    figures = {name: summary(s) for name, s in samples.items()}
    cached, uncached_ = figures["cached"]["median_us"], figures["uncached"]["median_us"]
    return {
        "bench": "resolve",
        "database": database_url.split(":")[0],
        "model_ids": list(MODEL_IDS),
        **figures,
        "speedup": round(uncached_ / cached, 1),
        "cached_overhead_us": round(cached - figures["redis_get"]["median_us"], 1),
    }


def _get(client: redis.Redis) -> Callable[[str], object]:
    return lambda _model_id: client.get(VERSION_KEY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per path per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        reset_database(database_url)
        seed(database_url)
        redis_url, proc = os.environ.get("LLMGW_BENCH_REDIS_URL"), None
        if not redis_url:
            port = free_port()
            redis_dir = Path(tmp) / "redis"
            proc = start_redis(redis_dir, port, log_file=redis_dir / "redis.log")
            redis_url = f"redis://127.0.0.1:{port}/0"
        try:
            print(json.dumps(run(redis_url, database_url, args.calls, args.rounds), indent=2))
        finally:
            if proc is not None:
                stop_process(proc)


if __name__ == "__main__":
    main()
