"""Signing callbacks: each key's secret, and the signature a receiver verifies.

Decisions:
- Nothing secret is stored in the database. A key's callback secret is derived:
  `whsec_` + hex(HMAC-SHA256(LLMGW_CALLBACK_SIGNING_SECRET, "llmgw-callback:<key id>:<version>")),
  where `version` is the key's rotation counter (`callback_secrets`, 0 without a row). The
  key owner reads it from `GET /v1/callbacks/secret` and rotates it with
  `POST /v1/callbacks/secret/rotate` (the version goes up by one; the old secret stops
  signing at once). Rotating the gateway's own secret changes every key's secret.
- The signature covers the timestamp and the raw body, `<timestamp>.<body>` (as Stripe and
  Standard Webhooks do), so a captured delivery cannot be replayed later with a fresh
  timestamp; receivers reject timestamps older than a few minutes.
  Headers: `X-Llmgw-Signature: sha256=<hex>`, `X-Llmgw-Timestamp: <unix seconds>`,
  `X-Llmgw-Delivery: <delivery id>` (the same on every retry: deduplicate on it),
  `X-Llmgw-Secret-Version: <version>`.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Llmgw-Signature"
TIMESTAMP_HEADER = "X-Llmgw-Timestamp"
DELIVERY_HEADER = "X-Llmgw-Delivery"
VERSION_HEADER = "X-Llmgw-Secret-Version"
EVENT_HEADER = "X-Llmgw-Event"
SECRET_PREFIX = "whsec_"


def key_secret(master: bytes, key_id: str, version: int) -> str:
    """The callback secret of one key at one rotation version."""
    message = f"llmgw-callback:{key_id}:{version}".encode()
    return SECRET_PREFIX + hmac.new(master, message, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Llmgw-Signature` value: `sha256=<hex HMAC of "<timestamp>.<body>">`."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does (docs/api.md has the same in a snippet): constant-time compare."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
