"""API-key authentication. Keys are compared and stored as SHA-256 digests only."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app, g, request
from sqlalchemy import select

from api.errors import ApiError
from storage.models import ApiKey


@dataclass(frozen=True)
class Principal:
    id: str
    is_admin: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "missing_api_key", "Send your API key as 'Authorization: Bearer <key>'."
        )
    return token.strip()


def authenticate() -> Principal:
    """Resolve the caller from the request, once per request."""
    if "principal" in g:
        return g.principal
    runtime = current_app.extensions["llmgw"]
    digest = hash_key(_bearer_token())
    master = runtime.settings.master_key
    if master is not None and hmac.compare_digest(digest, hash_key(master.get_secret_value())):
        g.principal = Principal(id="master", is_admin=True)
        return g.principal
    with runtime.sessions() as session:
        key = session.scalar(
            select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        )
    if key is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid.")
    g.principal = Principal(id=key.id, is_admin=key.is_admin)
    return g.principal
