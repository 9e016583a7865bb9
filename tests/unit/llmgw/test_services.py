"""`llmgw api` gives requests in flight as long as their longest wait on a stop; `llmgw flower`
passes the basic auth of the settings."""

from __future__ import annotations

import pytest

from llmgw.cli import services
from llmgw.settings import Settings


@pytest.mark.parametrize(
    ("max_wait", "sync_timeout", "expected"),
    [(30, 120, 125), (120, 10, 125), (0, 0.5, 6), (30, 600, 605)],
)
def test_graceful_timeout_covers_the_longest_wait(max_wait, sync_timeout, expected):
    settings = Settings(
        max_wait_seconds=max_wait, sync_timeout_seconds=sync_timeout, _env_file=None
    )
    assert services.graceful_timeout(settings) == expected


def test_api_passes_the_derived_graceful_timeout_to_gunicorn(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMGW_SYNC_TIMEOUT_SECONDS", "200")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    seen: list[list[str]] = []
    monkeypatch.setattr(services.os, "execv", lambda _exe, args: seen.append(args))
    services.api.main(["--port", "8123"], standalone_mode=False)
    (args,) = seen
    assert args[args.index("--graceful-timeout") + 1] == "205"


def test_flower_gets_basic_auth_from_the_settings(monkeypatch):
    started: list[list[str]] = []

    class FakeCelery:
        def start(self, args: list[str]) -> None:
            started.append(args)

    monkeypatch.setenv("LLMGW_FLOWER_BASIC_AUTH", "ops:s3cret")
    monkeypatch.setattr("llmgw.celery.make_celery", lambda _settings: FakeCelery())
    services.flower.main(["--port", "5999"], standalone_mode=False)
    assert "--basic-auth=ops:s3cret" in started[0] and "--address=127.0.0.1" in started[0]
