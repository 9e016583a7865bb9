"""Latency llmgw's synchronous `/v1/chat/completions` adds over a direct call to the same
GigaChat emulator, at concurrency 1 (or `--concurrency N` calls at once), beside LiteLLM's
proxy (one uvicorn worker, no database) in front of the same emulator when it is installed
(`pip install -e '.[bench]'`). The paths are interleaved in rounds, so a noisy neighbour
hits them alike. Prints JSON, then one summary line per figure.

- `direct`: `requests` straight to the emulator with a token fetched once.
- `llmgw` / `llmgw_versioned`: the bare id `GigaChat` and `GigaChat:latest` through gunicorn
  (as `llmgw api` runs it) and one worker.
- `litellm`: `litellm --config` with the emulator as an OpenAI-compatible upstream.
- `llmgw_baseline` (with `--baseline DIR`): a second API run from another checkout (e.g.
  `git worktree add /tmp/base main`), same worker, Redis and database: a change to the API
  measured side by side with what it replaces, in the same rounds.

Added latency = the path's percentile minus the direct call's.

    .venv/bin/python -m bench.latency --rounds 300
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.profile import Profiler
from bench.stack import KEY, MODEL, PROMPT, Stack, wait_for_ping
from llmgw.processes import free_port, port_open, wait_until


def main() -> None:
    args = parse_args()
    with Stack(database=args.database, latency=args.latency, threads=args.threads) as stack:
        paths = start_paths(stack, args)
        for name, call in paths.items():  # warm every path (connections, tokens, caches)
            for _ in range(args.warmup):
                call()
            print(f"warmed {name}", file=sys.stderr)
        profiler = Profiler(args.profile)
        for name, pid in stack.pids.items():
            profiler.start(name, pid, subprocesses=name.startswith("api"))
        samples = run_rounds(paths, args.rounds, args.concurrency)
        profile = profiler.stop()
    report = summarise(samples, args) | ({"profile": profile} if profile else {})
    print(json.dumps(report, indent=2))
    for line in summary_lines(report):
        print(line)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0, help="emulator seconds per call")
    parser.add_argument("--threads", type=int, default=100, help="worker pool size")
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: SQLite)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy llmgw's processes")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="calls in flight per path in each round"
    )
    parser.add_argument(
        "--baseline", type=Path, default=None, help="also run the API of this checkout"
    )
    return parser.parse_args()


def start_paths(stack: Stack, args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    token = stack.emulator_token()
    emulator_api = f"{stack.emulator}/api/v1"
    worker = stack.start_worker()
    api = stack.start_api()
    from llmgw.container import Container

    wait_for_ping(stack.env, worker, Container(stack.settings).celery)
    stack.pids = {"worker": worker.pid, "api": stack.procs[-1].pid}
    keep = args.concurrency == 1
    paths = {
        "direct": post(f"{emulator_api}/chat/completions", token, MODEL, keep_alive=keep),
        "llmgw": post(f"{api}/v1/chat/completions", KEY, MODEL, keep_alive=keep),
        "llmgw_versioned": post(
            f"{api}/v1/chat/completions", KEY, f"{MODEL}:latest", keep_alive=keep
        ),
    }
    if args.baseline is not None:
        baseline = start_baseline_api(stack, args.baseline.resolve())
        url = f"{baseline}/v1/chat/completions"
        paths["llmgw_baseline"] = post(url, KEY, MODEL, keep_alive=keep)
    if not args.no_litellm and shutil.which("litellm", path=str(Path(sys.executable).parent)):
        litellm_key = f"sk-{secrets.token_hex(16)}"  # a throw-away key for this run only
        litellm = start_litellm(stack, emulator_api, token, litellm_key)
        url = f"{litellm}/chat/completions"
        paths["litellm"] = post(url, litellm_key, MODEL, keep_alive=keep)
    return paths


def post(url: str, key: str, model: str, *, keep_alive: bool = True) -> Callable[[], None]:
    """One call of a path. `keep_alive=False` (`--concurrency` > 1): a connection per call,
    since the servers close a keep-alive connection left idle while the other paths run."""
    session = requests.Session() if keep_alive else requests
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": model, "messages": PROMPT}

    def call() -> None:
        response = session.post(url, json=body, headers=headers, timeout=30)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        assert response.json()["choices"][0]["message"]["content"]

    return call


def start_baseline_api(stack: Stack, checkout: Path) -> str:
    """`llmgw api` as `Stack.start_api` runs it, importing llmgw from `checkout` (its cwd)."""
    port = free_port()
    log = (stack.tmp / "api-baseline.log").open("w")
    args = ("api", "--port", str(port), "--workers", "2", "--threads", "64")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmgw.cli", *args],
        cwd=checkout,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.procs.append(proc)
    stack.pids["api_baseline"] = proc.pid  # `--profile` samples it beside the API
    wait_until(lambda: port_open(port), timeout=60, what="baseline api")
    return f"http://127.0.0.1:{port}"


def start_litellm(stack: Stack, upstream: str, token: str, key: str) -> str:
    """LiteLLM's proxy, one uvicorn worker, no database, the emulator as its only model."""
    config = stack.tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {token}\n"
    )
    port = free_port()
    env = stack.env | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start-up
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MASTER_KEY": key,  # it authenticates each request, as llmgw does
    }
    args = (
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    )
    stack.spawn("litellm", *args, module="litellm.proxy.proxy_cli", env=env)
    wait_until(lambda: port_open(port), timeout=120, what="litellm proxy")
    return f"http://127.0.0.1:{port}"


