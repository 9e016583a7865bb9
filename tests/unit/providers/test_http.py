"""The shared plumbing: transport error mapping, Retry-After, status classification."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests

from providers import http
from providers.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    MalformedResponse,
    ModelNotFound,
    PaymentRequired,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamServerError,
)

URL = "https://upstream.test/v1/thing"


def test_session_pool_is_sized_and_never_retries():
    session = http.make_session(pool_size=33)
    adapter = session.get_adapter("https://x.test/")
    assert adapter._pool_maxsize == 33
    assert adapter.max_retries.total == 0


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ReadTimeout("slow"), ProviderTimeout),
        (requests.ConnectTimeout("no route"), ProviderTimeout),
        (requests.ConnectionError("reset"), ProviderConnectionError),
        (requests.exceptions.ChunkedEncodingError("cut"), ProviderConnectionError),
    ],
)
def test_transport_failures_map_to_retryable_errors(rsps, exc, expected):
    rsps.get(URL, body=exc)
    with pytest.raises(expected) as info:
        http.send(requests.Session(), "GET", URL, timeout=(1, 2))
    assert info.value.retryable
    assert "/v1/thing" in info.value.message


def test_send_passes_the_timeout_pair(rsps):
    rsps.get(URL, json={})
    http.send(requests.Session(), "GET", URL, timeout=(1.5, 9.0))
    assert rsps.calls[0].request.req_kwargs["timeout"] == (1.5, 9.0)


def test_json_body_rejects_non_json(rsps):
    rsps.get(URL, body="<html>oops</html>", status=200)
    response = requests.get(URL)
    with pytest.raises(MalformedResponse, match="oops"):
        http.json_body(response)


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None)],
)
def test_retry_after_seconds(rsps, header, expected):
    rsps.get(URL, status=429, headers={"Retry-After": header} if header else {})
    assert http.retry_after(requests.get(URL)) == expected


def test_retry_after_http_date(rsps):
    rsps.get(URL, status=429, headers={"Retry-After": email.utils.formatdate(time.time() + 30)})
    assert 25 <= http.retry_after(requests.get(URL)) <= 31


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequest),
        (401, AuthError),
        (402, PaymentRequired),
        (403, AuthError),
        (404, ModelNotFound),
        (408, ProviderTimeout),
        (413, ContextTooLong),
        (422, BadRequest),
        (429, RateLimited),
        (500, UpstreamServerError),
        (501, BadRequest),
        (502, UpstreamServerError),
        (503, UpstreamServerError),
        (504, UpstreamServerError),
    ],
)
def test_error_for_status(status, expected):
    error = http.error_for_status(status, "msg")
    assert type(error) is expected
    assert error.status == status


def test_redact_masks_secrets():
    assert http.redact("Unknown api key 'sek'", "sek", None, "") == "Unknown api key '***'"


def test_a_misconfigured_url_is_permanent():
    with pytest.raises(ProviderError) as info:
        http.send(requests.Session(), "GET", "llm.api.cloud.yandex.net/x", timeout=(1, 2))
    assert not info.value.retryable
    assert "Misconfigured" in info.value.message


def test_tls_failure_names_the_ca_bundle(rsps):
    rsps.get(URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(ProviderConnectionError, match="CA bundle"):
        http.send(requests.Session(), "GET", URL, timeout=(1, 2))
