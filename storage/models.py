"""SQLAlchemy models: the version catalogue, API keys, jobs and their attempts, batches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON}


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id"))
    family: Mapped[str] = mapped_column(String(100))
    context_window: Mapped[int]
    # currency, prompt_per_1k, completion_per_1k; None = not priced (routing.snapshot.Pricing)
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.priority"
    )


class ModelVersion(Base):
    """One channel of a model: what `<model>:<channel>` resolves to upstream."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    channel: Mapped[str] = mapped_column(String(32))
    upstream_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default="active")
    priority: Mapped[int] = mapped_column(default=100)
    released_at: Mapped[datetime | None]
    deprecated_at: Mapped[datetime | None]
    sunset_at: Mapped[datetime | None]
    # What this version can serve (routing.capabilities); None = the defaults, chat and stream.
    capabilities: Mapped[list[str] | None] = mapped_column(JSON)
    model: Mapped[Model] = relationship(back_populates="versions")


class ApiKey(Base):
    """A client key; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # After this moment the key is refused with 401 `api_key_expired`; None: never.
    expires_at: Mapped[datetime | None]
    # `<model>` or `<model>:<channel>` ids this key may request; None: every model.
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    # `storage.limits.Limit` objects (as dicts); None or []: no limits of its own.
    limits: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
        # The job listing: a key's jobs newest first (revision 0006).
        Index("ix_jobs_owner_created_at", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    # `jobs.status.JobStatus`; written only by `jobs.lifecycle`.
    status: Mapped[str] = mapped_column(String(16))
    # "interactive" or "batch": the message priority on the job's queue.
    priority: Mapped[str] = mapped_column(String(16), server_default="interactive")
    model_requested: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    upstream_id: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100))
    request: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # A job failed rate-limited: the seconds the provider asked to wait (its Retry-After), which
    # the API passes on to the client (revision 0008); None otherwise or when it gave none.
    error_retry_after: Mapped[int | None]
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    total_tokens: Mapped[int | None]
    attempt_count: Mapped[int] = mapped_column(default=0)
    # Every switch to another candidate: [{"from", "to", "reason", "at"}].
    fallbacks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Set when the retention sweep erased the prompt and the result.
    result_expired_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="job", order_by="Attempt.number", cascade="all, delete-orphan"
    )
    # Its completion callback, when the client asked for one (`jobs.callbacks`).
    callback: Mapped[CallbackDelivery | None] = relationship(viewonly=True)


class Attempt(Base):
    """One provider call made for a job."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int]
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    upstream_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    error_reason: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float]
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    model_version: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    job: Mapped[Job] = relationship(back_populates="attempts")


# --- Catalogue operations (issue 4): aliases, per-model policy, known versions, audit, feedback.


class ModelAlias(Base):
    """Another name for a model (`yandexgpt-pro` → `yandexgpt`); stored lower-cased."""

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))


class ModelPolicy(Base):
    """Per-model lifecycle policy: what happens after sunset, successor, cross-provider peers."""

    __tablename__ = "model_policies"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    # "redirect" (serve the successor and say so) or "reject" (410 model_sunset).
    sunset_policy: Mapped[str] = mapped_column(String(16), default="redirect")
    # A model id (`yandexgpt:latest`); None means the same model's `latest`.
    successor: Mapped[str | None] = mapped_column(String(200))
    # Days between a promote and the old latest's sunset; None means the settings default.
    deprecation_days: Mapped[int | None]
    # Model names on other providers that may stand in when the policy allows it.
    equivalents: Mapped[list[str]] = mapped_column(JSON, default=list)


class ModelRelease(Base):
    """A concrete version the catalogue knows, and the channel serving it now (None: none)."""

    __tablename__ = "model_releases"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    upstream_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    released_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)


class CatalogueEvent(Base):
    """The audit log of catalogue operations: who, when, what, state before and after."""

    __tablename__ = "catalogue_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(100), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any]]
    after: Mapped[dict[str, Any]]


class JobFeedback(Base):
    """A client's score of a job's answer (one per job; a new one replaces it)."""

    __tablename__ = "job_feedback"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyRoutingPolicy(Base):
    """A key's say on fallbacks: cross_provider True/False overrides the request; no row (or
    None) lets each request decide. `key_id` is an `api_keys.id` or `master` (no foreign key)."""

    __tablename__ = "key_routing_policies"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cross_provider: Mapped[bool | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GatewayLimit(Base):
    """A limit on one model (`yandexgpt`) or version (`yandexgpt:rc`) for all keys together;
    `limit` is a `storage.limits.Limit` without its `model` (the primary key says it)."""

    __tablename__ = "gateway_limits"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Batch(Base):
    """A batch of completion requests (OpenAI's Batch API shape) fed as jobs by the feeder.

    `status` is written only by `jobs.batches`; the counts are kept by the job-end hook and
    recounted from the job rows by the feeder's reconciliation."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_owner_created_at", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    completion_window: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(default=0)
    completed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Lines of the file refused under `on_invalid: skip`: [{"line", "custom_id", "problem"}].
    invalid_lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    batch_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_progress_at: Mapped[datetime | None]
    finalizing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    expired_at: Mapped[datetime | None]
    cancelling_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    callback: Mapped[CallbackDelivery | None] = relationship(viewonly=True)


class BatchLine(Base):
    """One request of a batch; `job_id` once the feeder submitted it, `outcome` once it ended
    (the terminal job status, or `failed` when it could not be submitted: `error_*`)."""

    __tablename__ = "batch_lines"
    __table_args__ = (Index("ix_batch_lines_batch_id_job_id", "batch_id", "job_id"),)

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(primary_key=True)
    custom_id: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]]
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)


class CallbackDelivery(Base):
    """The completion callback of one job or one batch (exactly one of `job_id`, `batch_id`),
    written with its subject and delivered once the subject has ended (`jobs.callbacks`).

    `status`: `pending` (waiting for the end, or for `next_attempt_at`), `delivered`, or
    `failed` (the retry window ran out). A claim is one conditional UPDATE on `attempts`."""

    __tablename__ = "callback_deliveries"
    __table_args__ = (Index("ix_callback_deliveries_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallbackSecret(Base):
    """A key's callback-signing secret generation. The secret itself is never stored: it is
    derived from the gateway's signing secret, the key id and this version (`jobs.signing`).
    No row: version 0. `key_id` is an `api_keys.id` or `master` (no foreign key)."""

    __tablename__ = "callback_secrets"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    rotated_at: Mapped[datetime] = mapped_column(default=utcnow)
