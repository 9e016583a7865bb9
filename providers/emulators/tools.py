"""Deterministic tool (function) calls and JSON output for both emulators.

The emulated model calls a tool when the request forces one (by name, or "required"), or,
in automatic mode, when the last user message mentions a tool by name — never in answer to
a tool's result, which it answers in text that echoes the result. Arguments are filled
from the tool's JSON schema: strings get the prompt's first words, numbers a 1, and so on.
Arguments are a JSON *object* on both native APIs, as on the real services.

JSON output (Yandex `jsonObject` / `jsonSchema`, GigaChat `response_format`): the answer
is a JSON object — for a schema, one that validates against it (`sample_json`: required
and optional properties, nested objects, arrays with their `minItems`, the first `enum`
value, `const`); for plain JSON mode `{"answer": <the usual text>}`.
"""

from __future__ import annotations

import json
from typing import Any

from providers.emulators.common import compose_answer, first_words


def pick_tool(
    tools: list[dict], prompt: str, forced_name: str | None = None, required: bool = False
) -> dict | None:
    """The tool to call (a dict with at least ``name``), or None to answer in text."""
    named = [tool for tool in tools if isinstance(tool, dict) and tool.get("name")]
    if forced_name is not None:
        return next((tool for tool in named if tool["name"] == forced_name), None)
    mentioned = next((tool for tool in named if tool["name"] in prompt), None)
    if mentioned is None and required and named:
        return named[0]
    return mentioned


def sample_arguments(tool: dict, prompt: str, integer: float = 1) -> dict:
    """Arguments for every property of the tool's ``parameters`` schema."""
    properties = (tool.get("parameters") or {}).get("properties") or {}
    samples = {"integer": integer, "number": 1.0, "boolean": True, "array": [], "object": {}}
    return {
        name: samples.get(str((spec or {}).get("type")), first_words(prompt, 3))
        for name, spec in properties.items()
    }


def sample_json(schema: Any, prompt: str, depth: int = 0) -> Any:
    """A value that validates against a (plain) JSON schema."""
    if not isinstance(schema, dict) or depth > 8:
        return first_words(prompt, 3)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_json(schema[key][0], prompt, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: sample_json(sub, prompt, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 0))
        return [sample_json(schema.get("items") or {}, prompt, depth + 1)] * count
    samples = {"integer": 1, "number": 1.5, "boolean": True, "null": None}
    if kind in samples:
        return samples[kind]
    return first_words(prompt, 3) or "text"


def json_answer(model: str, prompt: str, schema: dict | None) -> str:
    """The text of a JSON-mode answer (compact, one line)."""
    value = sample_json(schema, prompt) if schema is not None else None
    if not isinstance(value, dict):
        value = {"answer": compose_answer(model, prompt)}
    return json.dumps(value, ensure_ascii=False)
