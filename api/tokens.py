"""Token counts by the provider's tokenizer: `POST /v1/tokenize` (llmgw's shape) and
`POST /v1/tokens/count` (GigaChat's shape, so the `gigachat` SDK's `tokens_count` works with
`base_url=<llmgw>/v1`). Both count with the tokenizer of the version the model id resolves to,
cached in Redis; when the tokenizer fails the figure is characters ÷ 4 and says so
(`jobs.tokens`). Neither is charged against a key's limits (no completion is made), but a key
restricted to some models may count only with theirs (403 `model_not_allowed`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from api.auth import authenticate
from api.context import services
from api.contract import endpoint
from api.errors import ApiError
from api.schemas import MODEL_ID_SCHEMA
from providers.base import Message

bp = Blueprint("tokens", __name__, url_prefix="/v1")

MAX_TEXTS = 100
Text = Annotated[str, Field(min_length=1, max_length=1_000_000)]


class TokenizeMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: Text


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, json_schema_extra=MODEL_ID_SCHEMA)
    messages: list[TokenizeMessage] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="a chat prompt: counted as the provider sends it (with its template)",
    )
    text: Text | None = Field(default=None, description="plain text (no chat template)")

    @model_validator(mode="after")
    def one_input(self) -> TokenizeRequest:
        if (self.messages is None) == (self.text is None):
            raise ValueError("give exactly one of `messages` and `text`")
        return self


class TokenizeOut(BaseModel):
    object: Literal["tokenize"] = "tokenize"
    model: str = Field(description="the model and channel whose tokenizer counted")
    tokens: int
    source: Literal["tokenizer", "estimate"] = Field(
        description="estimate: the tokenizer failed (`fallback_reason`); characters / 4"
    )
    cached: bool
    fallback_reason: str | None = None
    context_window: int | None = None


class TokensCountRequest(BaseModel):
    """GigaChat's `/tokens/count` body."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200, json_schema_extra=MODEL_ID_SCHEMA)
    input: Text | list[Text] = Field(description=f"a text or up to {MAX_TEXTS} texts")


class TokensOut(BaseModel):
    object: Literal["tokens"] = "tokens"
    tokens: int
    characters: int


class TokensCountOut(RootModel[list[TokensOut]]):
    """One entry per input, in order (GigaChat's answer)."""


@endpoint(
    bp,
    "POST",
    "/tokenize",
    summary="Count tokens with the model's own tokenizer (cached)",
    description="`messages` (counted with the chat template, as a completion would send "
    "them) or `text`. When the tokenizer is unreachable the count is an estimate and says so.",
    tag="tokens",
    operation_id="tokenize",
    body=TokenizeRequest,
    response=TokenizeOut,
    errors=(403, 404, 410),
)
def tokenize(body: TokenizeRequest):
    principal = authenticate()
    app = services()
    route = app.resolver.resolve(body.model)
    app.admission.require_allowed(principal.id, route.model, route.channel)
    counter = app.token_counter
    if body.messages is not None:
        messages = tuple(Message(m.role, m.content) for m in body.messages)
        count = counter.messages(route, messages)
    else:
        count = counter.text(route, body.text or "")
    return {
        "object": "tokenize",
        "model": route.model_id,
        "tokens": count.tokens,
        "source": count.source,
        "cached": count.cached,
        "fallback_reason": count.fallback_reason,
        "context_window": route.context_window,
    }


@endpoint(
    bp,
    "POST",
    "/tokens/count",
    summary="Count tokens of texts, in GigaChat's shape (for the gigachat SDK)",
    tag="tokens",
    operation_id="countTokens",
    body=TokensCountRequest,
    response=TokensCountOut,
    errors=(403, 404, 410),
)
def tokens_count(body: TokensCountRequest):
    principal = authenticate()
    app = services()
    texts = [body.input] if isinstance(body.input, str) else body.input
    if len(texts) > MAX_TEXTS:
        raise ApiError(
            400, "invalid_request", f"`input` holds {len(texts)} texts; at most {MAX_TEXTS}."
        )
    route = app.resolver.resolve(body.model)
    app.admission.require_allowed(principal.id, route.model, route.channel)
    counts = [app.token_counter.text(route, text) for text in texts]
    return [
        {"object": "tokens", "tokens": c.tokens, "characters": len(text)}
        for c, text in zip(counts, texts, strict=True)
    ]
