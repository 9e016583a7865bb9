"""Can one emulator hold N concurrent slow requests without being the bottleneck? Prints JSON.

N clients post a completion at once to an emulator with a fixed latency and a concurrency
limit above N. Ideally all of them finish after `latency` seconds; `ratio` is the measured
wall time over that ideal (1.0 is perfect). The emulator runs in its own process (as under
`llmgw up`), so the client's CPU does not count against it; `server_cpu_s` is the CPU time the
emulator process used during the run: far below `wall_s` means the emulator was not the
bottleneck (the client, one Python process opening N connections at once, usually is).

    .venv/bin/python -m bench.emulator_concurrency --requests 1000 --latency 1
    .venv/bin/python -m bench.emulator_concurrency --provider gigachat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import time
import uuid

import aiohttp

from llmgw.processes import free_port, port_open, wait_until
from providers.emulators import gigachat, yandexgpt
from providers.emulators.server import serve


def build_app(provider: str, latency: float, limit: int):
    if provider == "yandexgpt":
        config = yandexgpt.YandexEmulatorConfig(latency=latency, max_concurrency=limit)
        return yandexgpt.create_app(config)
    config = gigachat.GigaChatEmulatorConfig(latency=latency, max_concurrency=limit)
    return gigachat.create_app(config)


async def prepare_call(session: aiohttp.ClientSession, provider: str, url: str):
    """(url, json, headers) of one generation call, fetching a GigaChat token first."""
    if provider == "yandexgpt":
        body = {
            "modelUri": "gpt://b1gemulatorfolder/yandexgpt-lite/latest",
            "messages": [{"role": "user", "text": "bench"}],
        }
        return (
            f"{url}/foundationModels/v1/completion",
            body,
            {"Authorization": "Api-Key emu-yandex-key"},
        )
    headers = {"Authorization": f"Basic {gigachat.DEFAULT_KEY}", "RqUID": str(uuid.uuid4())}
    async with session.post(
        f"{url}/api/v2/oauth", data={"scope": "GIGACHAT_API_PERS"}, headers=headers
    ) as response:
        token = (await response.json())["access_token"]
    body = {"model": "GigaChat", "messages": [{"role": "user", "content": "bench"}]}
    return f"{url}/api/v1/chat/completions", body, {"Authorization": f"Bearer {token}"}


async def one_call(session: aiohttp.ClientSession, call) -> tuple[int, float]:
    target, body, headers = call
    started = time.perf_counter()
    async with session.post(target, json=body, headers=headers) as response:
        await response.read()
        return response.status, time.perf_counter() - started


async def run(provider: str, url: str, requests: int) -> tuple[list[tuple[int, float]], float]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        call = await prepare_call(session, provider, url)
        started = time.perf_counter()
        results = await asyncio.gather(*(one_call(session, call) for _ in range(requests)))
        return results, time.perf_counter() - started


def serve_emulator(provider: str, latency: float, limit: int, port: int) -> None:
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        serve(build_app(provider, latency, limit), "127.0.0.1", port)  # stdout: JSON only


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    wait_until(lambda: port_open(port), timeout=timeout, what=f"emulator on port {port}")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc (Linux); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=["yandexgpt", "gigachat"], default="yandexgpt")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(
        target=serve_emulator, args=(args.provider, args.latency, args.requests + 1, port)
    )
    server.start()
    try:
        wait_for_port(port)
        cpu_before = cpu_seconds(server.pid)
        results, wall = asyncio.run(run(args.provider, f"http://127.0.0.1:{port}", args.requests))
        cpu_after = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.join(10)
    print(json.dumps(report(args, results, wall, cpu_before, cpu_after)))


def report(args, results, wall: float, cpu_before, cpu_after) -> dict:
    durations = sorted(d for _, d in results)
    server_cpu = None if cpu_before is None else round(cpu_after - cpu_before, 3)
    return {
        "provider": args.provider,
        "requests": args.requests,
        "latency_s": args.latency,
        "ok": sum(1 for status, _ in results if status == 200),
        "wall_s": round(wall, 3),
        "ideal_s": args.latency,
        "ratio": round(wall / args.latency, 3) if args.latency else None,
        "p50_s": round(statistics.median(durations), 3),
        "p99_s": round(durations[int(len(durations) * 0.99) - 1], 3),
        "server_cpu_s": server_cpu,
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
