"""The provider contract: normalized request/result types and the `Provider` protocol.

Every provider module turns a `CompletionRequest` into its own wire format and the
provider's answer back into a `CompletionResult`. Errors are raised as the typed
hierarchy in `providers.errors`.

Tools and structured output are normalized on OpenAI's model, which clients speak: a tool
is a function (name, description, JSON-schema parameters); an assistant message may carry
`tool_calls` (each with an id); a `tool` message answers one call by its id and carries the
function's name (resolved from the id when the request came in, since both providers key
results by name). Arguments are kept as a JSON object (both providers send and take an
object; the API turns it into OpenAI's string at the edge). Neither provider gives a call an
id: adapters make one (GigaChat's `functions_state_id` when there is one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

ROLES = ("system", "user", "assistant", "tool")
TOOL_CHOICE_MODES = ("auto", "none", "required")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None


@dataclass(frozen=True)
class ToolChoice:
    """`mode` one of TOOL_CHOICE_MODES, or `function` naming the one tool to call."""

    mode: str = "auto"
    function: str | None = None


@dataclass(frozen=True)
class ResponseFormat:
    type: str = "text"  # one of RESPONSE_FORMATS
    schema: dict[str, Any] | None = None  # json_schema only
    name: str | None = None
    strict: bool | None = None


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    # assistant: the calls it made (content may then be empty)
    tool_calls: tuple[ToolCall, ...] = ()
    # tool: which call this answers, and that call's function name
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """What a worker asks of a provider.

    `upstream_model` is the provider's own identifier of the resolved version: for
    YandexGPT `<model>/<branch>` (the provider adds `gpt://<folder>/`), for GigaChat
    the model name (e.g. `GigaChat-Pro-preview`).
    """

    upstream_model: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    request_id: str | None = None
    # GigaChat only (1.0 is neutral, > 1 discourages repeats); other providers ignore it.
    repetition_penalty: float | None = None
    # The caller wants the answer as it is generated: the worker calls `stream`, not
    # `complete` (which ignores the flag).
    stream: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


# Normalized finish reasons: "stop", "length", "content_filter", "tool_calls".
@dataclass(frozen=True)
class CompletionResult:
    content: str
    finish_reason: str
    usage: Usage
    model_version: str
    upstream_model: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class StreamChunk:
    """One piece of a streamed answer: `delta` is the text added since the previous chunk.

    The last chunk of a stream, and only it, has `finish_reason` (normalized as above),
    `usage` and `model_version`; a stream that ends without it was cut. Tool calls come
    whole (neither provider streams their arguments), on the final chunk.
    """

    delta: str
    finish_reason: str | None = None
    usage: Usage | None = None
    model_version: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None


class Provider(Protocol):
    name: str

    def complete(self, request: CompletionRequest) -> CompletionResult: ...

    def stream(self, request: CompletionRequest) -> Iterator[StreamChunk]:
        """The answer as it is generated, ending with one final chunk. A connection that
        ends without it, or an error event mid-stream, raises `StreamInterrupted`."""
        ...

    def count_tokens(self, upstream_model: str, messages: tuple[Message, ...]) -> int: ...

    def list_models(self) -> list[str]: ...
