"""The web view's routes: ``/ui/`` and its files, and ``/`` redirecting there.

Open without a token (the files hold no data; see :mod:`kitaru.server._web`) and left out of
the OpenAPI document. The files come from :class:`kitaru.server._web.WebAssets` through
:mod:`kitaru.server._deps`.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from kitaru import _wire
from kitaru.server._deps import PartsDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
"""The page and its files."""


@router.get("/")
async def root() -> Response:
    return RedirectResponse(_wire.PATH_UI, status_code=307)


@router.get(_wire.PATH_UI.rstrip("/"))
async def ui_bare() -> Response:
    return RedirectResponse(_wire.PATH_UI, status_code=307)


@router.get(_wire.PATH_UI)
async def ui_index(parts: PartsDep) -> Response:
    return parts.assets.page()


@router.get(_wire.PATH_UI + "executions/{exec_id}")
async def ui_execution(exec_id: str, parts: PartsDep) -> Response:
    return parts.assets.page()


@router.get(_wire.PATH_UI + "{name}")
async def ui_asset(name: str, parts: PartsDep) -> Response:
    return parts.assets.file(name)
