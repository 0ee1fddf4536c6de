"""The web view: its static files and its settings.

The read-only token exchange the page uses is ``POST /api/v1/stream-tokens``
(:mod:`kitaru.server._routes_meta`).

The view is plain static files (``kitaru/server/static/``: no build step, nothing from a CDN)
that talk to the documented API like any other client: ``/api/v1/executions`` for the list,
``.../snapshot`` to render an execution at once, and the SSE stream (with ``EventSource``) to
follow it. The files hold no data, so they are served without a token; every API call the page
makes needs one when the server has one (see "Web view" in ``docs/protocol.md``).

Every page is sent with a strict Content-Security-Policy (scripts and styles from this server
only, no inline script, no plugins, no framing) and ``Referrer-Policy: no-referrer``, so even a
rendering mistake could not run script from event text, and the trace link does not leak the
page's URL. The page itself only ever puts event text into the DOM as text.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from urllib.parse import quote

from starlette.responses import Response

from kitaru import _config, _wire
from kitaru.server._errors import ApiError

__all__ = ["WebAssets", "WebConfig", "is_trace_id"]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_INDEX = "index.html"


@dataclass(frozen=True)
class WebConfig:
    """What the web view shows beyond the API.

    Attributes:
        trace_url_template: A trace viewer URL with ``{trace_id}`` (``KITARU_TRACE_URL_TEMPLATE``
            on the server), or ``None`` for no trace links.
    """

    trace_url_template: str | None = None

    @classmethod
    def from_env(cls) -> WebConfig:
        """The configuration from the server's environment."""
        return cls(trace_url_template=_config.trace_url_template())

    def trace_url(self, trace_id: str | None) -> str | None:
        """The link to ``trace_id``, when a template is configured and the ID is valid.

        The trace ID may come from a producer's event, so only a W3C trace ID (32 lowercase
        hex digits, not all zero) is put into the link, and percent-encoded: anything else
        could steer the link to another path of the trace viewer's site.
        """
        template = self.trace_url_template
        if not template or not is_trace_id(trace_id):
            return None
        assert trace_id is not None
        # A plain replace, not str.format: a template may hold other braces.
        return template.replace("{trace_id}", quote(trace_id, safe=""))


_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def is_trace_id(value: object) -> bool:
    """True for a W3C trace ID: 32 lowercase hex digits, not all zero."""
    return isinstance(value, str) and _TRACE_ID.fullmatch(value) is not None and value != "0" * 32


@dataclass(frozen=True)
class WebAssets:
    """The web view's files, read once when the app is built.

    Attributes:
        index: The page (``index.html``), served for every page URL.
        files: What the page loads (JavaScript modules, styles, icon): name to body and media
            type.
    """

    index: bytes
    files: dict[str, tuple[bytes, str]]

    @classmethod
    def load(cls) -> WebAssets:
        """Read the files from the package.

        Raises:
            FileNotFoundError: A file the page needs is missing (a packaging error, which
                should fail loudly when the app is built, not when a browser asks).
        """
        folder = importlib.resources.files("kitaru.server").joinpath("static")
        files: dict[str, tuple[bytes, str]] = {}
        for item in folder.iterdir():
            media = _MEDIA_TYPES.get("." + item.name.rsplit(".", 1)[-1])
            if media is not None and item.is_file():
                files[item.name] = (item.read_bytes(), media)
        for required in ("app.js", "app.css"):
            if required not in files:
                raise FileNotFoundError(f"the web view's {required} is missing from the package")
        return cls(folder.joinpath(_INDEX).read_bytes(), files)

    def page(self) -> Response:
        """The page, with the strict headers."""
        return Response(self.index, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    def file(self, name: str) -> Response:
        """One file the page loads, or a 404 ``not_found`` error."""
        found = self.files.get(name)
        if found is None:
            raise ApiError(404, _wire.ERROR_NOT_FOUND, f"no web view file named {name!r}")
        body, media = found
        return Response(body, media_type=media, headers=_PAGE_HEADERS)
