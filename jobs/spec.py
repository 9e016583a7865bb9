"""What a job is asked to do: the request a client sends, and the spec a job row keeps.

`JobRequest` is the body of `POST /v1/jobs` (strict: unknown fields are refused).
`JobSpec` is what `jobs.request` holds once the job is written: the same parameters plus
what submission decided — the fallback plan (typed by `routing.plan`'s own candidates, so a
worker reads back routes, not dicts), the warnings and deprecation headers of the route, and
the stream flag. Priority is a column of its own (`jobs.priority`), not part of the spec.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

from providers import base as provider
from routing.plan import Candidate, FallbackPlan, Skipped
from routing.service import Route
from storage.limits import Reservation

Priority = Literal["interactive", "batch"]
MODEL_ID_SCHEMA: JsonDict = {
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$"
}
"""The model-id grammar of `routing/model_id.py`, for the document (the router enforces it)."""
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=512)]],
    Field(max_length=32, description="up to 32 pairs: keys 1-64, values up to 512 characters"),
]
"""A client's labels for a job: bounded in count and length, so at most ~18 KB a job."""


CALL_ID_OPTIONAL = Field(default=None, min_length=1, max_length=128)
FUNCTION_NAME = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
CALL_ID = Field(min_length=1, max_length=128)


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = FUNCTION_NAME
    arguments: str = Field(
        max_length=100_000, description="the arguments: a JSON object serialized to a string"
    )

    @field_validator("arguments")
    @classmethod
    def json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value or "{}")
        except ValueError as exc:
            raise ValueError("must be a JSON object serialized to a string") from exc
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object serialized to a string")
        return value


class ToolCallIn(BaseModel):
    """A call the assistant made, as OpenAI gives it (`arguments` a JSON string)."""

    model_config = ConfigDict(extra="forbid")

    id: str = CALL_ID
    type: Literal["function"] = "function"
    function: FunctionCallIn

    def as_call(self) -> provider.ToolCall:
        arguments = json.loads(self.function.arguments or "{}")
        return provider.ToolCall(self.id, self.function.name, arguments)


class MessageIn(BaseModel):
    """A message. `assistant` may carry `tool_calls` (then `content` may be empty); `tool`
    answers one call by `tool_call_id` (its function's `name` is filled in from the call)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant", "tool"]
    # Before `content`, whose check needs them.
    tool_calls: list[ToolCallIn] | None = Field(default=None, min_length=1, max_length=128)
    tool_call_id: str | None = CALL_ID_OPTIONAL
    content: str = Field(default="", max_length=1_000_000)
    name: str | None = Field(default=None, description="tool: the called function (filled in)")

    @field_validator("content")
    @classmethod
    def text_given(cls, value: str, info: ValidationInfo) -> str:
        """Empty only beside tool calls, or as a tool's result."""
        if not value and not (info.data.get("tool_calls") or info.data.get("role") == "tool"):
            raise ValueError("content must not be empty")
        return value

    @model_validator(mode="after")
    def shape(self) -> MessageIn:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages, and only they, need tool_call_id")
        return self

    def as_message(self) -> provider.Message:
        calls = tuple(call.as_call() for call in self.tool_calls or ())
        return provider.Message(self.role, self.content, calls, self.tool_call_id, self.name)


class FunctionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = FUNCTION_NAME
    description: str | None = Field(default=None, max_length=8192)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="the arguments' JSON schema"
    )
    strict: bool | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionIn

    def as_tool(self) -> provider.Tool:
        f = self.function
        return provider.Tool(f.name, f.description or "", f.parameters, f.strict)


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = FUNCTION_NAME


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class JsonSchemaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = FUNCTION_NAME
    description: str | None = Field(default=None, max_length=8192)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaIn | None = None

    @model_validator(mode="after")
    def schema_given(self) -> ResponseFormatIn:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is required with type json_schema, and only then")
        return self

    def as_format(self) -> provider.ResponseFormat:
        js = self.json_schema
        if js is None:
            return provider.ResponseFormat(self.type)
        return provider.ResponseFormat(self.type, js.schema_, js.name, js.strict)


