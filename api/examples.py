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
