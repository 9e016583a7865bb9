"""Deterministic tool (function) calls for both emulators.

The emulated model calls a tool when the request forces one (by name, or "required"), or,
in automatic mode, when the last user message mentions a tool by name. Arguments are filled
from the tool's JSON schema: strings get the prompt's first words, numbers a 1, and so on.
Arguments are a JSON *object* on both native APIs, as on the real services.
"""

from __future__ import annotations

from providers.emulators.common import first_words


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
