"""`llmgw up`: the whole stack on one machine, in the foreground, until Ctrl-C.

Embedded Redis (unless LLMGW_REDIS_URL), SQLite migrated to head and seeded, both provider
emulators (unless real credentials are configured), the API under gunicorn, one worker on
every queue, and Flower (behind basic auth, always). Every child is stopped, in reverse
order, when the stack is interrupted.

A child that dies is started again, with the same command and port, after a backoff that
doubles with each crash (`RestartPolicy`), and the supervisor says so; Redis too (its AOF keeps
what it had). Only a crash loop — one child dying `max_crashes` times within `window`
seconds — stops the whole stack, with exit code 1. Chosen over stopping at the first death
(the old behaviour: one worker's OOM kill took the API down with it) and over supervisord or
systemd units (the point of `llmgw up` is one command on a bare machine).

While it runs, `var/llmgw-up.json` records the URLs it chose (the embedded Redis's port is
random) with its pid, so a command in a second terminal (`llmgw models circuits`) finds the
same Redis; it is written once the emulators are up, removed when the stack stops, and a
reader ignores it when that pid is gone (a crash, kill -9). Writer and reader live here.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from llmgw.processes import (
    free_port,
    kill_group,
    port_open,
    start_redis,
    stop_processes,
    wait_until,
)
from llmgw.settings import load_settings

# What the services use: stopped after them.
BACKING = frozenset({"redis", "emulator-yandexgpt", "emulator-gigachat"})
EMULATOR_YANDEX_KEY = "emu-yandex-key"
EMULATOR_FOLDER = "b1gemulatorfolder"
EMULATOR_GIGACHAT_KEY = base64.b64encode(b"emu-client:emu-secret").decode()


@dataclass
class Child:
    """A process of the stack and how to start it again."""

    name: str
    start: Callable[[], subprocess.Popen]
    proc: subprocess.Popen


@dataclass
class Stack:
    host: str
    api_port: int
    flower_port: int
    var_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    worker_metrics_port: int = 0
    emulator_urls: dict[str, str] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        """Start `llmgw <args>` as a child (a restart reads `env` as it is then)."""
        cmd = [sys.executable, "-m", "llmgw.cli", *args]
        return self.adopt(name, lambda: subprocess.Popen(cmd, env=self.env, start_new_session=True))

    def adopt(self, name: str, start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        child = Child(name, start, start())
        self.children.append(child)
        return child.proc

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def wait_port(self, name: str, port: int, timeout: float = 60) -> None:
        proc = self.child(name).proc
        wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=timeout, what=name)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} while starting")

    def stop(self) -> None:
        """The services first (API, worker, beat, Flower), then what they use (Redis, the
        emulators); the children of each group stop together under one deadline."""
        services = [c.proc for c in self.children if c.name not in BACKING]
        stop_processes(services)
        stop_processes([c.proc for c in self.children if c.name in BACKING])
        self.children.clear()


def ensure_redis(stack: Stack) -> None:
    if stack.env.get("LLMGW_REDIS_URL"):
        return
    port = free_port()
    data, log = stack.var_dir / "redis", stack.var_dir / "redis.log"
    stack.adopt("redis", lambda: start_redis(data, port, log_file=log))
    stack.env["LLMGW_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"


def ensure_master_key(stack: Stack) -> str:
    key = stack.env.get("LLMGW_MASTER_KEY")
    if not key:
        key = stack.env["LLMGW_MASTER_KEY"] = "llmgw-" + secrets.token_urlsafe(24)
    return key


def ensure_flower_auth(stack: Stack) -> str:
    """Flower never runs open: LLMGW_FLOWER_BASIC_AUTH, or a generated `admin:<password>`."""
    settings = load_settings()  # the environment and .env, as the flower child will read them
    if settings.flower_basic_auth is not None:
        return settings.flower_basic_auth.get_secret_value()
    auth = stack.env["LLMGW_FLOWER_BASIC_AUTH"] = "admin:" + secrets.token_urlsafe(18)
    return auth


CALLBACK_SECRET_FILE = "callback-signing-secret"


def ensure_callback_secret(stack: Stack) -> None:
    """Callbacks are signed: LLMGW_CALLBACK_SIGNING_SECRET, or one generated once and kept in
    var/ (so the secrets its keys hold stay valid across restarts). Never printed."""
    if load_settings().callback_signing_secret is not None:
        return
    path = stack.var_dir / CALLBACK_SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    stack.env["LLMGW_CALLBACK_SIGNING_SECRET"] = path.read_text().strip()


def start_emulators(stack: Stack) -> list[str]:
    """Start an emulator for each provider that has no real credentials; return their names."""
    started = []
    env = stack.env
    settings = load_settings()  # the environment and .env, as every child will read them
    yandex_auth = (
        settings.yandexgpt_api_key,
        settings.yandexgpt_iam_token,
        settings.yandexgpt_oauth_token,
    )
    if not any(yandex_auth):
        url = _emulator(stack, "yandexgpt", "--api-key", EMULATOR_YANDEX_KEY)
        for suffix in ("BASE_URL", "OPERATIONS_URL", "IAM_URL"):
            env[f"LLMGW_YANDEXGPT_{suffix}"] = url
        env["LLMGW_YANDEXGPT_API_KEY"] = EMULATOR_YANDEX_KEY
        env["LLMGW_YANDEXGPT_FOLDER_ID"] = EMULATOR_FOLDER
        started.append("yandexgpt")
    if settings.gigachat_credentials is None:
        url = _emulator(stack, "gigachat", "--credentials", EMULATOR_GIGACHAT_KEY)
        env["LLMGW_GIGACHAT_BASE_URL"] = f"{url}/api/v1"
        env["LLMGW_GIGACHAT_AUTH_URL"] = f"{url}/api/v2/oauth"
        env["LLMGW_GIGACHAT_CREDENTIALS"] = EMULATOR_GIGACHAT_KEY
        started.append("gigachat")
    return started


def _emulator(stack: Stack, kind: str, *auth: str) -> str:
    port = free_port()
    name = f"emulator-{kind}"
    stack.spawn(name, "emulator", kind, "--port", str(port), *auth)
    stack.wait_port(name, port)
    stack.emulator_urls[kind] = f"http://127.0.0.1:{port}"
    return stack.emulator_urls[kind]


UP_FILE = "llmgw-up.json"


def record_urls(stack: Stack) -> None:
    """Write what a second terminal needs to reach this stack (atomically)."""
    record = {
        "pid": os.getpid(),
        "redis_url": stack.env["LLMGW_REDIS_URL"],
        "api_url": f"http://{stack.host}:{stack.api_port}",
        "flower_url": f"http://{stack.host}:{stack.flower_port}",
        "emulators": stack.emulator_urls,
    }
    path = stack.var_dir / UP_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)


def forget_urls(var_dir: Path) -> None:
    if (recorded_stack(var_dir) or {}).get("pid") == os.getpid():
        (var_dir / UP_FILE).unlink(missing_ok=True)


def recorded_stack(var_dir: Path) -> dict | None:
    """The record of a running `llmgw up` in `var_dir`, or None (none, unreadable, or dead)."""
    try:
        record = json.loads((var_dir / UP_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not _alive(record.get("pid")):
        return None
    return record


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def migrate_and_seed(stack: Stack) -> None:
    for args in (("db", "upgrade"), ("models", "seed")):
        cmd = [sys.executable, "-m", "llmgw.cli", *args]
        subprocess.run(cmd, env=stack.env, check=True)


def start_services(stack: Stack) -> None:
    stack.worker_metrics_port = free_port()
    stack.spawn("worker", "worker", "--metrics-port", str(stack.worker_metrics_port))
    stack.spawn("beat", "beat", "--schedule", str(stack.var_dir / "celerybeat-schedule"))
    stack.spawn("api", "api", "--host", stack.host, "--port", str(stack.api_port))
    stack.spawn("flower", "flower", "--address", stack.host, "--port", str(stack.flower_port))
    stack.wait_port("api", stack.api_port)
    stack.wait_port("flower", stack.flower_port)


def banner(stack: Stack, master_key: str, flower_auth: str, emulators: list[str]) -> str:
    api = f"http://{stack.host}:{stack.api_port}"
    return f"""
