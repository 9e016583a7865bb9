"""The token counter: the provider's tokenizer (the YandexGPT emulator over HTTP), the Redis
cache keyed by a hash (never the content), and the characters ÷ 4 fallback when the tokenizer
is unreachable or slow."""

from __future__ import annotations

import dataclasses
import socket
import time

import fakeredis
import pytest

from jobs.tokens import LocalCounts, TokenCounter, estimate
from providers.base import Message
from providers.config import YandexGPTConfig
from providers.emulators import yandex_wire, yandexgpt
from providers.emulators.server import start_in_thread
from providers.yandexgpt import YandexGPTProvider
from routing.errors import UnknownModel
from routing.service import Route
from storage import keys

ROUTE = Route("yandexgpt", "yandexgpt", "latest", "yandexgpt/latest", "yandexgpt.latest", "active")
MESSAGES = (Message("system", "Отвечай кратко"), Message("user", "Сколько будет два плюс два?"))


@pytest.fixture(scope="module")
def emulator_url():
    server = start_in_thread(yandexgpt.create_app())
    yield server.url
    server.stop()


def provider_at(url: str) -> YandexGPTProvider:
    config = YandexGPTConfig(base_url=url, api_key="emu-yandex-key", folder_id="b1gemulatorfolder")
    return YandexGPTProvider(config)


def counter(url: str, redis=None, timeout: float = 2.0) -> TokenCounter:
    provider = provider_at(url)

    def resolve(model_id: str) -> Route:
        if model_id != "yandexgpt":
            raise UnknownModel(f"Model {model_id!r} does not exist.")
        return ROUTE

    return TokenCounter(
        redis=redis or fakeredis.FakeRedis(),
        providers=lambda name: provider,
        resolve=resolve,
        timeout_seconds=timeout,
    )


def test_messages_are_counted_by_the_tokenizer_with_the_template(emulator_url):
    count = counter(emulator_url).messages(ROUTE, MESSAGES)
    wire = [{"role": m.role, "text": m.content} for m in MESSAGES]
    assert count.source == "tokenizer" and not count.cached
    assert count.tokens == len(yandex_wire.completion_tokens(wire))
    assert count.tokens != estimate(tuple(m.content for m in MESSAGES))


def test_text_is_counted_by_tokenize(emulator_url):
    count = counter(emulator_url).text(ROUTE, "Привет, мир")
    assert count.source == "tokenizer"
    assert count.tokens == 1 + len(yandex_wire.text_tokens("Привет, мир"))  # <s> + the text


def test_the_cache_answers_without_the_tokenizer_and_keys_hide_the_content(emulator_url):
    redis = fakeredis.FakeRedis()
    first = counter(emulator_url, redis).messages(ROUTE, MESSAGES)
    keys_written = [k.decode() for k in redis.keys("*")]
    assert keys_written == [
        keys.token_count(
            "yandexgpt",
            "yandexgpt/latest",
            "messages",
            '[["system", "Отвечай кратко"], ["user", "Сколько будет два плюс два?"]]',
        )
    ]
    assert "Сколько" not in keys_written[0] and keys_written[0].startswith("llmgw:tok:yandexgpt:")
    assert 0 < redis.ttl(keys_written[0]) <= keys.TOKEN_COUNT_TTL_SECONDS
    # The same question to a counter whose tokenizer is gone: the cache answers.
    again = counter("http://127.0.0.1:9", redis).messages(ROUTE, MESSAGES)
    assert (again.tokens, again.source, again.cached) == (first.tokens, "tokenizer", True)
    # Another model's tokenizer is another key.
    other = Route("yandexgpt", "yandexgpt", "rc", "yandexgpt/rc", "yandexgpt.rc", "active")
    assert counter(emulator_url, redis).messages(other, MESSAGES).cached is False


def test_an_unreachable_tokenizer_falls_back_to_characters_over_four():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redis = fakeredis.FakeRedis()
    count = counter(f"http://127.0.0.1:{port}", redis).messages(ROUTE, MESSAGES)
    chars = sum(len(m.content) for m in MESSAGES)
    assert (count.tokens, count.source, count.fallback_reason) == (
        -(-chars // 4),
        "estimate",
        "connection",
    )
    assert redis.keys("*") == []  # an estimate is not cached


def test_a_slow_tokenizer_falls_back_within_its_timeout():
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        count = counter(url, timeout=0.3).text(ROUTE, "x" * 10)
        elapsed = time.monotonic() - began
    assert (count.tokens, count.source, count.fallback_reason) == (3, "estimate", "timeout")
    assert elapsed < 2.0


def test_prompt_tokens_for_a_submission(emulator_url):
    tokens = counter(emulator_url).prompt_tokens("yandexgpt", MESSAGES)
    assert tokens == counter(emulator_url).messages(ROUTE, MESSAGES).tokens
    assert counter(emulator_url).prompt_tokens("nope", MESSAGES) is None


class CountingRedis(fakeredis.FakeRedis):
    """A FakeRedis that counts its GETs."""

    gets = 0

    def get(self, name):
        self.gets += 1
        return super().get(name)


def test_a_repeated_prompt_is_answered_in_process_without_a_round_trip(emulator_url):
    redis = CountingRedis()
    mine = counter(emulator_url, redis)
    first = mine.messages(ROUTE, MESSAGES)
    assert (first.cached, redis.gets) == (False, 1)
    again = mine.messages(ROUTE, MESSAGES)
    assert (again.tokens, again.cached, redis.gets) == (first.tokens, True, 1)
    # Another process (its own in-process copy) still finds it in Redis, and keeps it.
    other = counter("http://127.0.0.1:9", redis)
    assert other.messages(ROUTE, MESSAGES).cached and redis.gets == 2
    assert other.messages(ROUTE, MESSAGES).tokens == first.tokens and redis.gets == 2
    # The release is in the key: a channel that moved to another release counts afresh.
    moved = dataclasses.replace(ROUTE, version="2")
    assert mine.messages(moved, MESSAGES).cached is False


def test_the_in_process_copy_is_bounded_and_expires_with_the_redis_ttl():
    now = [0.0]
    local = LocalCounts(size=2, clock=lambda: now[0])
    local.put("a", 1, 10)
    local.put("b", 2, 10)
    assert local.get("a") == 1  # a is now the most recent: b goes first
    local.put("c", 3, 10)
    assert (local.get("b"), local.get("a"), local.get("c"), len(local)) == (None, 1, 3, 2)
    now[0] = 10.0
    assert local.get("a") is None and len(local) == 1
