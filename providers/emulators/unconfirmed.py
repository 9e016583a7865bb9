"""Every emulator behaviour that docs/provider-apis.md marks *unconfirmed*, in one place.

Each value is our best guess at what the real service does. Change it here (or on the config
objects that copy it) when a primary source or a recording says otherwise.
"""

from __future__ import annotations

# --- YandexGPT ---------------------------------------------------------------------------

# Content-Type of the native REST stream (newline-delimited JSON objects).
YANDEX_STREAM_CONTENT_TYPE = "application/json"
# Status of an unknown or expired operation id (gRPC NOT_FOUND).
YANDEX_UNKNOWN_OPERATION_STATUS = 404
# Status of a model URI whose model or branch does not exist (the docs say 400).
YANDEX_UNKNOWN_MODEL_STATUS = 400
# Status of a model URI whose folder is not the credential's folder (docs: 400 or 403).
YANDEX_FOLDER_MISMATCH_STATUS = 403
# Retry-After (seconds) on a concurrency 429; None sends no header (none seen from Yandex).
YANDEX_CONCURRENCY_RETRY_AFTER: float | None = None
# Error bodies of the OpenAI-compatible surface are unknown: the emulator reuses the native
# grpc-gateway envelope there. A mid-stream error is a last line {"error": {...}} (the
# grpc-gateway convention), sent by the ``stream_error`` fault.

# --- GigaChat ----------------------------------------------------------------------------

# Whether `-preview` models answer on the production host (the emulator serves them).
GIGACHAT_PREVIEW_ON_MAIN_HOST = True
# Retry-After (seconds) on a concurrency 429; None sends no header.
GIGACHAT_CONCURRENCY_RETRY_AFTER: float | None = None
# A mid-stream error (``stream_error`` fault): a data event {"status", "message"} and no [DONE].
# Status and message for a prompt over the model's context window.
GIGACHAT_CONTEXT_STATUS = 422
GIGACHAT_CONTEXT_MESSAGE = "Invalid params: the number of tokens in the request ({got}) exceeds "
GIGACHAT_CONTEXT_MESSAGE += "the model context ({limit})"
# OAuth: a key asking for a scope it does not hold → 400 code 7 (a 3p table says 401).
GIGACHAT_SCOPE_MISMATCH_STATUS = 400
# Total tokens are prompt + completion: the docs' wording about subtracting cached tokens is
# not reflected by any example. The emulator never reports cached tokens (always 0).