def run_rounds(
    paths: dict[str, Callable[[], None]], rounds: int, concurrency: int = 1
) -> dict[str, list[float]]:
    """Each round calls every path `concurrency` times at once (each call timed on its own),
    one path after the other, in an order rotated by one each round."""
    names = list(paths)
    samples: dict[str, list[float]] = {name: [] for name in names}

    def timed(call: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        call()
        return (time.perf_counter() - t0) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if concurrency == 1:
                    samples[name].append(timed(paths[name]))
                else:
                    calls = [paths[name]] * concurrency
                    samples[name].extend(pool.map(timed, calls))
    return samples


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarise(samples: dict[str, list[float]], args: argparse.Namespace) -> dict[str, Any]:
    p = {
        name: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
        for name, v in samples.items()
    }
    direct = p["direct"]
    report: dict[str, Any] = {
        "benchmark": "latency",
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "emulator_latency_s": args.latency,
        "paths": rnd(p),
    }
    added = {
        name: {"p50_ms": v["p50_ms"] - direct["p50_ms"], "p99_ms": v["p99_ms"] - direct["p99_ms"]}
        for name, v in p.items()
        if name != "direct"
    }
    report["added"] = rnd(added)
    report["versioned_over_bare_p50"] = round(
        p["llmgw_versioned"]["p50_ms"] / p["llmgw"]["p50_ms"], 3
    )
    if "llmgw_baseline" in added:
        report["ratio_llmgw_to_baseline"] = {
            k: round(added["llmgw"][k] / added["llmgw_baseline"][k], 3)
            for k in ("p50_ms", "p99_ms")
        }
    if "litellm" in added:
        report["ratio_llmgw_to_litellm"] = {
            k: round(added["llmgw"][k] / added["litellm"][k], 3) for k in ("p50_ms", "p99_ms")
        }
    else:
        report["litellm"] = "not installed: pip install -e '.[bench]'"
    return report


def rnd(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {name: {k: round(v, 2) for k, v in row.items()} for name, row in table.items()}


def summary_lines(report: dict[str, Any]) -> list[str]:
    added = report["added"]
    lines = [
        f"latency: llmgw sync adds p50 {added['llmgw']['p50_ms']} ms / p99 "
        f"{added['llmgw']['p99_ms']} ms over a direct call "
        f"({report['paths']['direct']['p50_ms']} ms p50)",
        f"latency: versioned/bare id p50 {report['versioned_over_bare_p50']} (goal <= 1.02)",
    ]
    if "ratio_llmgw_to_baseline" in report:
        base, ratio = added["llmgw_baseline"], report["ratio_llmgw_to_baseline"]
        lines.append(
            f"latency: baseline checkout adds p50 {base['p50_ms']} ms / p99 {base['p99_ms']} ms; "
            f"llmgw/baseline p50 {ratio['p50_ms']}, p99 {ratio['p99_ms']}"
        )
        if "litellm" in added:
            lines.append(
                f"latency: baseline/LiteLLM p50 "
                f"{round(base['p50_ms'] / added['litellm']['p50_ms'], 3)}, p99 "
                f"{round(base['p99_ms'] / added['litellm']['p99_ms'], 3)}"
            )
    if "ratio_llmgw_to_litellm" in report:
        ratio = report["ratio_llmgw_to_litellm"]
        lines.append(
            f"latency: LiteLLM proxy adds p50 {added['litellm']['p50_ms']} ms / p99 "
            f"{added['litellm']['p99_ms']} ms; llmgw/LiteLLM p50 {ratio['p50_ms']} (goal <= 0.5), "
            f"p99 {ratio['p99_ms']} (goal <= 1)"
        )
    return lines


if __name__ == "__main__":
    main()
