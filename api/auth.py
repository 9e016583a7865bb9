"""API-key authentication. Keys are compared and stored as SHA-256 digests only.

The key comes in the `Authorization` header under either scheme, case-insensitively:
`Bearer <key>` (OpenAI's SDK, the `gigachat` SDK's `access_token=`) or `Api-Key <key>`
(YandexGPT's scheme, which `yandex-cloud-ml-sdk` sends for a key passed as `auth=`). Both carry
the same llmgw key; nothing else (IAM tokens, OAuth) is understood.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import g, has_request_context, request

from api.context import services
from api.errors import ApiError
from jobs.admission import KeyPolicy, key_policy
from storage.apikeys import find_active_policy, hash_key
from storage.limits import Limit
from storage.models import utcnow

MASTER_ID = "master"
"""The id of the master key's principal (an admin with no `api_keys` row)."""


@dataclass(frozen=True)
class Principal:
    id: str
    is_admin: bool
    limits: tuple[Limit, ...] = ()
    allowed_models: tuple[str, ...] | None = None  # None: every model

    @property
    def policy(self) -> KeyPolicy:
        return KeyPolicy(self.allowed_models, self.limits)


KEY_SCHEMES = ("bearer", "api-key")


def presented_key() -> str:
    """The key of `Authorization: Bearer <key>` or `Authorization: Api-Key <key>`."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in KEY_SCHEMES or not token.strip():
        raise ApiError(
            401,
            "missing_api_key",
            "Send your API key as 'Authorization: Bearer <key>' or 'Authorization: Api-Key <key>'.",
        )
    return token.strip()


def authenticate() -> Principal:
    """Resolve the caller from the request, once per request. One read of the key's row,
    exact (a revoked or expired key is refused at once), which also gives admission the
    key's policy (`request_policy`): the request reads it once."""
    if "principal" in g:
        return g.principal
    app = services()
    token = presented_key()
    master = app.api_config.master_key
    if master is not None and hmac.compare_digest(
        hash_key(token), hash_key(master.get_secret_value())
    ):
        g.principal = Principal(id=MASTER_ID, is_admin=True)
        return g.principal
    with app.sessions() as session:
        key = find_active_policy(session, token)
    if key is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid.")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise ApiError(401, "api_key_expired", "The API key has expired.")
    policy = key_policy(key)
    g.principal = Principal(key.id, key.is_admin, policy.limits, policy.allowed_models)
    return g.principal


def request_policy(owner: str) -> KeyPolicy | None:
    """The policy of `owner` as this request's authentication read it; None outside a
    request or for another key (admission then reads it itself)."""
    if not has_request_context():
        return None
    principal = g.get("principal")
    return principal.policy if principal is not None and principal.id == owner else None


def require_admin() -> Principal:
    principal = authenticate()
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "This endpoint needs an admin API key.")
    return principal
