"""The loose PromQL reading used by the dashboard and alert tests catches what it should."""

from __future__ import annotations

import pytest

from tests.unit.monitoring.promql import exported_samples, problems

EXPORTED = exported_samples()


def test_exported_samples_carry_suffixes_and_labels():
    assert EXPORTED["llmgw_http_requests_total"] == {"method", "endpoint", "status"}
    assert "le" in EXPORTED["llmgw_provider_call_duration_seconds_bucket"]
    assert "le" not in EXPORTED["llmgw_provider_call_duration_seconds_count"]
    assert EXPORTED["llmgw_queue_depth"] == {"queue"}
    assert "llmgw_http_requests" not in EXPORTED  # a counter is queried with _total


@pytest.mark.parametrize(
    "expr",
    [
        "rate(llmgw_provider_calls[5m])",
        "llmgw_queue_length",
        'llmgw_queue_depth{provider="x"}',
        "sum by (queue) (rate(llmgw_provider_calls_total[5m]))",
        "histogram_quantile(0.9, sum by (provider) (rate(llmgw_tokens_total[5m])))",
        "histogram_quantile(0.9, sum by (method) (llmgw_http_request_duration_seconds_bucket))",
        "a / ignoring (queue) llmgw_tokens_total",
    ],
)
def test_problems_are_found(expr):
    assert problems(expr, EXPORTED)


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (le, model) (rate(llmgw_provider_call_duration_seconds_bucket{channel="rc"}[1m]))',
        'max by (queue) (llmgw_queue_depth{queue!~"llmgw.maintenance"}) > 0 unless up == 0',
        'sum by (instance) (llmgw_redis_up{job="llmgw-api"})',
        'llmgw_tokens_total{kind="prompt", model=~"a|llmgw_nothing"}',
    ],
)
def test_valid_expressions_pass(expr):
    assert problems(expr, EXPORTED) == []
