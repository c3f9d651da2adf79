"""Bearer tokens: the client-credentials grant and the check every API call makes."""

import secrets
from datetime import timedelta
from typing import Any

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.errors import TokenError

AUDIENCE = "https://api.mparticle.com"
_TOKEN_PARAMETERS = ("client_id", "client_secret", "audience", "grant_type")


def _check_token_request(body: Any) -> None:
    if not isinstance(body, dict):
        raise TokenError(400, "invalid_request", "The request body must be a JSON object.")
    for name in _TOKEN_PARAMETERS:
        if not isinstance(body.get(name), str) or not body[name]:
            raise TokenError(400, "invalid_request", f"Missing required parameter: {name}")
    if body["grant_type"] != "client_credentials":
        raise TokenError(400, "invalid_request", f"Unsupported grant_type: {body['grant_type']}")
    if body["audience"] != AUDIENCE:
        raise TokenError(
            400,
            "invalid_request",
            f"Service not found: {body['audience']} (the audience must be {AUDIENCE})",
        )


class Auth:
    """Issues tokens to the configured client and recognises them until they expire."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def issue_token(self, body: Any) -> dict[str, Any]:
        """The client-credentials grant, as ``docs/warehouse-sync-api.md`` describes it."""
        _check_token_request(body)
        store, config = self._store, self._store.config
        with store.lock:
            if store.faults.token_failures > 0:
                store.faults.token_failures -= 1
                raise TokenError(500, "server_error", "Token endpoint failure (injected).")
            if (body["client_id"], body["client_secret"]) != (
                config.client_id,
                config.client_secret,
            ):
                raise TokenError(401, "access_denied", "Unauthorized")
            token = secrets.token_urlsafe(32)
            store.tokens[token] = store.clock.now() + timedelta(seconds=config.token_ttl)
        return {"access_token": token, "expires_in": config.token_ttl, "token_type": "Bearer"}

    def token_valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries an issued, unexpired bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._store.lock:
            expires = self._store.tokens.get(token.strip())
            return expires is not None and self._store.clock.now() < expires
