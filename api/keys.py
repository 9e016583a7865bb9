"""`/v1/admin/keys`: create, list, show, change and revoke client API keys (admin keys only).

A key's settings beside its name: `admin`, `allowed_models` (`<model>` or `<model>:<channel>`;
absent or null: every model), `expires_at` and `limits` (`storage.limits.Limit` objects;
docs/limits.md)."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, current_app
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.contract import endpoint
from api.errors import ApiError
from api.schemas import MODEL_ID_SCHEMA, IsoDatetime, ListOf, UtcDatetime, naive_utc
from storage.apikeys import create_api_key, list_api_keys, revoke_api_key, update_api_key
from storage.limits import Limit
from storage.models import ApiKey

bp = Blueprint("keys", __name__, url_prefix="/v1/admin/keys")


ModelScope = Annotated[str, Field(max_length=200, pattern=str(MODEL_ID_SCHEMA["pattern"]))]
Expiry = Annotated[IsoDatetime, AfterValidator(naive_utc)]


class KeySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["billing-service"])
    # Strict: `"yes"` or `1` must not make an admin key.
    admin: bool = Field(default=False, strict=True)
    allowed_models: list[ModelScope] | None = Field(
        default=None, max_length=100, description="null: every model", examples=[["yandexgpt"]]
    )
    expires_at: Expiry | None = Field(default=None, description="RFC 3339; null: never")
    limits: list[Limit] = Field(default_factory=list, max_length=50)

    def stored(self, fields: set[str]) -> dict[str, Any]:
        """The row's attributes for the fields the client sent."""
        names = {"admin": "is_admin"}
        values = {names.get(f, f): getattr(self, f) for f in fields}
        values = {k: v for k, v in values.items() if v is not None or k not in ("name", "is_admin")}
        if "limits" in values:
            values["limits"] = [lim.model_dump(exclude_none=True) for lim in self.limits]
        return values


class KeyCreate(KeySettings):
    pass


class KeyUpdate(KeySettings):
    """Only the fields sent change; `null` clears `allowed_models` or `expires_at`."""

    name: str | None = Field(default=None, min_length=1, max_length=100)  # type: ignore[assignment]
    admin: bool | None = Field(default=None, strict=True)  # type: ignore[assignment]


class KeyOut(BaseModel):
    id: str
    name: str
    admin: bool
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    allowed_models: list[str] | None = None
    limits: list[Limit] = Field(default_factory=list)


class KeyCreated(KeyOut):
    key: str = Field(description="the secret, shown this once; only its SHA-256 is stored")


class KeyList(ListOf):
    data: list[KeyOut]


def key_view(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        admin=key.is_admin,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        expires_at=key.expires_at,
        allowed_models=key.allowed_models,
        limits=[Limit.model_validate(x) for x in key.limits or ()],
    )


@endpoint(
    bp,
    "POST",
    "",
    summary="Admin: create an API key (its secret is shown once)",
    tag="keys",
    operation_id="adminCreateKey",
    body=KeyCreate,
    response=KeyCreated,
    status=201,
    auth="admin",
)
def create_key(body: KeyCreate):
    with current_app.extensions["llmgw"].sessions() as session:
        settings = body.stored(body.model_fields_set - {"name", "admin"})
        key, plaintext = create_api_key(session, body.name, is_admin=body.admin, **settings)
        session.commit()
        created = KeyCreated(**key_view(key).model_dump(), key=plaintext)
    return created, 201


@endpoint(
    bp,
    "GET",
    "",
    summary="Admin: API keys (never their secrets)",
    tag="keys",
    operation_id="adminListKeys",
    response=KeyList,
    auth="admin",
)
def list_keys():
    with current_app.extensions["llmgw"].sessions() as session:
        return KeyList(data=[key_view(k) for k in list_api_keys(session)])


@endpoint(
    bp,
    "DELETE",
    "/<key_id>",
    summary="Admin: revoke an API key at once",
    tag="keys",
    operation_id="adminRevokeKey",
    response=KeyOut,
    auth="admin",
    errors=(404,),
)
def revoke_key(key_id: str):
    with current_app.extensions["llmgw"].sessions() as session:
        key = revoke_api_key(session, key_id)
        if key is None:
            raise ApiError(404, "key_not_found", f"No API key with id {key_id!r}.")
        session.commit()
        return key_view(key)


def find_key(session: Any, key_id: str) -> ApiKey:
    """The key, unless it does not exist or was revoked (revoked keys are listed only)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise ApiError(404, "key_not_found", f"No active API key with id {key_id!r}.")
    return key


@endpoint(
    bp,
    "GET",
    "/<key_id>",
    summary="Admin: one API key, its scopes and limits",
    tag="keys",
    operation_id="adminGetKey",
    response=KeyOut,
    auth="admin",
    errors=(404,),
)
def get_key(key_id: str):
    with current_app.extensions["llmgw"].sessions() as session:
        return key_view(find_key(session, key_id))


@endpoint(
    bp,
    "PATCH",
    "/<key_id>",
    summary="Admin: change a key's name, admin flag, allowed models, expiry or limits",
    tag="keys",
    operation_id="adminUpdateKey",
    body=KeyUpdate,
    response=KeyOut,
    auth="admin",
    errors=(404,),
)
def update_key(key_id: str, body: KeyUpdate):
    with current_app.extensions["llmgw"].sessions() as session:
        key = update_api_key(
            session, find_key(session, key_id), **body.stored(body.model_fields_set)
        )
        session.commit()
        return key_view(key)
