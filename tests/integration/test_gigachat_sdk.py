"""Conformance: the official `gigachat` SDK talks to the GigaChat emulator.

The emulator serves plain HTTP on loopback, so TLS verification never comes into play and is
left at the SDK's default (on).
"""

from __future__ import annotations

import pytest
from gigachat import GigaChat
from gigachat.exceptions import AuthenticationError, NotFoundError

from providers.emulators import gigachat
from providers.emulators.server import start_in_thread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator_url():
    server = start_in_thread(gigachat.create_app())
    yield server.url
    server.stop()


@pytest.fixture()
def sdk(emulator_url):
    client = GigaChat(
        base_url=f"{emulator_url}/api/v1",
        auth_url=f"{emulator_url}/api/v2/oauth",
        credentials=gigachat.DEFAULT_KEY,
        scope="GIGACHAT_API_PERS",
        model="GigaChat-Pro",
        timeout=10,
    )
    yield client
    client.close()


def test_sdk_chat(sdk):
    completion = sdk.chat("Привет! Как дела?")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "Привет! Как дела?" in choice.message.content
    assert completion.model == "GigaChat-Pro:2.2.25.3"
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert sdk.get_token().expires_at > 10**12  # milliseconds


def test_sdk_stream_matches_plain_chat(sdk):
    chunks = list(sdk.stream("Расскажи сказку"))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert text == sdk.chat("Расскажи сказку").choices[0].message.content


def test_sdk_models(sdk):
    ids = {model.id_ for model in sdk.get_models().data}
    assert {"GigaChat", "GigaChat-Pro", "GigaChat-Max", "GigaChat-2"} <= ids
    assert "GigaChat-2-preview" in ids
    assert sdk.get_model("GigaChat-Max").id_ == "GigaChat-Max"
    with pytest.raises(NotFoundError):
        sdk.get_model("GigaChat-9000")


def test_sdk_tokens_count(sdk):
    counts = sdk.tokens_count(["First text", "Второй текст подлиннее"], model="GigaChat")
    assert [c.characters for c in counts] == [10, 22]
    assert counts[0].tokens < counts[1].tokens


def test_sdk_embeddings_and_balance(sdk):
    vectors = sdk.embeddings(["one", "two"]).data
    assert [len(v.embedding) for v in vectors] == [1024, 1024]
    assert vectors[0].embedding != vectors[1].embedding
    assert sdk.get_balance().balance


def test_sdk_rejects_a_wrong_key(emulator_url):
    client = GigaChat(
        base_url=f"{emulator_url}/api/v1",
        auth_url=f"{emulator_url}/api/v2/oauth",
        credentials="ZHVkZTpwYXNz",
        scope="GIGACHAT_API_PERS",
        timeout=10,
    )
    with client, pytest.raises(AuthenticationError):
        client.chat("hello")
