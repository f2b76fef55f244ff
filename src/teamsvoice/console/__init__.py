"""The provider console at /console: server-rendered pages (Jinja2) with htmx, assets served from the package.

Routers here are thin like the API's: they resolve the caller's scope (console/auth.py), call the same domain
services the two API families call, and render HTML. Domain errors become a message on the page.
"""

from pathlib import Path

from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from teamsvoice.console import pages
from teamsvoice.console.auth import CsrfRejected, SignInRequired
from teamsvoice.console.rendering import render_message
from teamsvoice.core.errors import Conflict, DomainError, NotFound, PermissionDenied, UpstreamError

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"


def is_console_route(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(f"{PREFIX}/")


def render_error(request: Request, exc: DomainError) -> Response:
    """A domain error on a console route: its message in words, on the page (or in the htmx flash region)."""
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, PermissionDenied) else \
        409 if isinstance(exc, Conflict) else 502 if isinstance(exc, UpstreamError) else 400
    prefix = "Microsoft answered: " if isinstance(exc, UpstreamError) else ""
    return render_message(request, prefix + exc.message, status=status)


async def _sign_in_required(request: Request, _exc: Exception) -> Response:
    # The page the staff member was on comes back after the sign-in (it was always the customers' list).
    if request.headers.get("hx-request"):
        current = urlsplit(request.headers.get("hx-current-url") or "")
        here = current.path + (f"?{current.query}" if current.query else "")
        return Response(status_code=204, headers={"HX-Redirect": pages.login_url(here)})
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(pages.login_url(here if request.method == "GET" else ""), status_code=303)


async def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    return render_message(request, "The form expired or did not come from this console; reload the page and try again.",
                          status=403)


def install(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