class CompletionParams(BaseModel):
    """The parameters of one completion, shared by the request and the stored spec."""

    model: str = Field(
        min_length=1,
        max_length=200,
        examples=["yandexgpt-lite:latest"],
        json_schema_extra=MODEL_ID_SCHEMA,
    )
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=128_000)
    top_p: float | None = Field(default=None, gt=0, le=1)
    repetition_penalty: float | None = Field(
        default=None, gt=0, le=10, description="GigaChat only; YandexGPT ignores it"
    )
    fallback: list[Annotated[str, Field(json_schema_extra=MODEL_ID_SCHEMA)]] = Field(
        default_factory=list, max_length=5, description="model ids to try after the version chain"
    )
    cross_provider: bool = Field(
        default=False, description="allow the equivalent model of the other provider as a fallback"
    )
    metadata: Metadata = Field(default_factory=dict)
    tools: list[ToolIn] = Field(
        default_factory=list, max_length=128, description="functions the model may call"
    )
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = Field(default=None, description="YandexGPT only")
    response_format: ResponseFormatIn | None = None
    stop: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        max_length=4,
        description="stop sequences: neither provider has them, so a non-empty list is a 400 "
        "`unsupported_parameter`",
    )

    @model_validator(mode="after")
    def tool_references(self) -> CompletionParams:
        """Each tool message answers an earlier call (its `name` is that call's function); a
        forced function is one of `tools`."""
        called: dict[str, str] = {}
        for index, message in enumerate(self.messages):
            for call in message.tool_calls or ():
                called[call.id] = call.function.name
            if message.role == "tool":
                name = called.get(message.tool_call_id or "")
                if name is None:
                    raise ValueError(
                        f"messages[{index}].tool_call_id {message.tool_call_id!r} answers "
                        "no tool call of an earlier assistant message"
                    )
                message.name = name
        choice = self.tool_choice
        if choice is not None and not self.tools:
            raise ValueError("tool_choice needs tools")
        offered = {t.function.name for t in self.tools}
        if isinstance(choice, NamedToolChoice) and choice.function.name not in offered:
            raise ValueError(f"tool_choice names {choice.function.name!r}, not in tools")
        return self

    def provider_messages(self) -> tuple[provider.Message, ...]:
        return tuple(m.as_message() for m in self.messages)

    def provider_fields(self) -> dict[str, Any]:
        """The tool and output fields of `providers.base.CompletionRequest`."""
        choice = self.tool_choice
        tool_choice: provider.ToolChoice | None
        if isinstance(choice, NamedToolChoice):
            tool_choice = provider.ToolChoice("auto", choice.function.name)
        else:
            tool_choice = provider.ToolChoice(choice) if choice else None
        fmt = self.response_format
        return {
            "tools": tuple(tool.as_tool() for tool in self.tools),
            "tool_choice": tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "response_format": fmt.as_format() if fmt else None,
        }


class JobRequest(CompletionParams):
    """Strict: `"5"` is no integer and `0` no boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)

    priority: Priority = "interactive"
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="http(s) URL that receives the final job JSON, signed, when the job "
        "ends (docs/api.md, Completion callbacks)",
    )


class StoredPlan(BaseModel):
    """The fallback plan fixed at submission: candidates in order, and what was left out."""

    candidates: tuple[Candidate, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @classmethod
    def of(cls, plan: FallbackPlan) -> StoredPlan:
        return cls(candidates=plan.candidates, skipped=plan.skipped)

    def routes(self) -> list[Route]:
        return [candidate.route for candidate in self.candidates]


class JobSpec(CompletionParams):
    """The `jobs.request` column. Lenient on read: rows written by older versions load, and
    after the retention sweep the messages are gone."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    messages: list[MessageIn] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)  # rows from before the bounds load
    stream: bool = False
    plan: StoredPlan = Field(default_factory=StoredPlan)
    warnings: list[dict[str, str]] = Field(default_factory=list)
    deprecation_headers: dict[str, str] = Field(default_factory=dict)
    # What admission charged (`jobs.admission`); settled when the job ends. None: no limits.
    reservation: Reservation | None = None
    # A completion callback was asked for (its URL lives in `callback_deliveries`).
    has_callback: bool = False

    @classmethod
    def build(
        cls,
        request: CompletionParams,
        plan: FallbackPlan,
        *,
        stream: bool,
        reservation: Reservation | None = None,
    ) -> JobSpec:
        params = request.model_dump(include=set(CompletionParams.model_fields))
        return cls(
            **params,
            stream=stream,
            reservation=reservation,
            has_callback=getattr(request, "callback_url", None) is not None,
            plan=StoredPlan.of(plan),
            warnings=plan.route.warnings(),
            deprecation_headers=plan.route.deprecation_headers(),
        )

    @classmethod
    def load(cls, stored: dict[str, Any]) -> JobSpec:
        return cls.model_validate(stored)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def erased(self) -> dict[str, Any]:
        """The stored form with the prompt removed (the retention sweep)."""
        return {**self.dump(), "messages": []}
