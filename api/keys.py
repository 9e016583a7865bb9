"""`/v1/admin/keys`: create, list and revoke client API keys (admin keys only)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_admin
from api.errors import ApiError
from api.jobs import json_body
from storage.apikeys import create_api_key, list_api_keys, revoke_api_key
from storage.models import ApiKey

bp = Blueprint("keys", __name__, url_prefix="/v1/admin/keys")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["billing-service"])
    admin: bool = False


class KeyOut(BaseModel):
    id: str
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the secret, shown this once; only its SHA-256 is stored")


def key_view(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        admin=key.is_admin,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@bp.post("")
def create_key():
    require_admin()
    body = KeyCreate.model_validate(json_body())
    with current_app.extensions["llmgw"].sessions() as session:
        key, plaintext = create_api_key(session, body.name, is_admin=body.admin)
        session.commit()
        created = KeyCreated(**key_view(key).model_dump(), key=plaintext)
    return created.model_dump(mode="json"), 201


@bp.get("")
def list_keys():
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        keys = [key_view(k).model_dump(mode="json") for k in list_api_keys(session)]
    return {"object": "list", "data": keys}


@bp.delete("/<key_id>")
def revoke_key(key_id: str):
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        key = revoke_api_key(session, key_id)
        if key is None:
            raise ApiError(404, "key_not_found", f"No API key with id {key_id!r}.")
        session.commit()
        return key_view(key).model_dump(mode="json")
