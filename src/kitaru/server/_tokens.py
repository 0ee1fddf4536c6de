"""Short-lived, read-only stream tokens for browsers (``POST /api/v1/stream-tokens``).

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the stream also takes
``?token=``; and a token in a URL ends up in access logs and browser history. So the web view
never puts the API token there: it trades the API token for a read-only token that expires in
minutes and opens ``GET`` routes only, and puts that one in the stream's URL.

Format: ``kitaru-read.v1.<expiry, unix seconds>.<16 hex nonce>.<signature>``, the signature
being an unpadded base64url HMAC-SHA256 of everything before it. The key is derived from the
server's API token, so the server keeps no extra secret, tokens survive a restart with the same
API token (a reconnecting page keeps working), and changing the API token revokes them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable

__all__ = ["DEFAULT_TTL", "MAX_TTL", "TOKEN_PREFIX", "StreamTokens"]

TOKEN_PREFIX = "kitaru-read.v1"
"""Every read-only token starts with this (and a dot)."""

DEFAULT_TTL = 15 * 60.0
"""Seconds a read-only token is valid when the request names no ``ttl``."""

MAX_TTL = 12 * 3600.0
"""The longest validity a request may ask for, in seconds."""

_KEY_LABEL = b"kitaru stream token key v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class StreamTokens:
    """Issues and checks read-only tokens for one server.

    Args:
        api_token: The server's API token (``None``: the server has no auth, and issues none).
        clock: Seconds since the epoch (tests pass a fake clock).
    """

    def __init__(self, api_token: str | None, *, clock: Callable[[], float] = time.time) -> None:
        self._key = (
            hmac.new(api_token.encode(), _KEY_LABEL, hashlib.sha256).digest() if api_token else None
        )
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """True when the server requires a token (so read-only tokens mean something)."""
        return self._key is not None

    def _sign(self, body: str) -> str:
        assert self._key is not None
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, ttl: float = DEFAULT_TTL) -> tuple[str, int]:
        """A new read-only token valid for ``ttl`` seconds, and its expiry (unix seconds).

        Raises:
            RuntimeError: The server has no API token to derive the signing key from.
        """
        if self._key is None:
            raise RuntimeError("read-only tokens need a server API token")
        expires = math.ceil(self._clock() + ttl)
        body = f"{TOKEN_PREFIX}.{expires}.{os.urandom(8).hex()}"
        return f"{body}.{self._sign(body)}", expires

    @staticmethod
    def looks_like(token: str) -> bool:
        """True when ``token`` has the read-only token prefix (valid or not)."""
        return token.startswith(TOKEN_PREFIX + ".")

    def verify(self, token: str) -> bool:
        """True when ``token`` was issued by this server's key and has not expired."""
        if self._key is None or not self.looks_like(token):
            return False
        body, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return False
        expires = body[len(TOKEN_PREFIX) + 1 :].partition(".")[0]
        return expires.isdigit() and int(expires) > self._clock()
