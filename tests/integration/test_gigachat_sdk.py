"""Conformance: the official `gigachat` SDK talks to the GigaChat emulator; and drop-in: the
same SDK pointed at llmgw (chat, stream, models).

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


# -- the same SDK pointed at llmgw: `base_url=<llmgw>/v1`, `access_token=<llmgw key>` ---------


@pytest.fixture()
def llmgw_key(client, auth) -> str:
    """A fresh (non-admin) llmgw key, so that its job listing holds only this test's jobs."""
    created = client.post("/v1/admin/keys", json={"name": "gigachat-sdk"}, headers=auth)
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()["key"]


@pytest.fixture()
def llmgw_sdk(live_api, worker, llmgw_key):
    client = GigaChat(
        base_url=f"{live_api}/v1", access_token=llmgw_key, model="GigaChat-Pro", timeout=30
    )
    yield client
    client.close()


def test_llmgw_chat(llmgw_sdk, llmgw_key, client):
    completion = llmgw_sdk.chat("Привет! Как дела?")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert "Привет! Как дела?" in choice.message.content
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    # The answer is an llmgw job, served by GigaChat-Pro on its latest channel.
    jobs = client.get("/v1/jobs", headers={"Authorization": f"Bearer {llmgw_key}"})
    jobs = jobs.get_json()["data"]
    assert len(jobs) == 1
    assert jobs[0]["route"]["provider"] == "gigachat"
    assert (jobs[0]["route"]["model"], jobs[0]["route"]["channel"]) == ("GigaChat-Pro", "latest")


def test_llmgw_stream_matches_chat(llmgw_sdk):
    chunks = list(llmgw_sdk.stream("Расскажи сказку"))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert text == llmgw_sdk.chat("Расскажи сказку").choices[0].message.content


def test_llmgw_models(llmgw_sdk):
    ids = {model.id_ for model in llmgw_sdk.get_models().data}
    assert {"GigaChat", "GigaChat-Pro", "yandexgpt-lite"} <= ids
    assert llmgw_sdk.get_model("GigaChat-Pro").id_ == "GigaChat-Pro"
    with pytest.raises(NotFoundError):
        llmgw_sdk.get_model("GigaChat-9000")


def test_llmgw_refuses_a_wrong_key(live_api):
    with (
        GigaChat(
            base_url=f"{live_api}/v1", access_token="wrong", model="GigaChat", timeout=10
        ) as sdk,
        pytest.raises(AuthenticationError),
    ):
        sdk.chat("hello")
