"""OAuth client-credentials for mParticle: the credentials, and one shared token cache per process.

mParticle's token endpoint takes 1-3 s and its tokens live 8 h, so a token is fetched once per
(token URL, client id, audience) and shared by every thread and every client with those credentials.
Each cache slot has its own lock: concurrent first callers wait for the one fetch instead of each
making their own. A token is refreshed ``leeway`` seconds before ``expires_in`` runs out (the leeway
shrinks to half the lifetime for very short-lived tokens), and dropped when the API answers 401.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pydantic
from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr, field_validator

from wsync_dagster.mparticle.errors import (
    AuthenticationError,
    WarehouseSyncError,
    server_messages,
)
from wsync_dagster.mparticle.transport import HttpTransport, read_json

DEFAULT_TOKEN_URL = "https://sso.auth.mparticle.com/oauth/token"
DEFAULT_AUDIENCE = "https://api.mparticle.com"
DEFAULT_LEEWAY = 60.0
"""Seconds before expiry at which a cached token is replaced."""


class ClientCredentials(BaseModel):
    """An mParticle API credential (Settings → API Credentials) and where to exchange it.

    The secret is a :class:`pydantic.SecretStr`: it never shows in ``repr``, ``str`` or dumps.

    Attributes:
        client_id: The credential's client id.
        client_secret: The credential's client secret.
        token_url: The OAuth token endpoint (mParticle's SSO by default; the emulator's locally).
        audience: The ``audience`` sent with the token request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    token_url: str = DEFAULT_TOKEN_URL
    audience: str = DEFAULT_AUDIENCE

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"token_url must be an http(s) URL, got {value!r}")
        return value

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """What a cached token is shared by: (token URL, client id, audience)."""
        return (self.token_url, self.client_id, self.audience)


class _TokenResponse(BaseModel):
    access_token: SecretStr
    expires_in: float = 28800.0
    token_type: str = "Bearer"


@dataclass
class _CachedToken:
    value: str = field(repr=False)
    refresh_at: float


@dataclass
class _TokenSlot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    token: _CachedToken | None = None


_SLOTS: dict[tuple[str, str, str], _TokenSlot] = {}
_SLOTS_LOCK = threading.Lock()


def _slot(key: tuple[str, str, str]) -> _TokenSlot:
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(key, _TokenSlot())


def clear_token_cache() -> None:
    """Forget every cached token in this process (for tests, or after rotating a credential)."""
    with _SLOTS_LOCK:
        _SLOTS.clear()


class TokenProvider:
    """Hands out bearer tokens for one set of credentials from the process-wide cache.

    Several providers (one per client) may serve the same credentials; they share the cached
    token. Expiry is measured on this provider's ``clock``, starting from when the token request
    was sent. Providers sharing a token should share a clock (in production both use
    :func:`time.monotonic`).

    A token request is one attempt; it is retried (connection errors, 429, 5xx) as part of the API
    call that needed the token, under that call's retry policy and budget, so there is only one
    retry loop and no thread holds the cache lock while backing off.

    Args:
        credentials: The credentials to exchange.
        transport: Sends the token request.
        clock: Monotonic clock in seconds.
        leeway: Seconds before expiry at which the token is replaced.
    """

    def __init__(
        self,
        credentials: ClientCredentials,
        transport: HttpTransport,
        *,
        clock: Callable[[], float],
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        self.credentials = credentials
        self._transport = transport
        self._clock = clock
        self._leeway = leeway
        self._count_lock = threading.Lock()
        self.token_requests = 0
        """Token requests this provider sent (retries included)."""

    def get_token(self) -> str:
        """A valid bearer token: the cached one, or a fresh one if none is cached or it is due.

        Returns:
            The access token.

        Raises:
            AuthenticationError: The token endpoint rejected the credentials or the request.
            WarehouseSyncError: The token endpoint could not be reached or failed (a transport,
                timeout, rate-limit or server error, retryable by the caller's policy).
        """
        slot = _slot(self.credentials.cache_key)
        with slot.lock:
            token = slot.token
            if token is None or self._clock() >= token.refresh_at:
                token = slot.token = self._fetch()
            return token.value

    def invalidate(self, token: str) -> None:
        """Drop ``token`` from the cache after the API rejected it.

        Only drops it if it is still the cached token, so that many threads seeing the same 401 lead
        to one new token, not one each.

        Args:
            token: The token the API answered 401 to.
        """
        slot = _slot(self.credentials.cache_key)
        with slot.lock:
            if slot.token is not None and slot.token.value == token:
                slot.token = None

    def _fetch(self) -> _CachedToken:
        credentials = self.credentials
        detail = f"token request for client id {credentials.client_id!r} at {credentials.token_url}"
        body: dict[str, JsonValue] = {
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.get_secret_value(),
            "audience": credentials.audience,
            "grant_type": "client_credentials",
        }
        sent_at = self._clock()
        with self._count_lock:
            self.token_requests += 1
        try:
            response = self._transport.send("POST", credentials.token_url, json=body)
        except WarehouseSyncError as error:
            error.add_note(detail)
            raise
        if 400 <= response.status_code < 500 and response.status_code != 429:
            # 401 access_denied (wrong id/secret), 400 invalid_request (audience, grant_type...)
            raise AuthenticationError(
                status=response.status_code,
                messages=server_messages(response.text),
                method="POST",
                path=credentials.token_url,
                detail=f"mParticle rejected the {detail}",
            )
        data = read_json(response, detail=detail)
        try:
            parsed = _TokenResponse.model_validate(data)
        except pydantic.ValidationError:
            raise AuthenticationError(
                status=response.status_code,
                messages=("the response has no usable access_token",),
                method="POST",
                path=credentials.token_url,
                detail=detail,
            ) from None
        lifetime = max(parsed.expires_in, 0.0)
        leeway = min(self._leeway, lifetime / 2)
        return _CachedToken(parsed.access_token.get_secret_value(), sent_at + lifetime - leeway)
