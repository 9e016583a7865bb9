"""API keys: created with a random secret that is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ApiKey, utcnow

KEY_PREFIX = "llmgw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(
    session: Session, name: str, *, is_admin: bool = False, **settings: Any
) -> tuple[ApiKey, str]:
    """A new key row and the plaintext key; the caller commits and shows the key once.
    `settings`: the `KEY_SETTINGS` (expires_at, allowed_models, limits as dicts)."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=secrets.token_hex(8), name=name, key_hash=hash_key(plaintext), is_admin=is_admin
    )
    session.add(key)
    update_api_key(session, key, **settings)
    return key, plaintext


KEY_SETTINGS = ("name", "is_admin", "expires_at", "allowed_models", "limits")


def update_api_key(session: Session, key: ApiKey, **changes: Any) -> ApiKey:
    """Set the given `KEY_SETTINGS` (others are refused); the caller commits."""
    unknown = set(changes) - set(KEY_SETTINGS)
    if unknown:
        raise ValueError(f"not a key setting: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(key, name, value)
    return key


def find_active_policy(session: Session, plaintext: str) -> Any:
    """The unrevoked key's `id, is_admin, expires_at, allowed_models, limits` (a Core row,
    no ORM object), or None: what authentication needs, in one read."""
    return session.execute(
        select(
            ApiKey.id, ApiKey.is_admin, ApiKey.expires_at, ApiKey.allowed_models, ApiKey.limits
        ).where(ApiKey.key_hash == hash_key(plaintext), ApiKey.revoked_at.is_(None))
    ).one_or_none()


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_api_key(session: Session, key_id: str) -> ApiKey | None:
    """Revoke at once (the next request with it is a 401); None if there is no such key."""
    key = session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
