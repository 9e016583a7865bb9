"""Examples in the OpenAPI document: an error body for each code (`error_examples.json`, the
same bodies as docs/api.md's error tables, kept equal by tests/unit/api/test_api_doc.py) and
requests of `POST /v1/jobs` that show versioning — a channel, a pinned version, a fallback
plan. Request examples are sent by schemathesis (its examples phase, and its coverage phase
mutates them), so each is a request that succeeds on a strict endpoint. The chat endpoint has
none: it is lenient like OpenAI's about some types (a mutated example showed it), which is
the OpenAI surface's to decide."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

_HI = [{"role": "user", "content": "Привет"}]

REQUEST_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "createJob": {
        "versioned": {
            "summary": "A model and a channel (latest, rc or deprecated; none means latest)",
            "value": {"model": "yandexgpt-lite:rc", "messages": _HI},
        },
        "pinned": {
            "summary": "A pinned version: served by whichever channel serves it now",
            "value": {"model": "yandexgpt:09.02.2025", "messages": _HI},
        },
        "fallback": {
            "summary": "A fallback plan: rc, then latest and deprecated, then a model of the "
            "client's choice, then the other provider's equivalent",
            "value": {
                "model": "yandexgpt:rc",
                "messages": _HI,
                "fallback": ["yandexgpt-lite"],
                "cross_provider": True,
            },
        },
    },
}


def _route(provider: str, model: str, channel: str, upstream: str) -> dict[str, str]:
    queue = f"{provider}.{channel}"
    return {
        "provider": provider,
        "model": model,
        "channel": channel,
        "upstream_id": upstream,
        "queue": queue,
    }


_RC = _route("yandexgpt", "yandexgpt", "rc", "yandexgpt/rc")
_LATEST = _route("yandexgpt", "yandexgpt", "latest", "yandexgpt/latest")
_DEPRECATED = _route("yandexgpt", "yandexgpt-lite", "deprecated", "yandexgpt-lite/deprecated")
_AT = "2026-12-03T09:30:00Z"

RESPONSE_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "getJob": {
        "fallback": {
            "summary": "rc failed twice with 503; the job fell back to latest, which answered",
            "value": {
                "id": "3f2c0a8e9b7d4c1e8a6f5b4d3c2b1a09",
                "object": "job",
                "status": "succeeded",
                "model": "yandexgpt:rc",
                "route": _LATEST,
                "result": {
                    "content": "Здравствуйте!",
                    "finish_reason": "stop",
                    "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
                    "provider": "yandexgpt",
                    "model": "yandexgpt",
                    "channel": "latest",
                    "model_version": "09.02.2025",
                },
                "attempts": [
                    {
                        "number": n,
                        "provider": "yandexgpt",
                        "model": "yandexgpt",
                        "channel": c,
                        "outcome": o,
                        "error_reason": e,
                        "latency_ms": ms,
                        "prompt_tokens": pt,
                        "completion_tokens": ct,
                        "started_at": _AT,
                    }
                    for n, c, o, e, ms, pt, ct in (
                        (1, "rc", "failed", "upstream_5xx", 210.0, None, None),
                        (2, "rc", "failed", "upstream_5xx", 190.0, None, None),
                        (3, "latest", "succeeded", None, 840.0, 12, 4),
                    )
                ],
                "plan": {
                    "candidates": [
                        {
                            "reason": "requested",
                            "detail": "yandexgpt:rc resolves to yandexgpt:rc",
                            "route": _RC,
                        },
                        {
                            "reason": "version_fallback",
                            "detail": "rc → latest (priority 10)",
                            "route": _LATEST,
                        },
                    ],
                    "skipped": [],
                },
                "warnings": [],
                "fallbacks": [
                    {
                        "from": "yandexgpt:rc",
                        "to": "yandexgpt:latest",
                        "reason": "upstream_5xx",
                        "at": _AT,
                    }
                ],
                "created_at": _AT,
                "started_at": _AT,
                "finished_at": _AT,
            },
        },
        "deprecated": {
            "summary": "Served by a deprecated version: a warning here, and the Deprecation and "
            "Sunset headers on the response",
            "value": {
                "id": "9a8b7c6d5e4f30211203948576abcdef",
                "object": "job",
                "status": "queued",
                "model": "yandexgpt-lite:deprecated",
                "route": _DEPRECATED,
                "warnings": [
                    {
                        "code": "model_deprecated",
                        "message": "yandexgpt-lite:deprecated is deprecated and will be switched "
                        "off on 2027-03-01; move to yandexgpt-lite:latest.",
                    }
                ],
                "created_at": _AT,
            },
        },
    },
}
HEADER_EXAMPLES = {
    "Deprecation": "@1788220800",
    "Sunset": "Mon, 01 Mar 2027 00:00:00 GMT",
}


@cache
def error_examples() -> dict[str, dict[str, Any]]:
    """code -> {"status": int, "body": {...}}."""
    text = files("api").joinpath("error_examples.json").read_text("utf-8")
    return json.loads(text)["errors"]


def error_examples_for(status: int) -> dict[str, dict[str, Any]]:
    """OpenAPI `examples` of one error status: one per code, named by the code."""
    return {
        code: {"summary": code, "value": example["body"]}
        for code, example in sorted(error_examples().items())
        if example["status"] == status
    }
