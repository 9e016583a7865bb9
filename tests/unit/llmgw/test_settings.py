"""URL settings are checked at start-up, with a message that names the variable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from llmgw.cli import main
from llmgw.settings import PROVIDER_URLS, Settings


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@redis.example:6380/1", "unix:///tmp/r.sock"]
)
def test_redis_urls_accepted(url):
    assert settings(redis_url=url).redis_url == url


@pytest.mark.parametrize("url", ["nope", "http://127.0.0.1:6379", "127.0.0.1:6379"])
def test_redis_urls_rejected(url):
    with pytest.raises(ValidationError, match="must be a Redis URL"):
        settings(redis_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/llmgw.db",
        "sqlite://",
        "postgresql+psycopg://user:pw@db.example/llmgw",
        "postgresql://localhost/llmgw",
    ],
)
def test_database_urls_accepted(url):
    assert settings(database_url=url).database_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nope", "must be an SQLAlchemy URL"),
        ("var/llmgw.db", "must be an SQLAlchemy URL"),
        ("mysql://localhost/llmgw", "must be a sqlite or postgresql URL, not mysql"),
    ],
)
def test_database_urls_rejected(url, message):
    with pytest.raises(ValidationError, match=message):
        settings(database_url=url)


@pytest.mark.parametrize("field", PROVIDER_URLS)
def test_provider_urls(field):
    assert getattr(settings(**{field: "http://127.0.0.1:8081"}), field) == "http://127.0.0.1:8081"
    for bad in ("nope", "ftp://example.com", "https://", "llm.api.cloud.yandex.net"):
        with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
            settings(**{field: bad})


def test_defaults_are_valid():
    assert settings().yandexgpt_base_url.startswith("https://")


def test_a_bad_url_stops_the_cli_with_the_variable_and_no_value(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGW_REDIS_URL", "nope-secret")
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: configuration error: LLMGW_REDIS_URL: "
        "must be a Redis URL: redis://, rediss:// or unix://\n"
    )


def test_callback_settings_are_checked_at_start_up():
    with pytest.raises(ValidationError, match="at least 32 characters"):
        settings(callback_signing_secret="short")
    with pytest.raises(ValidationError, match="comma-separated CIDRs"):
        settings(callback_allowed_cidrs="10.0.0.0/8,nonsense")
    ok = settings(callback_signing_secret="x" * 32, callback_allowed_cidrs="10.0.0.0/8, fd00::/8")
    assert ok.callback_allow_private is False
    assert "x" * 32 not in repr(ok)  # a SecretStr
    assert settings(callback_signing_secret="").callback_signing_secret is None
