"""serve() and start_in_thread(): binding, stopping, signals."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest
import requests

from providers.emulators import yandexgpt
from providers.emulators.server import start_in_thread

SERVE = (
    "import sys\n"
    "from providers.emulators import gigachat\n"
    "from providers.emulators.server import serve\n"
    "serve(gigachat.create_app(), '127.0.0.1', int(sys.argv[1]))\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


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


def _openssl(tmp_path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)


@pytest.fixture()
def test_ca(tmp_path):
    """A throwaway root CA and a certificate for 127.0.0.1 signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test CA")
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    _openssl(
        tmp_path,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=emulator test CA",
    )
    _openssl(
        tmp_path,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    _openssl(
        tmp_path,
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    return tmp_path


def test_https_mode_is_verified_against_the_test_ca(test_ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(test_ca / "server.pem", test_ca / "server.key")
    server = start_in_thread(yandexgpt.create_app(), ssl_context=context)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        stats = f"{server.url}/_emulator/stats"
        assert requests.get(stats, verify=str(test_ca / "ca.pem"), timeout=5).ok
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(stats, timeout=5)  # the default trust store does not know the CA
    finally:
        server.stop()
