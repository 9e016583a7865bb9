"""The long-running processes, one each: `llmgw api`, `worker`, `beat`, `flower`, `emulator`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import click

from llmgw.settings import Settings, load_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option(
    "--threads",
    default=64,
    show_default=True,
    help="threads per worker; long-polls and sync completions each hold one while they wait",
)
def api(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn."""
    settings = load_settings()  # fail fast on a malformed environment, before gunicorn forks
    _multiprocess_metrics_dir(port)
    args = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}"]
    args += ["--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"]
    args += ["--graceful-timeout", str(graceful_timeout(settings))]
    args += ["--access-logfile", "-", "llmgw.app:create_app()"]
    os.execv(sys.executable, args)


def graceful_timeout(settings: Settings) -> int:
    """Seconds gunicorn gives requests in flight on a stop: the longest a request may wait
    (a long-poll, a synchronous completion) and a little more, so none is cut off."""
    return math.ceil(max(settings.max_wait_seconds, settings.sync_timeout_seconds)) + 5


def _multiprocess_metrics_dir(port: int) -> None:
    """gunicorn forks workers: Prometheus counters must be shared through files."""
    import shutil
    import tempfile

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = Path(tempfile.gettempdir()) / f"llmgw-metrics-{port}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@click.command()
@click.option("--queues", "-Q", default=None, help="comma-separated queues (default: all)")
@click.option("--concurrency", "-c", default=None, type=int, help="threads (default: settings)")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--metrics-port", default=0, show_default=True, help="Prometheus port (0: none)")
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="address for the metrics port (0.0.0.0 in a container)",
)
def worker(
    queues: str | None, concurrency: int | None, loglevel: str, metrics_port: int, metrics_host: str
) -> None:
    """Run a Celery worker (thread pool) on some or all provider queues."""
    from llmgw.celery import make_celery
    from workers.queues import all_queue_names

    settings = load_settings()
    if concurrency:  # the threads this process runs size its pools and the batch cap
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            *("-P", "threads", "-c", str(settings.worker_concurrency)),
            *("-Q", queues or ",".join(all_queue_names())),  # events: on when Flower asks
            *(f"--loglevel={loglevel}", "-n", f"llmgw-{os.getpid()}@%h"),
        ]
    )


@click.command()
@click.option("--schedule", default="var/celerybeat-schedule", show_default=True)
def beat(schedule: str) -> None:
    """Run celery beat: the sweeper, the batch feeder and the callback delivery."""
    from llmgw.celery import make_celery

    Path(schedule).parent.mkdir(parents=True, exist_ok=True)
    app = make_celery(load_settings())
    app.start(["beat", "-s", schedule, "--loglevel=INFO"])


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--port", default=5555, show_default=True)
def flower(address: str, port: int) -> None:
    """Run Flower, the Celery monitor, against the configured broker (behind basic auth when
    LLMGW_FLOWER_BASIC_AUTH is set; Flower's own FLOWER_BASIC_AUTH works too)."""
    from llmgw.celery import make_celery

    settings = load_settings()
    args = ["flower", f"--address={address}", f"--port={port}"]
    if settings.flower_basic_auth is not None:  # an argument of this process only: not in `ps`
        args.append(f"--basic-auth={settings.flower_basic_auth.get_secret_value()}")
    make_celery(settings).start(args)


@click.command()
@click.argument("kind", type=click.Choice(["yandexgpt", "gigachat"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=int, help="default: 8081 yandexgpt, 8082 gigachat")
@click.option("--api-key", multiple=True, help="YandexGPT: an accepted Api-Key (repeatable)")
@click.option("--credentials", multiple=True, help="GigaChat: an accepted Basic key")
@click.option("--latency", default=0.0, show_default=True, help="seconds added to each call")
@click.option(
    "--max-concurrency",
    default=10,
    show_default=True,
    help="in-flight calls per credential before 429 (Yandex: 10 per folder; GigaChat: 1-10)",
)
def emulator(kind, host, port, api_key, credentials, latency, max_concurrency) -> None:  # noqa: ANN001
    """Run a local emulator of a provider's HTTP API."""
    from providers.emulators import gigachat, yandexgpt
    from providers.emulators.server import serve

    limits = {"latency": latency, "max_concurrency": max_concurrency}
    if kind == "yandexgpt":
        yandex = yandexgpt.YandexEmulatorConfig(**limits)
        if api_key:
            yandex.api_keys = set(api_key)
        serve(yandexgpt.create_app(yandex), host, port or 8081)
    else:
        giga = gigachat.GigaChatEmulatorConfig(**limits)
        if credentials:
            giga.credentials = set(credentials)
        serve(gigachat.create_app(giga), host, port or 8082)
