"""Reading a request body within a size limit (shared by the record, event and log routes)."""

from __future__ import annotations

from starlette.requests import Request

from kitaru import _wire
from kitaru.server._errors import ApiError

__all__ = ["read_body"]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, _wire.ERROR_TOO_LARGE, f"request body of {declared} bytes is over {limit}"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _wire.ERROR_TOO_LARGE, f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
