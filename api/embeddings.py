"""`POST /v1/embeddings`: OpenAI-compatible text embeddings, answered synchronously.

The call does not go through the queue (see `jobs.embeddings` for why and what it shares
with a job: planning, admission, the breaker, metrics, usage). GigaChat's own SDK posts the
same shape (`{"model", "input"}`) to `<base_url>/embeddings` and reads the same answer, so
`gigachat.GigaChat(base_url=<llmgw>/v1).embeddings(...)` works against this endpoint too.
"""

from __future__ import annotations

import base64
import struct
from typing import Annotated, Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.chat import FAILURE_STATUS  # a failure reason → the status OpenAI clients expect
from api.context import services
from api.contract import DEPRECATION_HEADERS, RATE_LIMIT_HEADERS, Header, endpoint
from api.errors import ApiError, error_response
from api.schemas import MODEL_ID_SCHEMA
from jobs.embeddings import MAX_INPUTS, EmbeddingFailed

bp = Blueprint("embeddings", __name__, url_prefix="/v1")

Text = Annotated[str, Field(min_length=1, max_length=100_000)]


class EmbeddingRequest(BaseModel):
    """OpenAI's request. `input` is a text or a list of texts (token arrays are refused);
    `dimensions` is refused: neither provider can shorten its vectors."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200, json_schema_extra=MODEL_ID_SCHEMA)
    input: Text | list[Text] | list[int] | list[list[int]] = Field(
        description=f"a text, or up to {MAX_INPUTS} texts"
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: each vector as little-endian float32, base64-coded"
    )
    dimensions: int | None = Field(
        default=None, gt=0, description="not supported by YandexGPT or GigaChat: a 400"
    )
    user: str | None = Field(default=None, max_length=256)

    def texts(self) -> tuple[str, ...]:
        given = [self.input] if isinstance(self.input, str) else list(self.input)
        if not given:
            raise ApiError(400, "invalid_request", "`input` must hold at least one text.")
        if not all(isinstance(text, str) for text in given):
            raise ApiError(
                400,
                "unsupported_parameter",
                "`input` as token ids is not supported: send the texts.",
                param="input",
            )
        if len(given) > MAX_INPUTS:
            raise ApiError(
                400,
                "invalid_request",
                f"`input` holds {len(given)} texts; at most {MAX_INPUTS} a request.",
                param="input",
            )
        return tuple(str(text) for text in given)


class ItemUsage(BaseModel):
    prompt_tokens: int


class EmbeddingOut(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str
    usage: ItemUsage | None = Field(
        default=None, description="this input's tokens (GigaChat's shape; OpenAI has none)"
    )


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingOut]
    model: str
    usage: EmbeddingUsage


EMBEDDING_HEADERS = (
    Header("x-llmgw-job-id", "The call's record (`GET /v1/jobs/<id>`)", required=True),
    Header("x-llmgw-provider", "The provider that served it", required=True),
    Header("x-llmgw-model", "The model and channel that served it", required=True),
    Header("x-llmgw-model-version", "The provider's version of the model, when it says"),
    Header("x-llmgw-attempts", "Provider calls made"),
)


@endpoint(
    bp,
    "POST",
    "/embeddings",
    summary="OpenAI-compatible text embeddings (synchronous)",
    description="Vectors of one or more texts by an embedding model of the catalogue "
    "(`text-search-doc`, `text-search-query`, `Embeddings`, …). A chat model, `dimensions` "
    "or token-id input is a 400.",
    tag="embeddings",
    operation_id="createEmbedding",
    body=EmbeddingRequest,
    response=EmbeddingList,
    response_headers=(*EMBEDDING_HEADERS, *DEPRECATION_HEADERS, *RATE_LIMIT_HEADERS),
    errors=(403, 404, 410, 429, 502, 503, 504),
)
def create_embeddings(body: EmbeddingRequest):
    principal = authenticate()
    texts = body.texts()
    if body.dimensions is not None:
        raise ApiError(
            400,
            "unsupported_parameter",
            f"`dimensions` is not supported by {body.model}: YandexGPT and GigaChat return "
            "vectors of their model's fixed size.",
            param="dimensions",
            model=body.model,
        )
    try:
        done = services().embedder.embed(principal.id, body.model, texts)
    except EmbeddingFailed as exc:
        status = FAILURE_STATUS.get(exc.reason, 502)
        failed, _ = error_response(status, exc.reason, exc.message, **exc.details)
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else {}
        return failed, status, retry
    result = done.result
    data = [
        {
            "index": i,
            "embedding": encode(vector, body.encoding_format),
            "usage": {"prompt_tokens": result.tokens[i] if i < len(result.tokens) else 0},
        }
        for i, vector in enumerate(result.vectors)
    ]
    headers = {
        "x-llmgw-job-id": done.job_id,
        "x-llmgw-provider": done.route.provider,
        "x-llmgw-model": done.route.model_id,
        "x-llmgw-attempts": str(done.calls),
        **done.deprecation_headers,
    }
    if done.result.model_version:
        headers["x-llmgw-model-version"] = done.result.model_version
    tokens = done.result.prompt_tokens
    body_out = {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return body_out, 200, headers


def encode(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    """OpenAI's encodings: a list of numbers, or little-endian float32 bytes in base64."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)
