"""What a model version can serve: a closed set of capability names.

A catalogue version lists its capabilities (`model_versions.capabilities`, seeded from
`catalogue.json`, where a model's list applies to each of its versions unless a version
gives its own). A version without a list serves plain chat, streamed or not.

Chosen over per-provider rules in code because support differs by version, not by
provider: YandexGPT's 23.10.2024 release predates function calling, the 22.05.2025 one
has it. The API refuses a request that no candidate can serve, and the fallback plan skips
candidates that lack what the request needs (reason `unsupported`).
"""

from __future__ import annotations

from collections.abc import Iterable

CHAT = "chat"
STREAM = "stream"
TOOLS = "tools"
JSON_OBJECT = "json_object"
JSON_SCHEMA = "json_schema"
EMBEDDINGS = "embeddings"

CAPABILITIES = (CHAT, STREAM, TOOLS, JSON_OBJECT, JSON_SCHEMA, EMBEDDINGS)
DEFAULT_CAPABILITIES: tuple[str, ...] = (CHAT, STREAM)


def normalize(names: Iterable[str] | None) -> tuple[str, ...]:
    """The known names in canonical order; None gives the defaults. Unknown names raise."""
    if names is None:
        return DEFAULT_CAPABILITIES
    given = set(names)
    unknown = given - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {list(CAPABILITIES)}")
    return tuple(name for name in CAPABILITIES if name in given)


def missing(have: Iterable[str], need: Iterable[str]) -> tuple[str, ...]:
    """The needed capabilities that `have` lacks, in canonical order."""
    held = set(have)
    return tuple(name for name in CAPABILITIES if name in set(need) and name not in held)
