"""Every `llmgw_*` metric, defined once. Labels are bounded: provider, model, channel,
status, error class, endpoint (the Flask rule, not the URL) — never a job id or a key."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
ROUTE = ("provider", "model", "channel")

HTTP_REQUESTS = Counter(
    "llmgw_http_requests_total", "HTTP requests served.", ("method", "endpoint", "status")
)
HTTP_LATENCY = Histogram(
    "llmgw_http_request_duration_seconds",
    "HTTP request latency.",
    ("method", "endpoint"),
    buckets=LATENCY_BUCKETS,
)
JOBS_SUBMITTED = Counter(
    "llmgw_jobs_submitted_total", "Jobs accepted by the API.", (*ROUTE, "priority")
)
JOBS_FINISHED = Counter(
    "llmgw_jobs_finished_total", "Jobs that reached an end.", (*ROUTE, "status")
)
PROVIDER_CALLS = Counter(
    "llmgw_provider_calls_total", "Provider calls by outcome.", (*ROUTE, "outcome", "error_class")
)
QUEUE_WAIT = Histogram(
    "llmgw_job_queue_wait_seconds",
    "From a job's submission to its first claim by a worker (jobs that waited in a queue; "
    "a synchronous job run by the API process that received it does not wait and is not "
    "counted), by the route it was claimed on and its priority.",
    (*ROUTE, "priority"),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PROVIDER_LATENCY = Histogram(
    "llmgw_provider_call_duration_seconds",
    "Provider call latency.",
    ROUTE,
    buckets=LATENCY_BUCKETS,
)
FALLBACKS = Counter(
    "llmgw_fallbacks_total",
    "Jobs moved from one candidate to another, with the reason.",
    (
        "from_provider",
        "from_model",
        "from_channel",
        "to_provider",
        "to_model",
        "to_channel",
        "reason",
    ),
)
TOKENS = Counter(
    "llmgw_tokens_total", "Tokens used, by kind (prompt, completion).", (*ROUTE, "kind")
)
TOKEN_COUNTS = Counter(
    "llmgw_token_counts_total",
    "Token counts asked (tokenize, context-window check, admission), by where the figure "
    "came from: cache, tokenizer, or estimate (the tokenizer failed: characters / 4).",
    ("provider", "source"),
)
COST = Counter(
    "llmgw_cost_total",
    "What the tokens of successful provider calls cost at the catalogue's list prices "
    "(models.pricing, per 1,000 prompt and completion tokens), in that price's currency.",
    (*ROUTE, "currency"),
)
LIMIT_REJECTIONS = Counter(
    "llmgw_limit_rejections_total",
    "Submissions refused by a limit: scope kind (key, key_model, gateway_model), limit kind "
    "(rpm, tpm, tpd, tpmo, conc) and reason (rate_limited, quota_exceeded, concurrency_limited).",
    ("scope_kind", "limit_kind", "reason"),
)

PACING_WAITS = Counter(
    "llmgw_pacing_waits_total",
    "Jobs put back in the queue because the provider credential had no free slot, by cap.",
    ("provider", "reason"),
)
PACING_IN_FLIGHT = Gauge(
    "llmgw_pacing_in_flight",
    "Pacing slots this worker process holds (provider calls in flight), per provider.",
    ("provider",),
    multiprocess_mode="livesum",
)

CALLBACK_DELIVERIES = Counter(
    "llmgw_callback_deliveries_total",
    "Completion callback attempts by subject (job, batch) and outcome: delivered, retrying "
    "(failed, another attempt is due), failed (the retry window ran out).",
    ("kind", "outcome"),
)


def exposition(*extra: Collector) -> tuple[bytes, str]:
    """The text format of this process, or of all gunicorn workers in multiprocess mode, plus
    `extra` collectors that compute at scrape time (`monitoring.collectors`)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # type: ignore[arg-type]  # a registry is a collector
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
