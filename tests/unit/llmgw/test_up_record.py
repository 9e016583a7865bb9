"""A second terminal finds the Redis of a running `llmgw up` through `var/llmgw-up.json`."""

from __future__ import annotations

import json
import os
import threading

import pytest
from click.testing import CliRunner
from fakeredis import TcpFakeServer

from llmgw.cli import main
from llmgw.cli.context import cli_settings
from llmgw.processes import free_port
from llmgw.stack import UP_FILE, Stack, forget_urls, record_urls, recorded_stack
from routing.breaker import CircuitBreaker


@pytest.fixture()
def fake_redis_url():
    port = free_port()
    server = TcpFakeServer(("127.0.0.1", port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def second_terminal(monkeypatch, tmp_path, unit_settings):
    """A working directory with a `var/` and the unit database, no LLMGW_REDIS_URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMGW_REDIS_URL", raising=False)
    monkeypatch.setenv("LLMGW_DATABASE_URL", unit_settings.database_url)
    (tmp_path / "var").mkdir()
    return tmp_path / "var"


def write_record(var_dir, pid: int, redis_url: str) -> None:
    (var_dir / UP_FILE).write_text(json.dumps({"pid": pid, "redis_url": redis_url}))


def test_record_round_trip_and_forget(tmp_path):
    stack = Stack(host="127.0.0.1", api_port=8000, flower_port=5555, var_dir=tmp_path)
    stack.env["LLMGW_REDIS_URL"] = "redis://127.0.0.1:6399/0"
    stack.emulator_urls["gigachat"] = "http://127.0.0.1:8082"
    record_urls(stack)
    recorded = recorded_stack(tmp_path)
    assert recorded == {
        "pid": os.getpid(),
        "redis_url": "redis://127.0.0.1:6399/0",
        "api_url": "http://127.0.0.1:8000",
        "flower_url": "http://127.0.0.1:5555",
        "emulators": {"gigachat": "http://127.0.0.1:8082"},
    }
    forget_urls(tmp_path)
    assert not (tmp_path / UP_FILE).exists()


def test_a_dead_stacks_record_is_ignored(second_terminal):
    write_record(second_terminal, 2**22 + 12345, "redis://127.0.0.1:6399/0")  # above pid_max
    assert recorded_stack(second_terminal) is None
    assert cli_settings().redis_url is None


def test_the_environment_wins_over_the_record(second_terminal, monkeypatch):
    write_record(second_terminal, os.getpid(), "redis://127.0.0.1:6399/0")
    monkeypatch.setenv("LLMGW_REDIS_URL", "redis://elsewhere:6379/1")
    assert cli_settings().redis_url == "redis://elsewhere:6379/1"


def test_models_circuits_uses_the_recorded_redis(second_terminal, fake_redis_url):
    import redis

    write_record(second_terminal, os.getpid(), fake_redis_url)
    breaker = CircuitBreaker(redis.Redis.from_url(fake_redis_url), min_calls=1)
    breaker.record_failure("yandexgpt:yandexgpt:rc")
    result = CliRunner().invoke(main, ["models", "circuits"])
    assert result.exit_code == 0, result.output
    assert "yandexgpt:yandexgpt:rc\topen\t1/1 failed" in result.output.splitlines()


def test_up_generates_a_callback_signing_secret_once_and_keeps_it(monkeypatch, tmp_path):
    from llmgw.settings import load_settings
    from llmgw.stack import CALLBACK_SECRET_FILE, ensure_callback_secret

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("LLMGW_CALLBACK_SIGNING_SECRET", raising=False)
    first = Stack(host="127.0.0.1", api_port=1, flower_port=2, var_dir=tmp_path)
    ensure_callback_secret(first)
    secret = first.env["LLMGW_CALLBACK_SIGNING_SECRET"]
    path = tmp_path / CALLBACK_SECRET_FILE
    assert path.read_text() == secret and len(secret) >= 32
    assert os.stat(path).st_mode & 0o077 == 0  # readable by its owner only
    again = Stack(host="127.0.0.1", api_port=1, flower_port=2, var_dir=tmp_path)
    ensure_callback_secret(again)
    assert again.env["LLMGW_CALLBACK_SIGNING_SECRET"] == secret
    assert load_settings(**{"callback_signing_secret": secret}).callback_signing_secret


def test_up_keeps_a_configured_callback_signing_secret(monkeypatch, tmp_path):
    from llmgw.stack import CALLBACK_SECRET_FILE, ensure_callback_secret

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGW_CALLBACK_SIGNING_SECRET", "c" * 40)
    stack = Stack(host="127.0.0.1", api_port=1, flower_port=2, var_dir=tmp_path)
    ensure_callback_secret(stack)
    assert stack.env["LLMGW_CALLBACK_SIGNING_SECRET"] == "c" * 40
    assert not (tmp_path / CALLBACK_SECRET_FILE).exists()
