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
# Whether 429 answers carry Retry-After (never seen from Yandex).
YANDEX_SENDS_RETRY_AFTER = False
# Error bodies of the OpenAI-compatible surface: we reuse the native grpc-gateway envelope.
YANDEX_OPENAI_ERRORS_USE_NATIVE_ENVELOPE = True

# --- GigaChat ----------------------------------------------------------------------------

# Whether `-preview` models answer on the production host (the emulator serves them).
GIGACHAT_PREVIEW_ON_MAIN_HOST = True
# Whether 429 answers carry Retry-After.
GIGACHAT_SENDS_RETRY_AFTER = False
# Status and message for a prompt over the model's context window.
GIGACHAT_CONTEXT_STATUS = 422
GIGACHAT_CONTEXT_MESSAGE = "Invalid params: the number of tokens in the request ({got}) exceeds "
GIGACHAT_CONTEXT_MESSAGE += "the model context ({limit})"
# OAuth: a key asking for a scope it does not hold → 400 code 7 (a 3p table says 401).
GIGACHAT_SCOPE_MISMATCH_STATUS = 400
# Total tokens: prompt + completion (the docs' wording about subtracting cached tokens is
# not reflected by any example).
GIGACHAT_TOTAL_SUBTRACTS_CACHED = False
