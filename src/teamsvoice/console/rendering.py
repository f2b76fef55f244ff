"""Rendering console pages: the Jinja2 environment, the console's CSP, and messages in words."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

# Scripts and styles only from the package's own static files (htmx, console.css); nothing inline.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page(request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context or {}, status_code=status)
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def render_message(request: Request, message: str, *, status: int) -> HTMLResponse:
    """An error for a person: into the page's alert region for htmx requests (swapped whatever the status),
    else a page of its own."""
    if request.headers.get("hx-request"):
        return page(request, "_flash.html", {"message": message, "error": True}, status=200,
                    headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    # The signed-in staff member, when the request got that far (pages.current_staff): its navigation and sign-out.
    staff = getattr(request.state, "staff", None)
    return page(request, "message.html", {"message": message, "status": status, "staff": staff}, status=status)
