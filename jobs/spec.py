"""What a job is asked to do: the request a client sends, and the spec a job row keeps.

`JobRequest` is the body of `POST /v1/jobs` (strict: unknown fields are refused).
`JobSpec` is what `jobs.request` holds once the job is written: the same parameters plus
what submission decided — the fallback plan (typed by `routing.plan`'s own candidates, so a
worker reads back routes, not dicts), the warnings and deprecation headers of the route, and
the stream flag. Priority is a column of its own (`jobs.priority`), not part of the spec.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

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


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=1_000_000)


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
