"""Short-lived, read-only stream tokens for browsers (``POST /api/v1/stream-tokens``).

A browser's ``EventSource`` cannot send an ``Authorization`` header, so the stream also takes
``?token=``; and a token in a URL ends up in access logs and browser history. So the web view
never puts the API token there: it trades the API token for a read-only token that expires in
minutes and opens ``GET`` routes only, and puts that one in the stream's URL.

Format: ``kitaru-read.v1.<expiry, unix seconds>.<16 hex nonce>[.<scope>].<signature>``, the
signature being an unpadded base64url HMAC-SHA256 of everything before it. The optional scope
(``x`` and the unpadded base64url of an execution ID) limits the token to that one execution's
routes, so a link to one run can be shared without opening the others. The key is derived from the
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
from dataclasses import dataclass

__all__ = ["DEFAULT_TTL", "MAX_TTL", "TOKEN_PREFIX", "Grant", "StreamTokens"]

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

    def issue(self, ttl: float = DEFAULT_TTL, exec_id: str | None = None) -> tuple[str, int]:
        """A new read-only token valid for ``ttl`` seconds, and its expiry (unix seconds).

        Args:
            ttl: Seconds of validity.
            exec_id: Scope the token to this one execution (``None``: every execution).

        Raises:
            RuntimeError: The server has no API token to derive the signing key from.
        """
        if self._key is None:
            raise RuntimeError("read-only tokens need a server API token")
        expires = math.ceil(self._clock() + ttl)
        body = f"{TOKEN_PREFIX}.{expires}.{os.urandom(8).hex()}"
        if exec_id is not None:
            body += ".x" + _b64(exec_id.encode())
        return f"{body}.{self._sign(body)}", expires

    @staticmethod
    def looks_like(token: str) -> bool:
        """True when ``token`` has the read-only token prefix (valid or not)."""
        return token.startswith(TOKEN_PREFIX + ".")

    def verify(self, token: str) -> bool:
        """True when ``token`` was issued by this server's key and has not expired."""
        return self.grant(token) is not None

    def grant(self, token: str) -> Grant | None:
        """What a valid, unexpired ``token`` opens; ``None`` when it is not one."""
        if self._key is None or not self.looks_like(token):
            return None
        body, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        fields = body[len(TOKEN_PREFIX) + 1 :].split(".")
        expires = fields[0]
        if not expires.isdigit() or int(expires) <= self._clock():
            return None
        if len(fields) == 2:
            return Grant(None)
        if len(fields) == 3 and fields[2].startswith("x"):
            raw = fields[2][1:]
            try:
                return Grant(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
            except ValueError:
                return None
        return None


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid read-only token opens.

    Attributes:
        exec_id: The one execution it is scoped to, or ``None`` for every execution.
    """

    exec_id: str | None

    def allows(self, exec_id: str | None) -> bool:
        """True when a route about ``exec_id`` (``None``: not about one execution) is open."""
        return self.exec_id is None or self.exec_id == exec_id
