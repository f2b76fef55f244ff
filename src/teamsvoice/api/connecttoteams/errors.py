"""ConnecttoTeams error envelopes: Spring's `{timestamp, status, error, message, path}`, and OAuth's
`{error, error_description}` for authentication failures."""

from datetime import UTC, datetime
from http import HTTPStatus

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from teamsvoice.core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    UpstreamError,
    ValidationFailed,
)

STATUS_BY_ERROR: list[tuple[type[DomainError], int]] = [
    (ValidationFailed, 400),
    (NotFound, 404),
    (Conflict, 409),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (PreconditionFailed, 400),
]


def upstream_status(exc: UpstreamError) -> int:
    if exc.is_refusal:
        return 409
    return 503 if exc.retryable else 502


def printable(text: str) -> str:
    """The text as a response can carry it: an unencodable character (a lone surrogate) is shown escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def spring_error(request: Request, status: int, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "status": status,
            "error": HTTPStatus(status).phrase,
            "message": printable(message),
            "path": request.url.path,
        },
    )


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    # A header carries printable ASCII only, and the description sits in a quoted string.
    quoted = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)
    headers = {"WWW-Authenticate": f'Bearer error="{error}", error_description="{quoted}"'} if status == 401 else None
    return JSONResponse(status_code=status, content={"error": error, "error_description": printable(description)},
                        headers=headers)


def render_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    if isinstance(exc, AuthenticationFailed):
        # OAuth: a bad grant is the request's fault (400); a bad client or token is 401.
        status = 400 if exc.code == "invalid_grant" else 401
        return oauth_error(status, exc.code if exc.code != "authentication_failed" else "unauthorized", exc.message)
    if isinstance(exc, UpstreamError):
        return spring_error(request, upstream_status(exc), exc.message)
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
    return spring_error(request, status, exc.message)


def describe_validation_error(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
        if error.get("type") == "json_invalid":
            return f"Malformed JSON request body: {error.get('ctx', {}).get('error', 'invalid JSON')}"
        field = ".".join(loc) or "body"
        parts.append(f"{field}: {error.get('msg')}")
    return "; ".join(parts) or "Invalid request"


def render_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return spring_error(request, 400, describe_validation_error(exc))
