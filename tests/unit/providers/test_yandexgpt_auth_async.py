"""YandexGPT auth modes (API key, static IAM token, OAuth→IAM exchange) and async mode."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from providers.base import CompletionRequest, Message
from providers.errors import (
    AuthError,
    ContextTooLong,
    ProviderTimeout,
    RateLimited,
    UpstreamServerError,
)
from providers.yandexgpt import YandexGPTProvider, parse_rfc3339
from tests.unit.providers.conftest import YANDEX, YANDEX_IAM, YANDEX_OPS, calls_to, yandex_config
from tests.unit.providers.test_yandexgpt import COMPLETION, answer, envelope

IAM = f"{YANDEX_IAM}/iam/v1/tokens"
ASYNC = f"{YANDEX}/foundationModels/v1/completionAsync"
REQUEST = CompletionRequest("yandexgpt/latest", (Message("user", "x" * 400),), max_tokens=100)


def iam_answer(token: str, hours: float = 12):
    expires = datetime.now(UTC) + timedelta(hours=hours)
    return {"iamToken": token, "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%S.%f123Z")}


def auth_headers(mock, url=COMPLETION):
    return [c.request.headers["Authorization"] for c in calls_to(mock, url)]


# -- auth --------------------------------------------------------------------------------------


def test_static_iam_token_is_sent_as_bearer(rsps):
    provider = YandexGPTProvider(yandex_config(iam_token="t1.static"))
    rsps.post(COMPLETION, json=answer())
    provider.complete(REQUEST)
    assert auth_headers(rsps) == ["Bearer t1.static"]


def test_api_key_wins_over_iam_token(rsps):
    config = yandex_config(api_key="k", iam_token="t1.static")
    rsps.post(COMPLETION, json=answer())
    YandexGPTProvider(config).complete(REQUEST)
    assert auth_headers(rsps) == ["Api-Key k"]


def test_no_credentials_is_an_auth_error():
    with pytest.raises(AuthError, match="No YandexGPT credentials"):
        YandexGPTProvider(yandex_config()).complete(REQUEST)


def test_oauth_token_is_exchanged_once_and_reused(rsps):
    provider = YandexGPTProvider(yandex_config(oauth_token="y0_oauth"))
    rsps.post(IAM, json=iam_answer("t1.first"))
    rsps.post(COMPLETION, json=answer())
    provider.complete(REQUEST)
    provider.complete(REQUEST)
    assert len(calls_to(rsps, IAM)) == 1
    assert json.loads(rsps.calls[0].request.body) == {"yandexPassportOauthToken": "y0_oauth"}
    assert auth_headers(rsps) == ["Bearer t1.first", "Bearer t1.first"]


def test_expired_iam_token_is_refreshed_and_the_call_retried_once(rsps):
    provider = YandexGPTProvider(yandex_config(oauth_token="y0_oauth"))
    rsps.post(IAM, json=iam_answer("t1.old"))
    rsps.post(IAM, json=iam_answer("t1.new"))
    rsps.post(COMPLETION, json=envelope(401, "IAM token expired", 16), status=401)
    rsps.post(COMPLETION, json=answer())
    assert provider.complete(REQUEST).content == "Здравствуйте!"
    assert auth_headers(rsps) == ["Bearer t1.old", "Bearer t1.new"]


def test_second_401_after_refresh_is_an_auth_error(rsps):
    provider = YandexGPTProvider(yandex_config(oauth_token="y0_oauth"))
    rsps.post(IAM, json=iam_answer("t1.a"))
    rsps.post(IAM, json=iam_answer("t1.b"))
    rsps.post(COMPLETION, json=envelope(401, "denied", 16), status=401)
    with pytest.raises(AuthError):
        provider.complete(REQUEST)
    assert len(calls_to(rsps, COMPLETION)) == 2
    assert len(calls_to(rsps, IAM)) == 2


def test_iam_token_is_shared_through_redis(rsps):
    server = fakeredis.FakeServer()
    config = yandex_config(oauth_token="y0_oauth")
    first = YandexGPTProvider(config, redis=fakeredis.FakeRedis(server=server))
    second = YandexGPTProvider(config, redis=fakeredis.FakeRedis(server=server))
    rsps.post(IAM, json=iam_answer("t1.shared"))
    rsps.post(COMPLETION, json=answer())
    first.complete(REQUEST)
    second.complete(REQUEST)
    assert len(calls_to(rsps, IAM)) == 1
    assert auth_headers(rsps) == ["Bearer t1.shared"] * 2


@pytest.mark.parametrize(("status", "expected"), [(401, AuthError), (503, UpstreamServerError)])
def test_failed_exchange(rsps, status, expected):
    provider = YandexGPTProvider(yandex_config(oauth_token="y0_oauth"))
    rsps.post(IAM, json=envelope(status, "nope y0_oauth", 16), status=status)
    with pytest.raises(expected) as info:
        provider.complete(REQUEST)
    assert "y0_oauth" not in str(info.value)


def test_rfc3339_with_nanoseconds():
    assert parse_rfc3339("2024-06-06T12:45:48.123456789Z") == pytest.approx(1717677948.123456)


# -- async mode --------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def async_provider(fake: FakeTime, **overrides) -> YandexGPTProvider:
    config = yandex_config(
        api_key="k",
        async_threshold_tokens=150,
        async_poll_interval=2.0,
        async_deadline_seconds=10.0,
        **overrides,
    )
    return YandexGPTProvider(config, sleep=fake.sleep, clock=lambda: fake.now)


def operation(done=False, **extra):
    return {"id": "op1", "description": "Async GPT Completion", "done": done} | extra


def test_small_requests_stay_synchronous(rsps):
    rsps.post(COMPLETION, json=answer())
    small = CompletionRequest("yandexgpt/latest", (Message("user", "hi"),), max_tokens=10)
    async_provider(FakeTime()).complete(small)
    assert len(calls_to(rsps, COMPLETION)) == 1


def test_async_completion_polls_until_done(rsps):
    fake = FakeTime()
    rsps.post(ASYNC, json=operation())
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=operation())
    response = answer()["result"] | {"@type": "type.googleapis.com/...CompletionResponse"}
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=operation(done=True, response=response))
    result = async_provider(fake).complete(REQUEST)
    assert result.content == "Здравствуйте!"
    assert result.usage.total_tokens == 26
    assert fake.sleeps == [2.0, 2.0]
    assert json.loads(calls_to(rsps, ASYNC)[0].request.body)["completionOptions"]["maxTokens"]


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (3, "Number of input tokens must be no more than 32000, got 40000", ContextTooLong),
        (8, "quota", RateLimited),
        (13, "internal", UpstreamServerError),
    ],
)
def test_failed_operation_is_classified(rsps, code, message, expected):
    error = {"code": code, "message": message, "details": []}
    rsps.post(ASYNC, json=operation(done=True, error=error))
    with pytest.raises(expected, match=message.split()[0]):
        async_provider(FakeTime()).complete(REQUEST)


def test_async_deadline_cancels_and_times_out(rsps):
    fake = FakeTime()
    rsps.post(ASYNC, json=operation())
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=operation())
    cancel = rsps.get(f"{YANDEX_OPS}/operations/op1:cancel", json=operation(done=True))
    with pytest.raises(ProviderTimeout, match="op1"):
        async_provider(fake).complete(REQUEST)
    assert cancel.call_count == 1
    assert fake.now == 10.0


def test_a_transient_poll_failure_keeps_polling(rsps):
    fake = FakeTime()
    rsps.post(ASYNC, json=operation())
    poll = f"{YANDEX_OPS}/operations/op1"
    rsps.get(poll, json=envelope(503, "unavailable", 14), status=503)
    rsps.get(poll, json=operation(done=True, response=answer()["result"]))
    assert async_provider(fake).complete(REQUEST).finish_reason == "stop"
    assert len(calls_to(rsps, poll)) == 2
    assert len(calls_to(rsps, ASYNC)) == 1


def test_a_permanent_poll_failure_stops(rsps):
    rsps.post(ASYNC, json=operation())
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=envelope(403, "denied", 7), status=403)
    with pytest.raises(AuthError):
        async_provider(FakeTime()).complete(REQUEST)


def test_vanished_operation_is_retryable(rsps):
    rsps.post(ASYNC, json=operation())
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=envelope(404, "not found", 5), status=404)
    with pytest.raises(UpstreamServerError) as info:
        async_provider(FakeTime()).complete(REQUEST)
    assert info.value.retryable


def test_iam_expiry_is_capped_at_an_hour(rsps):
    provider = YandexGPTProvider(yandex_config(oauth_token="y0"))
    rsps.post(IAM, json=iam_answer("t1.x", hours=12))
    token = provider._exchange_iam_token()
    assert token.expires_at <= time.time() + 3600
