"""serve() and start_in_thread(): binding, stopping, signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from llmgw.processes import free_port, port_open, wait_until
from providers.emulators import yandexgpt
from providers.emulators.server import start_in_thread
from tests.tls import make_test_ca, server_context

SERVE = (
    "import sys\n"
    "from providers.emulators import gigachat\n"
    "from providers.emulators.server import serve\n"
    "serve(gigachat.create_app(), '127.0.0.1', int(sys.argv[1]))\n"
)


def wait_for(port: int, timeout: float = 20) -> None:
    wait_until(lambda: port_open(port), timeout=timeout, what=f"a server on {port}")


def test_start_in_thread_reports_the_bound_port_and_stop_frees_it():
    server = start_in_thread(yandexgpt.create_app())
    port = int(server.url.rsplit(":", 1)[1])
    assert port > 0
    assert requests.get(f"{server.url}/_emulator/stats", timeout=5).status_code == 200
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/_emulator/stats", timeout=5)


def test_a_busy_port_raises_in_the_caller():
    server = start_in_thread(yandexgpt.create_app())
    port = int(server.url.rsplit(":", 1)[1])
    try:
        with pytest.raises(OSError):
            start_in_thread(yandexgpt.create_app(), port=port)
    finally:
        server.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_cleanly_on_signal(sig):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(port)
        assert requests.get(f"http://127.0.0.1:{port}/_emulator/stats", timeout=5).ok
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


@pytest.fixture()
def test_ca(tmp_path):
    return make_test_ca(tmp_path)


def test_https_mode_is_verified_against_the_test_ca(test_ca):
    server = start_in_thread(yandexgpt.create_app(), ssl_context=server_context(test_ca))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        stats = f"{server.url}/_emulator/stats"
        assert requests.get(stats, verify=str(test_ca / "ca.pem"), timeout=5).ok
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(stats, timeout=5)  # the default trust store does not know the CA
    finally:
        server.stop()