llmgw is up.
  API       {api}   (health: {api}/healthz, readiness: {api}/readyz)
  Flower    http://{stack.host}:{stack.flower_port}   (basic auth {flower_auth})
  Metrics   {api}/metrics (API), http://127.0.0.1:{stack.worker_metrics_port}/metrics (worker)
  Redis     {stack.env["LLMGW_REDIS_URL"]}
  Database  {stack.env.get("LLMGW_DATABASE_URL", "sqlite:///var/llmgw.db")}
  Emulated  {", ".join(emulators) or "none (real providers)"}

  export LLMGW_MASTER_KEY={master_key}
  curl -s -X POST {api}/v1/jobs -H "Authorization: Bearer $LLMGW_MASTER_KEY" \\
       -H 'Content-Type: application/json' \\
       -d '{{"model":"yandexgpt-lite:latest","messages":[{{"role":"user","content":"Привет"}}]}}'
  curl -s {api}/v1/jobs/<id> -H "Authorization: Bearer $LLMGW_MASTER_KEY"

Press Ctrl-C to stop.
"""


def run_stack(host: str, api_port: int, flower_port: int, var_dir: Path) -> int:
    var_dir = var_dir.resolve()
    stack = Stack(host=host, api_port=api_port, flower_port=flower_port, var_dir=var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    # Ctrl-C and SIGTERM both stop the stack; SIGINT explicitly too, since a shell that
    # starts a command in the background without job control hands it SIGINT ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        ensure_redis(stack)
        master_key = ensure_master_key(stack)
        flower_auth = ensure_flower_auth(stack)
        ensure_callback_secret(stack)
        emulators = start_emulators(stack)
        record_urls(stack)
        migrate_and_seed(stack)
        start_services(stack)
        click.echo(banner(stack, master_key, flower_auth, emulators))
        return supervise(stack)
    except KeyboardInterrupt:
        click.echo("\nstopping llmgw ...")
        return 0
    finally:
        stack.stop()
        forget_urls(var_dir)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class RestartPolicy:
    """How the supervisor treats a child that died: restart it after `first_delay` seconds,
    doubled for each earlier crash of that child within `window` (at most `max_delay`); the
    `max_crashes`-th crash within `window` is a crash loop, and the stack stops."""

    max_crashes: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0
    crashes: dict[str, list[float]] = field(default_factory=dict)

    def crashed(self, name: str, now: float) -> float | None:
        """Record a crash of `name`; the seconds to wait before restarting it, or None for a
        crash loop."""
        recent = [t for t in self.crashes.get(name, []) if now - t < self.window] + [now]
        self.crashes[name] = recent
        if len(recent) >= self.max_crashes:
            return None
        return min(self.first_delay * 2 ** (len(recent) - 1), self.max_delay)


def supervise(stack: Stack, policy: RestartPolicy | None = None, *, poll: float = 0.5) -> int:
    """Watch the children until interrupted; restart the dead; 1 on a crash loop."""
    policy = policy or RestartPolicy()
    due: dict[str, float] = {}  # child name -> when to start it again
    while True:
        now = time.monotonic()
        for child in stack.children:
            if child.name in due:
                if now >= due[child.name]:
                    del due[child.name]
                    restart(child)
            elif child.proc.poll() is not None:
                delay = policy.crashed(child.name, now)
                code = child.proc.returncode
                if delay is None:
                    say(
                        f"{child.name} exited with code {code}, its {policy.max_crashes}th crash "
                        f"within {policy.window:g} s: a crash loop; stopping the stack"
                    )
                    return 1
                say(f"{child.name} exited with code {code}; restarting it in {delay:g} s")
                due[child.name] = now + delay
        time.sleep(poll)


def restart(child: Child) -> None:
    kill_group(child.proc)  # what the dead child left behind (gunicorn's workers, say)
    try:
        child.proc = child.start()
    except (OSError, RuntimeError, TimeoutError) as exc:  # counted as its next crash
        say(f"{child.name} did not start again: {exc}")
        return
    say(f"{child.name} restarted (pid {child.proc.pid})")


def say(message: str) -> None:
    click.echo(f"llmgw up: {message}", err=True)
