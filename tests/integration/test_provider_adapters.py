"""Each adapter against its emulator over real HTTP: the wire format, auth, faults, errors.

The emulators here are private to this module (their fault rules cannot leak into other
tests); Redis is the real one from the integration fixtures where sharing matters.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import fakeredis
import pytest
import redis
import requests

from providers.base import CompletionRequest, Message
from providers.config import GigaChatConfig, YandexGPTConfig
from providers.emulators import gigachat, yandexgpt
from providers.emulators.server import start_in_thread
from providers.errors import (
    AuthError,
    BadRequest,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ModelNotFound,
    PaymentRequired,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimited,
    UpstreamServerError,
)
from providers.gigachat import GigaChatProvider, token_cache_key
from providers.yandexgpt import YandexGPTProvider
from tests.tls import make_test_ca, server_context

pytestmark = pytest.mark.integration

YANDEX_KEY = "emu-yandex-key"
FOLDER = "b1gemulatorfolder"
GIGA_KEY = gigachat.DEFAULT_KEY
HELLO = (Message("system", "Answer briefly."), Message("user", "Hello there"))


SYNC_ROUTE = "POST /foundationModels/v1/completion"
ASYNC_ROUTE = "POST /foundationModels/v1/completionAsync"
POLL_ROUTE = "GET /operations/{operation_id}"


def count(requests_by_route: dict, route: str) -> int:
    return requests_by_route.get(route, 0)


class Emulator:
    def __init__(self, app) -> None:
        self.server = start_in_thread(app)
        self.url = self.server.url

    def fault(self, **rule) -> None:
        requests.post(f"{self.url}/_emulator/faults", json=rule, timeout=5).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/_emulator/stats", timeout=5).json()

    def versions(self) -> dict:
        return requests.get(f"{self.url}/_emulator/versions", timeout=5).json()["versions"]


@pytest.fixture(scope="module")
def yandex_emu():
    config = yandexgpt.YandexEmulatorConfig(operation_delay=0.3, iam_token_ttl=3600)
    emulator = Emulator(yandexgpt.create_app(config))
    yield emulator
    emulator.server.stop()


@pytest.fixture(scope="module")
def giga_emu():
    emulator = Emulator(gigachat.create_app(gigachat.GigaChatEmulatorConfig(token_ttl=1800)))
    yield emulator
    emulator.server.stop()


@pytest.fixture(autouse=True)
def _clear_faults(request):
    yield
    for name in ("yandex_emu", "giga_emu"):
        if name in request.fixturenames:
            emulator = request.getfixturevalue(name)
            requests.delete(f"{emulator.url}/_emulator/faults", timeout=5)


def yandex_config(url: str, **overrides) -> YandexGPTConfig:
    values = {
        "base_url": url,
        "operations_url": url,
        "iam_url": url,
        "api_key": YANDEX_KEY,
        "folder_id": FOLDER,
        "read_timeout": 10,
    } | overrides
    return YandexGPTConfig.model_validate(values)


def giga_config(url: str, **overrides) -> GigaChatConfig:
    values = {
        "base_url": f"{url}/api/v1",
        "auth_url": f"{url}/api/v2/oauth",
        "credentials": GIGA_KEY,
        "read_timeout": 10,
    } | overrides
    return GigaChatConfig.model_validate(values)


# -- YandexGPT ---------------------------------------------------------------------------------


@pytest.fixture()
def yandex(yandex_emu):
    return YandexGPTProvider(yandex_config(yandex_emu.url))


def test_yandex_complete(yandex, yandex_emu):
    result = yandex.complete(CompletionRequest("yandexgpt-lite/latest", HELLO, temperature=0.2))
    assert result.content
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.model_version == yandex_emu.versions()["yandexgpt-lite"]["latest"]


def test_yandex_max_tokens_truncates(yandex):
    result = yandex.complete(CompletionRequest("yandexgpt/rc", HELLO, max_tokens=1))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 1


def test_yandex_content_filter(yandex):
    with pytest.raises(ContentFiltered):
        yandex.complete(
            CompletionRequest("yandexgpt/latest", (Message("user", "FORBIDDEN-TOPIC"),))
        )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"kind": "context_length"}, ContextTooLong),
        ({"kind": "http_429"}, RateLimited),
        ({"kind": "http_503"}, UpstreamServerError),
        ({"kind": "http_500"}, UpstreamServerError),
        ({"kind": "malformed_json"}, MalformedResponse),
        ({"kind": "reset"}, ProviderConnectionError),
    ],
)
def test_yandex_faults(yandex, yandex_emu, rule, expected):
    yandex_emu.fault(**rule, count=1)
    with pytest.raises(expected):
        yandex.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))


def test_yandex_retry_after(yandex, yandex_emu):
    yandex_emu.fault(kind="http_429_retry_after", retry_after=3, count=1)
    with pytest.raises(RateLimited) as info:
        yandex.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))
    assert info.value.retry_after == 3.0


def test_yandex_read_timeout(yandex_emu):
    provider = YandexGPTProvider(yandex_config(yandex_emu.url, read_timeout=0.5))
    yandex_emu.fault(kind="timeout", seconds=5, count=1)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        provider.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))
    assert time.monotonic() - started < 3


def test_yandex_unknown_model_and_bad_key(yandex, yandex_emu):
    with pytest.raises(ModelNotFound):
        yandex.complete(CompletionRequest("yandexgpt-huge/latest", HELLO))
    wrong = YandexGPTProvider(yandex_config(yandex_emu.url, api_key="nope-key"))
    with pytest.raises(AuthError) as info:
        wrong.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))
    assert "nope-key" not in str(info.value)


def test_yandex_async_completion(yandex_emu):
    config = yandex_config(yandex_emu.url, async_threshold_tokens=0, async_poll_interval=0.1)
    before = yandex_emu.stats()["requests"]
    result = YandexGPTProvider(config).complete(CompletionRequest("yandexgpt/latest", HELLO))
    assert result.finish_reason == "stop" and result.content
    after = yandex_emu.stats()["requests"]
    assert count(after, ASYNC_ROUTE) == count(before, ASYNC_ROUTE) + 1
    assert count(after, SYNC_ROUTE) == count(before, SYNC_ROUTE)
    assert count(after, POLL_ROUTE) >= count(before, POLL_ROUTE) + 1  # 0.3 s at 0.1 s polls


def test_yandex_async_operation_error(yandex_emu):
    config = yandex_config(yandex_emu.url, async_threshold_tokens=0, async_poll_interval=0.1)
    yandex_emu.fault(kind="operation_error", count=1)
    with pytest.raises(UpstreamServerError, match="Async completion failed"):
        YandexGPTProvider(config).complete(CompletionRequest("yandexgpt/latest", HELLO))


def test_yandex_async_deadline(yandex_emu):
    config = yandex_config(
        yandex_emu.url,
        async_threshold_tokens=0,
        async_poll_interval=0.05,
        async_deadline_seconds=0.1,
    )
    with pytest.raises(ProviderTimeout):
        YandexGPTProvider(config).complete(CompletionRequest("yandexgpt/latest", HELLO))


def test_yandex_iam_exchange_reuse_and_refresh_after_401(yandex_emu):
    config = yandex_config(yandex_emu.url, api_key=None, oauth_token="emu-oauth-token")
    cache = fakeredis.FakeRedis()
    provider = YandexGPTProvider(config, redis=cache)
    issued = yandex_emu.stats()["tokens_issued"]
    provider.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))
    provider.complete(CompletionRequest("yandexgpt-lite/latest", HELLO))
    assert yandex_emu.stats()["tokens_issued"] == issued + 1
    (key,) = cache.keys("llmgw:yandexgpt:iam:*")
    cache.set(key, "t1.revoked-token")  # what an expired token looks like to the server
    assert provider.complete(CompletionRequest("yandexgpt-lite/latest", HELLO)).content
    assert yandex_emu.stats()["tokens_issued"] == issued + 2


def test_yandex_count_tokens_and_models(yandex):
    assert yandex.count_tokens("yandexgpt-lite/latest", HELLO) > 4
    models = yandex.list_models()
    assert "yandexgpt-lite/latest" in models and "yandexgpt/rc" in models


# -- GigaChat ----------------------------------------------------------------------------------


@pytest.fixture()
def giga(giga_emu):
    return GigaChatProvider(giga_config(giga_emu.url), redis=fakeredis.FakeRedis())


def test_giga_complete_and_token_reuse(giga, giga_emu):
    issued = giga_emu.stats()["tokens_issued"]
    first = giga.complete(CompletionRequest("GigaChat", HELLO, temperature=0, max_tokens=200))
    second = giga.complete(
        CompletionRequest("GigaChat-Pro-preview", HELLO, top_p=0.5, repetition_penalty=1.05)
    )
    assert giga_emu.stats()["tokens_issued"] == issued + 1
    assert first.finish_reason == "stop" and first.content
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    versions = giga_emu.versions()
    assert first.model_version == versions["GigaChat"]["latest"].split(":")[-1]
    assert second.model_version == versions["GigaChat-Pro"]["rc"].split(":")[-1]


def test_giga_length_blacklist_and_finish_error(giga):
    assert giga.complete(CompletionRequest("GigaChat", HELLO, max_tokens=1)).finish_reason == (
        "length"
    )
    with pytest.raises(ContentFiltered):
        giga.complete(CompletionRequest("GigaChat", (Message("user", "FORBIDDEN-TOPIC"),)))
    with pytest.raises(UpstreamServerError):
        giga.complete(CompletionRequest("GigaChat", (Message("user", "EMULATOR-FINISH-ERROR"),)))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"kind": "context_length"}, ContextTooLong),
        ({"kind": "http_402"}, PaymentRequired),
        ({"kind": "http_429"}, RateLimited),
        ({"kind": "http_502"}, UpstreamServerError),
        ({"kind": "malformed_json"}, MalformedResponse),
        ({"kind": "reset"}, ProviderConnectionError),
        ({"kind": "http_503", "path": "/api/v2/oauth"}, UpstreamServerError),
    ],
)
def test_giga_faults(giga_emu, rule, expected):
    provider = GigaChatProvider(giga_config(giga_emu.url))  # fresh: the OAuth path is hit
    giga_emu.fault(**rule, count=1)
    with pytest.raises(expected):
        provider.complete(CompletionRequest("GigaChat", HELLO))


def test_giga_retry_after_and_timeout(giga_emu):
    provider = GigaChatProvider(giga_config(giga_emu.url, read_timeout=0.5))
    provider.count_tokens("GigaChat", HELLO)  # take a token first
    giga_emu.fault(kind="http_429_retry_after", retry_after=2, count=1)
    with pytest.raises(RateLimited) as info:
        provider.complete(CompletionRequest("GigaChat", HELLO))
    assert info.value.retry_after == 2.0
    giga_emu.fault(kind="timeout", seconds=5, count=1)
    with pytest.raises(ProviderTimeout):
        provider.complete(CompletionRequest("GigaChat", HELLO))


def test_giga_validation_errors(giga):
    with pytest.raises(ModelNotFound):
        giga.complete(CompletionRequest("GigaChat-Ultra-9000", HELLO))
    out_of_order = (Message("user", "hi"), Message("system", "late"))
    with pytest.raises(BadRequest, match="system"):
        giga.complete(CompletionRequest("GigaChat", out_of_order))


def test_giga_bad_credentials(giga_emu):
    provider = GigaChatProvider(giga_config(giga_emu.url, credentials="bm9wZTpub3Bl"))
    with pytest.raises(AuthError, match="OAuth"):
        provider.complete(CompletionRequest("GigaChat", HELLO))


def test_giga_revoked_token_is_refreshed_once(giga_emu):
    config = giga_config(giga_emu.url)
    cache = fakeredis.FakeRedis()
    cache.set(token_cache_key(GIGA_KEY), "revoked-token")
    issued = giga_emu.stats()["tokens_issued"]
    result = GigaChatProvider(config, redis=cache).complete(CompletionRequest("GigaChat", HELLO))
    assert result.content
    assert giga_emu.stats()["tokens_issued"] == issued + 1


def test_giga_short_lived_token_is_refreshed_before_expiry():
    emulator = Emulator(gigachat.create_app(gigachat.GigaChatEmulatorConfig(token_ttl=1.0)))
    try:
        provider = GigaChatProvider(giga_config(emulator.url))
        provider.complete(CompletionRequest("GigaChat", HELLO))
        time.sleep(1.1)
        provider.complete(CompletionRequest("GigaChat", HELLO))
        stats = emulator.stats()
        assert stats["tokens_issued"] == 2  # refreshed ahead of expiry, not after a 401
        assert count(stats["requests"], "POST /api/v1/chat/completions") == 2
    finally:
        emulator.server.stop()


def test_giga_concurrent_workers_share_one_token_through_real_redis(giga_emu, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete(token_cache_key(GIGA_KEY))
    config = giga_config(giga_emu.url)
    providers = [GigaChatProvider(config, redis=redis.Redis.from_url(redis_url)) for _ in range(3)]
    issued = giga_emu.stats()["tokens_issued"]
    barrier, errors = threading.Barrier(24), []

    def call(provider: GigaChatProvider) -> None:
        barrier.wait()
        try:
            provider.complete(CompletionRequest("GigaChat", HELLO))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(providers[i % 3],)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not [e for e in errors if not isinstance(e, RateLimited)]  # emulator caps at 10
    assert giga_emu.stats()["tokens_issued"] == issued + 1


def test_giga_count_tokens_and_models(giga):
    assert giga.count_tokens("GigaChat", HELLO) > 2
    assert {"GigaChat", "GigaChat-Pro-preview"} <= set(giga.list_models())


# -- TLS: the CA bundle is used, and verification is never off --------------------------------


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory) -> Path:
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def giga_tls(test_ca):
    """The GigaChat emulator behind HTTPS, like the real hosts behind the Russian root CA."""
    server = start_in_thread(gigachat.create_app(), ssl_context=server_context(test_ca))
    yield server.url
    server.stop()


def test_giga_tls_with_the_ca_bundle(giga_tls, test_ca):
    config = giga_config(giga_tls, ca_bundle=test_ca / "ca.pem")
    assert GigaChatProvider(config).complete(CompletionRequest("GigaChat", HELLO)).content


def test_giga_tls_without_the_ca_bundle_fails_verification(giga_tls):
    with pytest.raises(ProviderConnectionError, match="(?i)certificate"):
        GigaChatProvider(giga_config(giga_tls)).complete(CompletionRequest("GigaChat", HELLO))
