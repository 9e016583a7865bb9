"""GigaChat adapter: parameter mapping, normalization, OAuth and every error shape."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs

import pytest
import requests

from providers.base import CompletionRequest, Message
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
from providers.gigachat import GigaChatProvider
from tests.unit.providers.conftest import GIGA, GIGA_AUTH, calls_to, giga_config

CHAT = f"{GIGA}/chat/completions"
CREDENTIALS = "Z2lnYS1jbGllbnQ6Z2lnYS1zZWNyZXQ="
REQUEST = CompletionRequest(
    upstream_model="GigaChat-Pro",
    messages=(Message("system", "Ты помощник."), Message("user", "Привет")),
    temperature=0.7,
    top_p=0.9,
    max_tokens=512,
)


def token(value="tok-1", ttl=1800.0):
    return {"access_token": value, "expires_at": int((time.time() + ttl) * 1000)}


def chat(finish="stop", content="Здравствуйте!", model="GigaChat-Pro:1.0.26.20"):
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": content},
                "index": 0,
                "finish_reason": finish,
            }
        ],
        "created": 1768996171,
        "model": model,
        "object": "chat.completion",
        "usage": {
            "prompt_tokens": 17,
            "completion_tokens": 3,
            "total_tokens": 20,
            "precached_prompt_tokens": 2,
        },
    }


def error(status, message):
    return {"status": status, "message": message}


@pytest.fixture()
def provider():
    return GigaChatProvider(giga_config())


@pytest.fixture()
def authed(rsps):
    rsps.post(GIGA_AUTH, json=token())
    return rsps


# -- request mapping ---------------------------------------------------------------------------


def test_request_body_matches_the_wire_format(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(REQUEST)
    body = json.loads(calls_to(authed, CHAT)[0].request.body)
    assert body == {
        "model": "GigaChat-Pro",
        "messages": [
            {"role": "system", "content": "Ты помощник."},
            {"role": "user", "content": "Привет"},
        ],
        "stream": False,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 512,
    }


def test_zero_temperature_becomes_the_deterministic_minimum(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(CompletionRequest("GigaChat", REQUEST.messages, temperature=0))
    body = json.loads(calls_to(authed, CHAT)[0].request.body)
    assert body["temperature"] == 0.001
    assert not {"max_tokens", "top_p", "repetition_penalty"} & set(body)


def test_repetition_penalty_is_passed_through(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(CompletionRequest("GigaChat", REQUEST.messages, repetition_penalty=1.1))
    assert json.loads(calls_to(authed, CHAT)[0].request.body)["repetition_penalty"] == 1.1


def test_headers_timeout_and_default_tls_verification(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(CompletionRequest("GigaChat", REQUEST.messages, request_id="rq-9"))
    request = calls_to(authed, CHAT)[0].request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["X-Request-ID"] == "rq-9"
    assert request.req_kwargs["timeout"] == (2.0, 7.0)
    # True, or the REQUESTS_CA_BUNDLE that requests substitutes for True: never off.
    assert all(c.request.req_kwargs["verify"] not in (False, None) for c in authed.calls)


def test_ca_bundle_is_passed_as_verify(authed, tmp_path):
    bundle = tmp_path / "russian_trusted_root_ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    authed.post(CHAT, json=chat())
    GigaChatProvider(giga_config(ca_bundle=bundle)).complete(REQUEST)
    assert [c.request.req_kwargs["verify"] for c in authed.calls] == [str(bundle)] * 2


# -- OAuth -------------------------------------------------------------------------------------


def test_oauth_request_shape(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(REQUEST)
    request = calls_to(authed, GIGA_AUTH)[0].request
    assert request.headers["Authorization"] == f"Basic {CREDENTIALS}"
    assert request.headers["Accept"] == "application/json"
    assert uuid.UUID(request.headers["RqUID"]).version == 4
    assert parse_qs(request.body) == {"scope": ["GIGACHAT_API_PERS"]}


def test_token_is_cached_between_calls(authed, provider):
    authed.post(CHAT, json=chat())
    provider.complete(REQUEST)
    provider.complete(REQUEST)
    assert len(calls_to(authed, GIGA_AUTH)) == 1
    assert len(calls_to(authed, CHAT)) == 2


def test_token_is_refreshed_before_expiry_with_a_fresh_rquid(rsps):
    now = [time.time()]
    provider = GigaChatProvider(giga_config(), clock=lambda: now[0])
    rsps.post(GIGA_AUTH, json=token("tok-1", ttl=1800))
    rsps.post(GIGA_AUTH, json=token("tok-2", ttl=1800))
    rsps.post(CHAT, json=chat())
    provider.complete(REQUEST)
    now[0] += 1700  # still valid for 100 s: more than the 60 s margin
    provider.complete(REQUEST)
    now[0] += 50  # 50 s left: inside the margin, so refreshed before expires_at
    provider.complete(REQUEST)
    auths = [c.request.headers["Authorization"] for c in calls_to(rsps, CHAT)]
    assert auths == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    rquids = {c.request.headers["RqUID"] for c in calls_to(rsps, GIGA_AUTH)}
    assert len(rquids) == 2


def test_expires_at_in_seconds_is_tolerated(rsps, provider):
    rsps.post(GIGA_AUTH, json={"access_token": "tok-s", "expires_at": int(time.time()) + 1800})
    rsps.post(CHAT, json=chat())
    provider.complete(REQUEST)
    provider.complete(REQUEST)
    assert len(calls_to(rsps, GIGA_AUTH)) == 1


def test_401_refreshes_once_and_retries(rsps, provider):
    rsps.post(GIGA_AUTH, json=token("tok-old"))
    rsps.post(GIGA_AUTH, json=token("tok-new"))
    rsps.post(CHAT, json=error(401, "Unauthorized"), status=401)
    rsps.post(CHAT, json=chat())
    assert provider.complete(REQUEST).content == "Здравствуйте!"
    auths = [c.request.headers["Authorization"] for c in calls_to(rsps, CHAT)]
    assert auths == ["Bearer tok-old", "Bearer tok-new"]


def test_401_after_refresh_is_an_auth_error(rsps, provider):
    rsps.post(GIGA_AUTH, json=token("tok-a"))
    rsps.post(GIGA_AUTH, json=token("tok-b"))
    rsps.post(CHAT, json=error(401, "Unauthorized"), status=401)
    with pytest.raises(AuthError) as info:
        provider.complete(REQUEST)
    assert not info.value.retryable
    assert len(calls_to(rsps, CHAT)) == 2
    assert len(calls_to(rsps, GIGA_AUTH)) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"code": 6, "message": "credentials doesn't match db data"}, AuthError),
        (400, {"code": 7, "message": "scope from db not fully includes consumed scope"}, AuthError),
        (429, {"code": 0, "message": "too many"}, RateLimited),
        (503, {"code": 0, "message": "down"}, UpstreamServerError),
    ],
)
def test_oauth_errors(rsps, provider, status, body, expected):
    rsps.post(GIGA_AUTH, json=body, status=status)
    with pytest.raises(expected, match="OAuth"):
        provider.complete(REQUEST)
    assert calls_to(rsps, CHAT) == []


def test_oauth_error_does_not_leak_the_credentials(rsps, provider):
    rsps.post(GIGA_AUTH, json={"code": 4, "message": f"Can't decode {CREDENTIALS}"}, status=401)
    with pytest.raises(AuthError) as info:
        provider.complete(REQUEST)
    assert CREDENTIALS not in str(info.value)


def test_missing_credentials(rsps):
    with pytest.raises(AuthError, match="CREDENTIALS"):
        GigaChatProvider(giga_config(credentials=None)).complete(REQUEST)


def test_malformed_token_answer(rsps, provider):
    rsps.post(GIGA_AUTH, json={"tok": "x"})
    with pytest.raises(MalformedResponse):
        provider.complete(REQUEST)


# -- normalization -----------------------------------------------------------------------------


def test_normalized_result(authed, provider):
    authed.post(CHAT, json=chat())
    result = provider.complete(REQUEST)
    assert result.content == "Здравствуйте!"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (17, 3)
    assert result.usage.total_tokens == 20
    assert result.model_version == "1.0.26.20"
    assert result.upstream_model == "GigaChat-Pro"


@pytest.mark.parametrize(
    ("finish", "expected"), [("length", "length"), ("function_call", "tool_calls")]
)
def test_finish_reasons(authed, provider, finish, expected):
    body = chat(finish=finish)
    if finish == "function_call":  # the recorded shape: the call rides with the finish
        body["choices"][0]["message"]["function_call"] = {"name": "f", "arguments": {}}
    authed.post(CHAT, json=body)
    assert provider.complete(REQUEST).finish_reason == expected


def test_blacklist_is_content_filtered(authed, provider):
    authed.post(CHAT, json=chat(finish="blacklist", content="Не люблю менять тему..."))
    with pytest.raises(ContentFiltered):
        provider.complete(REQUEST)


def test_finish_reason_error_is_retryable(authed, provider):
    authed.post(CHAT, json=chat(finish="error"))
    with pytest.raises(UpstreamServerError):
        provider.complete(REQUEST)


@pytest.mark.parametrize("payload", [{"choices": []}, {"object": "x"}, [], chat(finish="weird")])
def test_unexpected_shapes_are_malformed(authed, provider, payload):
    authed.post(CHAT, json=payload)
    with pytest.raises(MalformedResponse):
        provider.complete(REQUEST)


def test_non_json_success_is_malformed(authed, provider):
    authed.post(CHAT, body="not json", status=200)
    with pytest.raises(MalformedResponse):
        provider.complete(REQUEST)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "Bad request", BadRequest),
        (402, "Payment Required", PaymentRequired),
        (403, "Permission denied", AuthError),
        (404, "No such model", ModelNotFound),
        (413, "Payload too large", ContextTooLong),
        (422, "Invalid params: tokens limit exceeded for the model context", ContextTooLong),
        (422, "Invalid params: system message must be the first message", BadRequest),
        (500, "Internal Server Error", UpstreamServerError),
        (503, "Service Unavailable", UpstreamServerError),
    ],
)
def test_error_classification(authed, provider, status, message, expected):
    authed.post(CHAT, json=error(status, message), status=status)
    with pytest.raises(expected, match=message[:10]) as info:
        provider.complete(REQUEST)
    assert info.value.status == status
    assert len(calls_to(authed, CHAT)) == 1


@pytest.mark.parametrize(("headers", "retry_after"), [({}, None), ({"Retry-After": "3"}, 3.0)])
def test_429(authed, provider, headers, retry_after):
    authed.post(CHAT, json=error(429, "Too many requests"), status=429, headers=headers)
    with pytest.raises(RateLimited) as info:
        provider.complete(REQUEST)
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ReadTimeout(), ProviderTimeout),
        (requests.ConnectionError(), ProviderConnectionError),
    ],
)
def test_transport_errors(authed, provider, exc, expected):
    authed.post(CHAT, body=exc)
    with pytest.raises(expected):
        provider.complete(REQUEST)


# -- tokens and models -------------------------------------------------------------------------


def test_count_tokens(authed, provider):
    counts = [
        {"object": "tokens", "tokens": 7, "characters": 12},
        {"object": "tokens", "tokens": 2, "characters": 6},
    ]
    authed.post(f"{GIGA}/tokens/count", json=counts)
    assert provider.count_tokens("GigaChat", REQUEST.messages) == 9
    body = json.loads(calls_to(authed, f"{GIGA}/tokens/count")[0].request.body)
    assert body == {"model": "GigaChat", "input": ["Ты помощник.", "Привет"]}


def test_list_models(authed, provider):
    data = [
        {"id": "GigaChat", "object": "model", "owned_by": "salutedevices", "type": "chat"},
        {"id": "GigaChat-Pro-preview", "object": "model", "owned_by": "s", "type": "chat"},
    ]
    authed.get(f"{GIGA}/models", json={"object": "list", "data": data})
    assert provider.list_models() == ["GigaChat", "GigaChat-Pro-preview"]


def test_secrets_never_reach_the_logs(rsps, provider, caplog):
    caplog.set_level("DEBUG")
    rsps.post(GIGA_AUTH, json=token("tok-secret-1"))
    rsps.post(GIGA_AUTH, json=token("tok-secret-2"))
    rsps.post(CHAT, json=error(401, "Unauthorized"), status=401)
    rsps.post(CHAT, json=chat())
    provider.complete(REQUEST)
    assert "new token" in caplog.text
    for secret in (CREDENTIALS, "tok-secret-1", "tok-secret-2"):
        assert secret not in caplog.text
