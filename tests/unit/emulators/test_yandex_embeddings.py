"""YandexGPT emulator: `textEmbedding` with `emb://<folder>/<model>/latest` URIs."""

from __future__ import annotations

import requests

from tests.unit.emulators.helpers import API_KEY_HEADERS, FOLDER, TIMEOUT

PATH = "/foundationModels/v1/textEmbedding"


def embed(url: str, body: dict, headers: dict = API_KEY_HEADERS) -> requests.Response:
    return requests.post(url + PATH, json=body, headers=headers, timeout=TIMEOUT)


def test_text_embedding_has_the_wire_shape(yandex):
    body = {"modelUri": f"emb://{FOLDER}/text-search-doc/latest", "text": "Мама мыла раму"}
    answer = embed(yandex, body).json()
    assert set(answer) == {"embedding", "numTokens", "modelVersion"}
    assert len(answer["embedding"]) == 256 and all(
        isinstance(x, float) for x in answer["embedding"]
    )
    assert isinstance(answer["numTokens"], str) and int(answer["numTokens"]) > 0  # int64
    assert embed(yandex, body).json()["embedding"] == answer["embedding"]  # deterministic
    query = {"modelUri": f"emb://{FOLDER}/text-search-query", "text": "Мама мыла раму"}
    assert embed(yandex, query).json()["embedding"] != answer["embedding"]  # another model


def test_text_embedding_refusals(yandex):
    text = {"text": "x"}
    assert (
        embed(yandex, {"modelUri": f"gpt://{FOLDER}/yandexgpt/latest", **text}).status_code == 400
    )
    unknown = embed(yandex, {"modelUri": f"emb://{FOLDER}/text-search-nope/latest", **text})
    assert unknown.status_code in (400, 404)
    assert embed(
        yandex, {"modelUri": "emb://b1gother/text-search-doc/latest", **text}
    ).status_code in (
        400,
        403,
    )
    empty = embed(yandex, {"modelUri": f"emb://{FOLDER}/text-search-doc/latest", "text": ""})
    assert empty.status_code == 400 and "error" in empty.json()
    too_long = {"modelUri": f"emb://{FOLDER}/text-search-doc/latest", "text": "слово " * 3000}
    assert embed(yandex, too_long).status_code == 400
    assert (
        embed(yandex, {"modelUri": f"emb://{FOLDER}/text-search-doc", **text}, {}).status_code
        == 401
    )
