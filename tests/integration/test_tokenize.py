"""Token counting end to end: `/v1/tokenize` and GigaChat's `/v1/tokens/count` (through the
official `gigachat` SDK) against llmgw, llmgw against both emulators' tokenizers over HTTP;
and the tokenizer's count deciding the context-window check of a submission."""

from __future__ import annotations

import pytest
import requests
from gigachat import GigaChat

from providers.emulators import yandex_wire
from providers.emulators.common import count_tokens
from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def tokenize(live_api, body):
    return requests.post(f"{live_api}/v1/tokenize", json=body, headers=AUTH, timeout=20)


def test_tokenize_messages_with_the_yandexgpt_tokenizer_then_from_the_cache(live_api):
    messages = [{"role": "user", "content": "Посчитай мои токены, пожалуйста"}]
    first = tokenize(live_api, {"model": "yandexgpt:rc", "messages": messages}).json()
    wire = [{"role": "user", "text": messages[0]["content"]}]
    assert first["tokens"] == len(yandex_wire.completion_tokens(wire))
    assert (first["model"], first["source"], first["context_window"]) == (
        "yandexgpt:rc",
        "tokenizer",
        32000,
    )
    second = tokenize(live_api, {"model": "yandexgpt:rc", "messages": messages}).json()
    assert second["tokens"] == first["tokens"] and second["cached"] is True


def test_tokenize_text_on_gigachat(live_api):
    body = tokenize(live_api, {"model": "GigaChat-2-Max", "text": "Привет, GigaChat"}).json()
    assert body["tokens"] == count_tokens("Привет, GigaChat") and body["source"] == "tokenizer"
    assert body["model"] == "GigaChat-2-Max:latest" and body["context_window"] == 131072


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"model": "yandexgpt", "text": "a", "messages": [{"role": "user", "content": "a"}]},
            400,
            "invalid_request",
        ),
        ({"model": "yandexgpt"}, 400, "invalid_request"),
        ({"model": "claude", "text": "a"}, 404, "model_not_found"),
    ],
)
def test_tokenize_refusals(live_api, body, status, code):
    response = tokenize(live_api, body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_gigachat_sdk_tokens_count_against_llmgw(live_api):
    texts = ["Первый текст", "Второй, подлиннее текст"]
    with GigaChat(base_url=f"{live_api}/v1", access_token=MASTER_KEY, timeout=20) as sdk:
        counted = sdk.tokens_count(texts, model="GigaChat-2")
    assert [c.tokens for c in counted] == [count_tokens(t) for t in texts]
    assert [c.characters for c in counted] == [len(t) for t in texts]


def test_the_context_check_uses_the_tokenizer_count(live_api):
    """The emulator's tokenizer counts ~1 token per word piece; 24,000 one-letter words are
    48,000 characters (12,000 by the characters ÷ 4 estimate, inside 32,000 with max_tokens) but
    24,000 tokens, which with max_tokens 10,000 exceed yandexgpt-lite's 32,000 window."""
    prompt = " ".join(["я"] * 24_000)
    counted = tokenize(
        live_api, {"model": "yandexgpt-lite", "messages": [{"role": "user", "content": prompt}]}
    ).json()
    assert counted["source"] == "tokenizer" and counted["tokens"] + 10_000 > 32_000
    assert len(prompt) // 4 + 10_000 < 32_000
    response = requests.post(
        f"{live_api}/v1/jobs",
        json={
            "model": "yandexgpt-lite",
            "max_tokens": 10_000,
            "messages": [{"role": "user", "content": prompt}],
        },
        headers=AUTH,
        timeout=20,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_admission_reserves_the_tokenizer_count(live_api, runtime):
    """24,000 one-letter words: ~24,000 tokens by the tokenizer, ~16,000 by the characters
    estimate. A key allowed 20,000 tokens a minute is refused by the first, which decides."""
    from storage.apikeys import create_api_key

    with runtime.sessions() as session:
        _, plaintext = create_api_key(session, "tokens-it", limits=[{"tokens_per_minute": 20_000}])
        session.commit()
    prompt = " ".join(["я"] * 24_000)
    response = requests.post(
        f"{live_api}/v1/jobs",
        json={
            "model": "GigaChat-2",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": prompt}],
        },
        headers={"Authorization": f"Bearer {plaintext}"},
        timeout=20,
    )
    assert len(prompt) // 3 + 4 + 10 < 20_000  # the old estimate would have admitted it
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["kind"], error["limit"]) == ("tpm", 20_000), error
