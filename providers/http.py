"""Shared HTTP plumbing for the provider adapters.

A pooled `requests.Session` without transport retries (the worker owns the one retry
loop), one `send` that always carries explicit (connect, read) timeouts and turns
transport failures into `providers.errors`, and the status-code classification that
both adapters start from.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis as redis_lib
import requests
from requests.adapters import HTTPAdapter

from providers.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    MalformedResponse,
    ModelNotFound,
    PaymentRequired,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    StreamInterrupted,
    UpstreamServerError,
)

Timeout = tuple[float, float]
log = logging.getLogger(__name__)


def make_session(pool_size: int) -> requests.Session:
    """A session whose connection pool fits `pool_size` concurrent calls; never retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: requests.Session, method: str, url: str, *, timeout: Timeout, **kwargs: Any
) -> requests.Response:
    """One HTTP exchange; transport failures become `ProviderTimeout`/`ProviderConnectionError`."""
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:  # before ConnectionError: ConnectTimeout is both
        raise ProviderTimeout(f"{method} {_path(url)} timed out: {type(exc).__name__}") from exc
    except requests.exceptions.SSLError as exc:
        message = f"{method} {_path(url)}: TLS failed (is the provider's CA bundle set?): {exc}"
        raise ProviderConnectionError(message) from exc
    except _CONFIGURATION_ERRORS as exc:  # a bad base URL in settings: retrying cannot help
        raise ProviderError(f"Misconfigured provider URL {url!r}: {exc}") from exc
    except requests.ConnectionError as exc:
        raise ProviderConnectionError(f"{method} {_path(url)} failed to connect: {exc}") from exc
    except requests.RequestException as exc:
        raise ProviderConnectionError(f"{method} {_path(url)} failed: {exc}") from exc


_CONFIGURATION_ERRORS = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
)


def stream_lines(response: requests.Response) -> Iterator[str]:
    """The lines of a streamed body (`send(..., stream=True)`) as they arrive, UTF-8 decoded.

    The read timeout applies to each read, so a stalled stream ends too. A connection that
    breaks or times out mid-body raises `StreamInterrupted`; the response is always closed.
    """
    try:
        with response:
            for line in response.iter_lines():
                yield line.decode("utf-8", errors="replace")
    except requests.RequestException as exc:  # ChunkedEncodingError, ReadTimeout → ConnectionError
        raise StreamInterrupted(f"The stream broke off: {type(exc).__name__}.") from exc


def json_body(response: requests.Response) -> Any:
    """The decoded JSON body, or `MalformedResponse` naming the status and a body prefix."""
    try:
        return response.json()
    except ValueError as exc:
        snippet = response.text[:120]
        raise MalformedResponse(
            f"Non-JSON body (HTTP {response.status_code}): {snippet!r}",
            status=response.status_code,
        ) from exc


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None if absent/bad."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_status(
    status: int, message: str, *, retry_after_s: float | None = None
) -> ProviderError:
    """The default classification of an HTTP error status; adapters refine 400/422 first."""
    if status == 429:
        return RateLimited(message, status=status, retry_after=retry_after_s)
    if status == 408:
        return ProviderTimeout(message, status=status)
    if status >= 500 and status != 501:
        return UpstreamServerError(message, status=status)
    mapped = _PERMANENT.get(status, BadRequest)
    return mapped(message, status=status)


_PERMANENT: dict[int, type[ProviderError]] = {
    401: AuthError,
    402: PaymentRequired,
    403: AuthError,
    404: ModelNotFound,
    413: ContextTooLong,
}


def redact(text: str, *secrets: str | None) -> str:
    """`text` (an upstream error message) with any of our own credentials masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _path(url: str) -> str:
    """The URL without scheme and host, for error messages (hosts may embed credentials)."""
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


# How long a failed token fetch is remembered, so that N waiting callers make one request.
FAILURE_HOLD_SECONDS = 1.0


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # Unix seconds


class TokenCache:
    """An access token shared by all threads, and through Redis by all processes.

    Readers take the cached token while it is fresh. A refresh happens under a lock (a
    `threading.Lock`, plus a Redis lock when `redis` is given), and whoever gets the lock
    re-reads first, so N concurrent callers cause exactly one `fetch`. A token is cached
    until `expires_at` minus a margin (at most a quarter of its remaining lifetime, so short
    test tokens are still reused).
    """

    def __init__(
        self,
        key: str,
        fetch: Callable[[], Token],
        *,
        redis: Any = None,
        margin: float = 60.0,
        lock_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self._fetch = fetch
        self._redis = redis
        self._margin = margin
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._mutex = threading.Lock()
        self._local: tuple[str, float] | None = None  # (token, refresh_at)
        self._failure: tuple[ProviderError, float] | None = None  # (error, when)

    def get(self) -> str:
        cached = self._read()
        return cached if cached is not None else self._refresh(stale=None)

    def refresh(self, stale: str) -> str:
        """A new token after `stale` was rejected, unless another caller already replaced it."""
        return self._refresh(stale=stale)

    def _refresh(self, stale: str | None) -> str:
        with self._mutex, self._distributed_lock():
            cached = self._read()
            if cached is not None and cached != stale:
                return cached
            self._raise_recent_failure()
            try:
                token = self._fetch()
            except ProviderError as exc:
                log.warning("%s: token fetch failed: %s", self.key, exc.reason)
                self._failure = (exc, self._clock())
                raise
            self._failure = None
            self._write(token)
            log.info("%s: new token, valid for %.0f s", self.key, token.expires_at - self._clock())
            return token.value

    def _raise_recent_failure(self) -> None:
        """Callers queued behind a failed fetch share its error instead of each retrying it."""
        if self._failure is not None:
            error, when = self._failure
            if self._clock() - when < FAILURE_HOLD_SECONDS:
                raise copy.copy(error)

    def _read(self) -> str | None:
        if self._redis is None:
            local = self._local
            return local[0] if local and self._clock() < local[1] else None
        value = self._redis_call(self._redis.get, self.key)
        return value.decode() if isinstance(value, bytes) else value

    def _write(self, token: Token) -> None:
        now = self._clock()
        refresh_at = token.expires_at - min(self._margin, (token.expires_at - now) / 4)
        if self._redis is None:
            self._local = (token.value, refresh_at)
        elif refresh_at > now:
            ttl_ms = max(1, int((refresh_at - now) * 1000))
            self._redis_call(self._redis.set, self.key, token.value, px=ttl_ms)

    @contextlib.contextmanager
    def _distributed_lock(self) -> Iterator[None]:
        if self._redis is None:
            yield
            return
        lock = self._redis.lock(
            f"{self.key}:lock", timeout=self._lock_timeout, blocking_timeout=self._lock_timeout
        )
        if not self._redis_call(lock.acquire):
            raise ProviderTimeout("Timed out waiting for another process to refresh the token.")
        try:
            yield
        finally:
            with contextlib.suppress(redis_lib.RedisError):
                lock.release()

    @staticmethod
    def _redis_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except redis_lib.RedisError as exc:
            raise ProviderConnectionError(f"Token cache unavailable: {exc}") from exc
