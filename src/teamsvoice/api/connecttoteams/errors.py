"""ConnecttoTeams error envelopes: Spring's `{timestamp, status, error, message, path}`, and OAuth's
`{error, error_description}` for authentication failures."""

import re
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


def oauth_error(status: int, error: str, description: str, *, scheme: str = "Bearer") -> JSONResponse:
    """`scheme`: the 401's challenge. A bearer token refused is challenged as Bearer; the token endpoint's client
    authentication as Basic, the scheme its clients use (RFC 6749 5.2)."""
    # A header carries printable ASCII only, and the description sits in a quoted string.
    quoted = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in description)
    challenge = ('Basic realm="oauth", charset="UTF-8"' if scheme == "Basic"
                 else f'Bearer error="{error}", error_description="{quoted}"')
    headers = {"WWW-Authenticate": challenge} if status == 401 else None
    return JSONResponse(status_code=status, content={"error": error, "error_description": printable(description)},
                        headers=headers)


def render_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    if isinstance(exc, AuthenticationFailed):
        # OAuth: a bad grant is the request's fault (400); a bad client or token is 401.
        status = 400 if exc.code == "invalid_grant" else 401
        return oauth_error(status, exc.code if exc.code != "authentication_failed" else "unauthorized", exc.message,
                           scheme="Basic" if exc.code == "invalid_client" else "Bearer")
    if isinstance(exc, UpstreamError):
        return spring_error(request, upstream_status(exc), exc.message)
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 400)
    return spring_error(request, status, exc.message)


# The last step of an error's location when pydantic tried one member of a union (`StrictStr | Long`): the member's
# type ("str", "constrained-int", "list[int]"), not a field.
_UNION_MEMBER = re.compile(r"(str|int|float|bool|bytes|none|constrained-[a-z]+|[a-z-]+\[.*\])\Z", re.DOTALL)
_SHOULD_BE = "Input should be "


def describe_validation_error(exc: RequestValidationError) -> str:
    """One sentence per field: the errors of a union's members ("pbxLocation.str: ...; pbxLocation.constrained-int:
    ...") read as one ("pbxLocation: Input should be a valid string or a valid integer")."""
    parts: dict[tuple[str, bool], list[str]] = {}
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
        if error.get("type") == "json_invalid":
            return f"Malformed JSON request body: {error.get('ctx', {}).get('error', 'invalid JSON')}"
        member = len(loc) > 1 and _UNION_MEMBER.match(loc[-1]) is not None
        field = ".".join(loc[:-1] if member else loc) or "body"
        messages = parts.setdefault((field, member), [])
        if str(error.get("msg")) not in messages:
            messages.append(str(error.get("msg")))
    sentences = []
    for (field, member), messages in parts.items():
        if member and all(m.startswith(_SHOULD_BE) for m in messages):
            sentences.append(f"{field}: {_SHOULD_BE}{' or '.join(m.removeprefix(_SHOULD_BE) for m in messages)}")
        else:
            sentences.extend(f"{field}: {m}" for m in messages)
    return "; ".join(sentences) or "Invalid request"


def render_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return spring_error(request, 400, describe_validation_error(exc))
