"""One slash between path segments: `//reseller/getEnterprisesForReseller/3` (spec 001's own example URL) is
`/reseller/getEnterprisesForReseller/3`.

`SingleSlashes` is the outermost middleware, so everything that looks at the path (the body limit by route and the
Content-Type rule in `api/limits.py`, /metrics' access rule in `api/security_headers.py`, the routers, the console,
the family's error envelope, the access log) sees the path the route is matched on: a doubled slash can neither
miss a route nor get past a rule written for its single-slash form. The request is served where it is, not
redirected (a redirected POST loses its body with many clients).

An encoded slash (`%2F`) inside a path segment is refused by `EncodedSlashes`: the server decodes the path before
the routes see it, so `/tenants/a%2Fb/subscriptions` was matched as `/tenants/a/b/subscriptions` (a 404 naming no
cause) and `/tenants/%2F/subscriptions` as `/tenants/subscriptions` (a 405, or another route's answer). No value
holding '/' can be addressed in a path, so the answer is a 400 in the family's envelope (`limits.render_error`) naming
the segment. It sits inside the access log and the security headers (its answer is logged and hardened as any other)
and outside the body limits (whose rules by route would read the wrongly matched route); it reads `raw_path`, the
path as sent."""

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from teamsvoice.api.limits import render_error

_REPEATED = re.compile(r"/{2,}")
_REPEATED_RAW = re.compile(rb"/{2,}")
_ENCODED_SLASH = re.compile(rb"%2f", re.IGNORECASE)
SHOWN_SEGMENT_CHARS = 40  # a segment named in an answer is cut to this length


def single_slashes(path: str) -> str:
    return _REPEATED.sub("/", path)


class SingleSlashes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope.get("path", ""):
            scope = dict(scope)
            scope["path"] = single_slashes(scope["path"])
            if isinstance(scope.get("raw_path"), bytes):
                scope["raw_path"] = _REPEATED_RAW.sub(b"/", scope["raw_path"])
        await self.app(scope, receive, send)


def encoded_slash_problem(raw_path: bytes) -> str | None:
    """Why the path cannot be served: a segment of it holds an encoded '/' (None: none does)."""
    if b"%2" not in raw_path or _ENCODED_SLASH.search(raw_path) is None:
        return None
    segments = raw_path.removeprefix(b"/").split(b"/")
    position, segment = next((index, segment) for index, segment in enumerate(segments, start=1)
                             if _ENCODED_SLASH.search(segment))
    shown = segment.decode("latin-1")
    if len(shown) > SHOWN_SEGMENT_CHARS:
        shown = shown[:SHOWN_SEGMENT_CHARS] + "..."
    return (f"path: segment {position} (\"{shown}\") holds an encoded '/' (%2F); a value holding '/' cannot be given "
            f"in a path")


class EncodedSlashes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") if scope["type"] == "http" else None
        problem = encoded_slash_problem(raw_path) if isinstance(raw_path, bytes) else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        await render_error(scope, 400, problem)(scope, receive, send)
