"""GigaChat wire format: request validation, answer generation and response bodies.

Token counting: ``/tokens/count`` counts each input string with the shared toy tokenizer;
a chat's ``prompt_tokens`` is the sum over messages of that count plus
``MESSAGE_OVERHEAD`` template tokens per message.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

from providers.emulators import unconfirmed
from providers.emulators.catalogue import GIGACHAT_CHAT_MODELS, GIGACHAT_EMBEDDERS, PREVIEW_SUFFIX
from providers.emulators.common import (
    CONTENT_FILTER_TRIGGER,
    FINISH_ERROR_TRIGGER,
    EmulatorError,
    compose_answer,
    count_tokens,
    json_response,
    truncate_tokens,
)
from providers.emulators.faults import FaultRule
from providers.emulators.tools import json_answer, pick_tool, sample_arguments

MESSAGE_OVERHEAD = 3
ROLES = {"system", "user", "assistant", "function", "search_result", "function_in_progress"}
MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Permission denied",
    404: "No such model",
    413: "Payload too large",
    422: "Invalid params",
    429: "Too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
REFUSAL = "Не люблю менять тему разговора, но вот сейчас тот самый случай."
SYSTEM_NOT_FIRST = "Invalid params: system message must be the first message"


def render_error(error: EmulatorError) -> web.Response:
    body = error.body
    if body is None:
        body = {"status": error.status, "message": error.message}
    return json_response(body, status=error.status)


@dataclass
class ModelRef:
    name: str  # as requested, e.g. GigaChat-Pro-preview
    base: str  # catalogue name, e.g. GigaChat-Pro
    branch: str  # latest | rc (the -preview twin)


def find_chat_model(name: object) -> ModelRef:
    if not isinstance(name, str) or not name:
        raise EmulatorError(422, "Invalid params: model is required")
    base, branch = name, "latest"
    if name.endswith(PREVIEW_SUFFIX) and unconfirmed.GIGACHAT_PREVIEW_ON_MAIN_HOST:
        base, branch = name.removesuffix(PREVIEW_SUFFIX), "rc"
    if base not in GIGACHAT_CHAT_MODELS:
        raise EmulatorError(404, "No such model")
    return ModelRef(name, base, branch)


def find_any_model(name: object) -> str:
    """A chat model (incl. -preview) or an embedder; 404 otherwise."""
    if isinstance(name, str) and name in GIGACHAT_EMBEDDERS:
        return name
    return find_chat_model(name).name


def model_list() -> list[dict]:
    chat = [n + s for n in GIGACHAT_CHAT_MODELS for s in ("", PREVIEW_SUFFIX)]
    return [_model_json(n, "chat") for n in chat] + [
        _model_json(n, "embedder") for n in GIGACHAT_EMBEDDERS
    ]


def model_json(name: str) -> dict:
    return _model_json(name, "embedder" if name in GIGACHAT_EMBEDDERS else "chat")


def _model_json(name: str, kind: str) -> dict:
    return {"id": name, "object": "model", "owned_by": "salutedevices", "type": kind}


@dataclass
class ChatCall:
    ref: ModelRef
    messages: list[dict]
    stream: bool
    max_tokens: int | None
    update_interval: float
    prompt_tokens: int


def parse_chat(body: dict) -> ChatCall:
    ref = find_chat_model(body.get("model"))
    messages = _parse_messages(body.get("messages"))
    _positive(body, "temperature")
    _positive(body, "repetition_penalty")
    top_p = body.get("top_p")
    if top_p is not None and (not isinstance(top_p, int | float) or not 0 <= top_p <= 1):
        raise EmulatorError(422, "Invalid params: top_p must be in range [0, 1]")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens <= 0):
        raise EmulatorError(422, "Invalid params: max_tokens must be a positive integer")
    interval = body.get("update_interval") or 0
    return ChatCall(
        ref=ref,
        messages=messages,
        stream=bool(body.get("stream")),
        max_tokens=max_tokens,
        update_interval=float(interval) if isinstance(interval, int | float) else 0.0,
        prompt_tokens=prompt_tokens(messages),
    )


def _parse_messages(messages: object) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise EmulatorError(422, "Invalid params: messages must not be empty")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise EmulatorError(422, f"Invalid params: messages[{index}].role is invalid")
        if message["role"] == "system" and index != 0:
            raise EmulatorError(422, SYSTEM_NOT_FIRST)
    return messages


def _positive(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise EmulatorError(422, f"Invalid params: {name} must be in range (0, +inf)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def content_of(message: dict) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def prompt_tokens(messages: list[dict]) -> int:
    return sum(count_tokens(content_of(m)) + MESSAGE_OVERHEAD for m in messages)


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_of(message)
    return ""


@dataclass
class Outcome:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    model: str  # "<name>:<version>"
    function_call: dict | None = None


def generate(call: ChatCall, version: str, fault: FaultRule | None, body: dict) -> Outcome:
    kind = fault.kind if fault else None
    context = GIGACHAT_CHAT_MODELS[call.ref.base]["context"]
    if kind == "context_length" or call.prompt_tokens > context:
        got = max(call.prompt_tokens, context + 1)
        message = unconfirmed.GIGACHAT_CONTEXT_MESSAGE.format(got=got, limit=context)
        raise EmulatorError(unconfirmed.GIGACHAT_CONTEXT_STATUS, message)
    model = f"{call.ref.name}:{version}"
    prompt = last_user_text(call.messages)
    if kind == "content_filter" or CONTENT_FILTER_TRIGGER in prompt:
        return _outcome(call, REFUSAL, "blacklist", model)
    if kind == "finish_error" or FINISH_ERROR_TRIGGER in prompt:
        return _outcome(call, "", "error", model)
    last = call.messages[-1]
    if last.get("role") == "function":  # answer the result, echoing it; never call again
        prompt = content_of(last)
    else:
        function_call = plan_function_call(body, prompt)
        if function_call is not None:
            return _outcome(call, "", "function_call", model, function_call)
    if json_mode(body):
        return _text_outcome(call, json_answer(call.ref.base, prompt, None), kind, model)
    return _text_outcome(call, compose_answer(call.ref.base, prompt), kind, model)


def json_mode(body: dict) -> bool:
    """`response_format: {"type": "json_object"}` (or `text`); anything else is 422."""
    fmt = body.get("response_format")
    if fmt is None:
        return False
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object"):
        raise EmulatorError(422, "Invalid params: response_format.type must be text|json_object")
    return kind == "json_object"


def _text_outcome(call: ChatCall, text: str, kind: str | None, model: str) -> Outcome:
    limit = call.max_tokens
    if kind == "truncate":
        half = max(1, count_tokens(text) // 2)
        limit = half if limit is None else min(limit, half)
    if limit is not None and count_tokens(text) > limit:
        return _outcome(call, truncate_tokens(text, limit), "length", model)
    return _outcome(call, text, "stop", model)


def _outcome(call, text, finish, model, function_call=None) -> Outcome:
    completion = count_tokens(text) + (3 if function_call else 0)
    return Outcome(text, finish, call.prompt_tokens, completion, model, function_call)


def plan_function_call(body: dict, prompt: str) -> dict | None:
    """A function call when one is forced by name, or when ``auto`` and the prompt names it."""
    functions = body.get("functions") or []
    choice = body.get("function_call", "auto")
    if not isinstance(functions, list) or choice == "none":
        return None
    forced = choice.get("name") if isinstance(choice, dict) else None
    chosen = pick_tool(functions, prompt, forced_name=forced)
    if chosen is None:
        return None
    extra = (choice.get("partial_arguments") if isinstance(choice, dict) else None) or {}
    return {"name": chosen["name"], "arguments": {**sample_arguments(chosen, prompt), **extra}}


def message_json(outcome: Outcome) -> dict:
    message: dict = {"role": "assistant", "content": outcome.text}
    if outcome.function_call is not None:
        message["function_call"] = outcome.function_call
        message["functions_state_id"] = str(uuid.uuid4())
    return message


def usage_json(outcome: Outcome) -> dict:
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        "precached_prompt_tokens": 0,
    }


def completion_json(outcome: Outcome) -> dict:
    choice = {"message": message_json(outcome), "index": 0, "finish_reason": outcome.finish_reason}
    return {
        "choices": [choice],
        "created": int(time.time()),
        "model": outcome.model,
        "object": "chat.completion",
        "usage": usage_json(outcome),
    }


def chunk_json(outcome: Outcome, delta: dict, finish: bool = False) -> dict:
    choice: dict = {"delta": delta, "index": 0}
    chunk = {
        "choices": [choice],
        "created": int(time.time()),
        "model": outcome.model,
        "object": "chat.completion",
    }
    if finish:
        choice["finish_reason"] = outcome.finish_reason
        chunk["usage"] = usage_json(outcome)
    return chunk


def embedding(text: str, dimension: int) -> list[float]:
    """A deterministic unit vector derived from the text."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimension)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in vector]
