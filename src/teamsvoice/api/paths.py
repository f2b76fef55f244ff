"""One slash between path segments: `//reseller/getEnterprisesForReseller/3` (spec 001's own example URL) is
`/reseller/getEnterprisesForReseller/3`.

`SingleSlashes` is the outermost middleware, so everything that looks at the path (the body limit by route and the
Content-Type rule in `api/limits.py`, /metrics' access rule in `api/security_headers.py`, the routers, the console,
the family's error envelope, the access log) sees the path the route is matched on: a doubled slash can neither
miss a route nor get past a rule written for its single-slash form. The request is served where it is, not
redirected (a redirected POST loses its body with many clients)."""

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_REPEATED = re.compile(r"/{2,}")
_REPEATED_RAW = re.compile(rb"/{2,}")


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
