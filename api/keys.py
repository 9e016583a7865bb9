"""`/v1/admin/keys`: create, list and revoke client API keys (admin keys only)."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from api.contract import endpoint
from api.errors import ApiError
from api.schemas import ListOf, UtcDatetime
from storage.apikeys import create_api_key, list_api_keys, revoke_api_key
from storage.models import ApiKey

bp = Blueprint("keys", __name__, url_prefix="/v1/admin/keys")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100, examples=["billing-service"])
    admin: bool = False


class KeyOut(BaseModel):
    id: str
    name: str
    admin: bool
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None


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
        key, plaintext = create_api_key(session, body.name, is_admin=body.admin)
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
