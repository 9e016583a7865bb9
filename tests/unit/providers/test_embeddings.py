"""The adapters' embeddings and plain-text token counts: wire mapping and response parsing."""

from __future__ import annotations

import json

import pytest

from providers.errors import MalformedResponse
from providers.gigachat import parse_embeddings
from providers.yandexgpt import YandexGPTProvider
from tests.unit.providers.conftest import FOLDER, YANDEX, yandex_config


@pytest.fixture()
def provider():
    return YandexGPTProvider(yandex_config(api_key="yc-key"))


def test_yandex_embeds_one_text_a_call_with_an_emb_uri(rsps, provider):
    url = f"{YANDEX}/foundationModels/v1/textEmbedding"
    rsps.post(url, json={"embedding": [0.5, -0.25], "numTokens": "3", "modelVersion": "06.12.2023"})
    rsps.post(url, json={"embedding": [0.125, 1.0], "numTokens": "5", "modelVersion": "06.12.2023"})
    result = provider.embed("text-search-doc/latest", ("один", "два"))
    bodies = [json.loads(c.request.body) for c in rsps.calls]
    assert bodies == [
        {"modelUri": f"emb://{FOLDER}/text-search-doc/latest", "text": "один"},
        {"modelUri": f"emb://{FOLDER}/text-search-doc/latest", "text": "два"},
    ]
    assert result.vectors == ((0.5, -0.25), (0.125, 1.0))
    assert (result.tokens, result.prompt_tokens, result.model_version) == ((3, 5), 8, "06.12.2023")


def test_yandex_embedding_without_a_vector_is_malformed(rsps, provider):
    rsps.post(f"{YANDEX}/foundationModels/v1/textEmbedding", json={"numTokens": "3"})
    with pytest.raises(MalformedResponse):
        provider.embed("text-search-query/latest", ("x",))


def test_yandex_plain_text_tokens_use_tokenize(rsps, provider):
    rsps.post(
        f"{YANDEX}/foundationModels/v1/tokenize",
        json={"tokens": [{"id": "1", "text": "<s>", "special": True}, {"id": "7", "text": "▁x"}]},
    )
    assert provider.count_text_tokens("yandexgpt/latest", ("x",)) == 2
    assert json.loads(rsps.calls[0].request.body) == {
        "modelUri": f"gpt://{FOLDER}/yandexgpt/latest",
        "text": "x",
    }


def test_with_timeout_keeps_the_session_and_changes_only_the_timeout(provider):
    short = provider.with_timeout((0.5, 1.0))
    assert short._timeout == (0.5, 1.0) and provider._timeout == (2.0, 7.0)
    assert short._session is provider._session


def test_gigachat_embeddings_are_ordered_by_index_with_per_input_tokens():
    payload = {
        "object": "list",
        "model": "Embeddings",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [2.0], "usage": {"prompt_tokens": 4}},
            {"object": "embedding", "index": 0, "embedding": [1.0], "usage": {"prompt_tokens": 6}},
        ],
    }
    result = parse_embeddings(payload, "Embeddings", 2)
    assert result.vectors == ((1.0,), (2.0,)) and result.tokens == (6, 4)
    assert result.model_version == ""  # the answer names no build
    versioned = parse_embeddings({**payload, "model": "Embeddings:3.1"}, "Embeddings", 2)
    assert versioned.model_version == "3.1"
    with pytest.raises(MalformedResponse):
        parse_embeddings(payload, "Embeddings", 3)
    with pytest.raises(MalformedResponse):
        parse_embeddings({"data": [{"index": 0}]}, "Embeddings", 1)
