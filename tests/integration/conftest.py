"""Integration fixtures: a real Redis, a database migrated from the Alembic revisions, both
provider emulators over HTTP, and a real Celery worker process (thread pool)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import delete
from werkzeug.serving import make_server

from llmgw.app import create_app
from llmgw.container import Container
from llmgw.processes import free_port, port_open, stop_process, wait_until
from llmgw.settings import Settings
from llmgw.stack import EMULATOR_FOLDER, EMULATOR_GIGACHAT_KEY, EMULATOR_YANDEX_KEY
from providers.emulators import gigachat, yandexgpt
from providers.emulators.server import start_in_thread
from routing.cache import bump_catalogue_version
from storage import keys
from storage.models import GatewayLimit, KeyRoutingPolicy
from tests.helpers import (
    redis_for_tests,
    reset_database,
    seed,
    settings_env,
    start_worker,
    wait_for_worker,
)

MASTER_KEY = "test-master-key"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url, proc = redis_for_tests(tmp_path_factory.mktemp("redis"))
    yield url
    if proc is not None:
        stop_process(proc)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("LLMGW_TEST_DATABASE_URL")
    url = url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'llmgw.db'}"
    reset_database(url)
    seed(url)
    return url


@pytest.fixture(scope="session")
def emulators():
    yandex = start_in_thread(
        yandexgpt.create_app(yandexgpt.YandexEmulatorConfig(api_keys={EMULATOR_YANDEX_KEY}))
    )
    giga = start_in_thread(
        gigachat.create_app(gigachat.GigaChatEmulatorConfig(credentials={EMULATOR_GIGACHAT_KEY}))
    )
    yield {"yandexgpt": yandex.url, "gigachat": giga.url}
    yandex.stop()
    giga.stop()


@pytest.fixture(scope="session")
def settings(redis_url, database_url, emulators) -> Settings:
    yandex, giga = emulators["yandexgpt"], emulators["gigachat"]
    return Settings(
        redis_url=redis_url,
        database_url=database_url,
        master_key=MASTER_KEY,
        yandexgpt_base_url=yandex,
        yandexgpt_operations_url=yandex,
        yandexgpt_iam_url=yandex,
        yandexgpt_api_key=EMULATOR_YANDEX_KEY,
        yandexgpt_folder_id=EMULATOR_FOLDER,
        gigachat_base_url=f"{giga}/api/v1",
        gigachat_auth_url=f"{giga}/api/v2/oauth",
        gigachat_credentials=EMULATOR_GIGACHAT_KEY,
        provider_read_timeout=10,
        # Callbacks are on, as under `llmgw up`; private targets stay refused.
        callback_signing_secret="integration-session-callback-secret-0123456789",
    )


@pytest.fixture(scope="session")
def runtime(settings) -> Container:
    return Container(settings)


@pytest.fixture(scope="session")
def worker(settings, runtime, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(settings, log_path)
    try:
        wait_for_worker(runtime.celery, proc, log_path)
        yield proc
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def api_app(runtime):
    """One app for the session: building one compiles every route with `ast.parse`, which
    on CPython 3.11.7 races with a server thread formatting a traceback (gh-106905)."""
    return create_app(container=runtime)


@pytest.fixture()
def live_api(api_app):
    """The API over real HTTP (SDK clients, SSE), served from a thread."""
    server = make_server("127.0.0.1", 0, api_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def client(api_app):
    return api_app.test_client()


@pytest.fixture()
def api_url(settings, tmp_path):
    """The API as deployed: gunicorn with 2 worker processes."""
    port = free_port()
    cmd = [sys.executable, "-m", "llmgw.cli", "api", "--port", str(port), "--workers", "2"]
    with (tmp_path / "api.log").open("w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            cmd,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=30, what="api")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture(autouse=True)
def clean_shared_state(request):
    """The session shares one Redis and one database: no gateway limit, key routing policy or
    circuit state (schemathesis writes all three, and fault tests open circuits) outlives the
    test that made it."""
    yield
    if "runtime" not in request.fixturenames:
        return
    runtime = request.getfixturevalue("runtime")
    with runtime.sessions() as session:
        session.execute(delete(GatewayLimit))
        session.execute(delete(KeyRoutingPolicy))
        session.commit()
    bump_catalogue_version(runtime.redis)  # key policies live in the cached catalogue
    circuits = list(runtime.redis.scan_iter(match=keys.CIRCUIT_PREFIX + "*", count=1000))
    if circuits:
        runtime.redis.delete(*circuits)


@pytest.fixture()
def auth():
    return {"Authorization": f"Bearer {MASTER_KEY}"}
