"""What counting a prompt with the tokenizer costs a submission: a cache hit, a tokenizer call
(the YandexGPT emulator's `tokenizeCompletion` over loopback HTTP) and the characters ÷ 4
fallback, through `jobs.tokens.TokenCounter` against a real Redis (embedded, or
LLMGW_BENCH_REDIS_URL). Rounds interleave the paths so drift hits all alike. Prints JSON:
per-count microseconds (median, p95) per path. A real tokenizer adds its network round trip
to the `tokenizer` figure; the `cached` one is what a repeated prompt costs.

    .venv/bin/python -m bench.tokenize --calls 300 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import redis

from jobs.tokens import TokenCounter, estimate
from llmgw.processes import free_port, start_redis, stop_process
from providers.base import Message
from providers.config import YandexGPTConfig
from providers.emulators import yandexgpt
from providers.emulators.server import start_in_thread
from providers.yandexgpt import YandexGPTProvider
from routing.service import Route

ROUTE = Route("yandexgpt", "yandexgpt", "latest", "yandexgpt/latest", "yandexgpt.latest", "active")
PROMPT = "Расскажи, как устроен шлюз к языковым моделям и зачем ему очередь. " * 20


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p95_us": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "calls": len(ordered),
    }


def run(redis_url: str, calls: int, rounds: int) -> dict[str, object]:
    server = start_in_thread(yandexgpt.create_app())
    try:
        config = YandexGPTConfig(
            base_url=server.url, api_key="emu-yandex-key", folder_id="b1gemulatorfolder"
        )
        provider = YandexGPTProvider(config)
        client = redis.Redis.from_url(redis_url)
        counter = TokenCounter(client, lambda _name: provider, lambda _id: ROUTE)
        cached = (Message("user", PROMPT),)
        counter.messages(ROUTE, cached)  # the cache entry the `cached` path hits
        serial = iter(range(10**9))

        def fresh() -> object:  # a prompt never seen: always the tokenizer
            return counter.messages(ROUTE, (Message("user", f"{next(serial)} {PROMPT}"),))

        paths = {
            "cached": lambda: counter.messages(ROUTE, cached),
            "tokenizer": fresh,
            "estimate": lambda: estimate((PROMPT,)),
        }
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, fn in paths.items():
                for _ in range(calls):
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append((time.perf_counter() - t0) * 1e6)
        client.delete(*client.keys("llmgw:tok:*"))
        return {
            "prompt_chars": len(PROMPT),
            **{name: summary(s) for name, s in samples.items()},
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("LLMGW_BENCH_REDIS_URL")
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            port = free_port()
            proc = start_redis(Path(tmp), port)
            url = f"redis://127.0.0.1:{port}/0"
        try:
            print(json.dumps(run(url, args.calls, args.rounds), indent=2))
        finally:
            if proc is not None:
                stop_process(proc)


if __name__ == "__main__":
    main()
