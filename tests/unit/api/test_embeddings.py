"""`/v1/embeddings`: what is refused before any provider call, and the vector encodings."""

from __future__ import annotations

import base64
import struct

import pytest

from api.embeddings import encode


def post(client, auth, body):
    return client.post("/v1/embeddings", json=body, headers=auth)


def test_a_chat_model_is_a_400_naming_the_model_and_what_it_serves(unit_client, master_auth):
    response = post(unit_client, master_auth, {"model": "yandexgpt:rc", "input": "hi"})
    error = response.get_json()["error"]
    assert response.status_code == 400, error
    assert (error["code"], error["param"]) == ("unsupported_model", "model")
    assert error["model"] == "yandexgpt:rc"
    assert "chat" in error["capabilities"] and "embeddings" not in error["capabilities"]
    assert "yandexgpt:rc serves chat" in error["message"]
    assert {"text-search-doc", "Embeddings"} <= set(error["choices"])


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (
            {"model": "Embeddings", "input": "hi", "dimensions": 64},
            "unsupported_parameter",
            "dimensions",
        ),
        ({"model": "Embeddings", "input": [1, 2, 3]}, "unsupported_parameter", "input"),
        ({"model": "Embeddings", "input": ["x"] * 257}, "invalid_request", "input"),
    ],
)
def test_unsupported_or_too_many_inputs(unit_client, master_auth, body, code, param):
    response = post(unit_client, master_auth, body)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (400, code, param)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "Embeddings", "input": ""},
        {"model": "Embeddings", "input": []},
        {"model": "Embeddings", "input": "hi", "encoding_format": "int8"},
        {"input": "hi"},
    ],
)
def test_malformed_requests_are_400(unit_client, master_auth, body):
    response = post(unit_client, master_auth, body)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_unknown_model_is_404_and_no_key_is_401(unit_client, master_auth):
    response = post(unit_client, master_auth, {"model": "nope", "input": "hi"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "model_not_found")
    assert (
        unit_client.post("/v1/embeddings", json={"model": "Embeddings", "input": "x"}).status_code
        == 401
    )


def test_base64_is_little_endian_float32():
    vector = (0.5, -1.25, 3.0)
    packed = base64.b64decode(encode(vector, "base64"))
    assert struct.unpack("<3f", packed) == vector
    assert encode(vector, "float") == [0.5, -1.25, 3.0]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/chat/completions"])
def test_chat_with_an_embedding_model_is_a_400_and_writes_no_job(
    unit_client, unit_runtime, master_auth, path
):
    from sqlalchemy import func, select

    from storage.models import Job

    body = {"model": "Embeddings", "messages": [{"role": "user", "content": "Привет"}]}
    response = unit_client.post(path, json=body, headers=master_auth)
    error = response.get_json()["error"]
    assert response.status_code == 400, error
    assert (error["code"], error["model"], error["capabilities"]) == (
        "unsupported_model",
        "Embeddings:latest",
        ["embeddings"],
    )
    assert "GigaChat-2" in error["choices"] and "text-search-doc" not in error["choices"]
    with unit_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_token_counts_respect_the_keys_allowed_models(unit_client, unit_runtime):
    from api.auth import hash_key
    from storage.models import ApiKey

    with unit_runtime.sessions() as session:
        session.add(
            ApiKey(
                id="narrow", name="n", key_hash=hash_key("narrow-key"), allowed_models=["GigaChat"]
            )
        )
        session.commit()
    auth = {"Authorization": "Bearer narrow-key"}
    refused = unit_client.post(
        "/v1/tokenize", json={"model": "yandexgpt", "text": "x"}, headers=auth
    )
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "model_not_allowed")
    other = unit_client.post(
        "/v1/tokens/count", json={"model": "yandexgpt-lite", "input": ["x"]}, headers=auth
    )
    assert other.status_code == 403
