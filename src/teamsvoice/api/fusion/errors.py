"""Fusion's error envelope `{"error": {"code": <int>, "reason": "..."}}` (auth endpoints: `{"error": "..."}`).

Codes are stable and listed in docs/fusion-errors.md.

Statuses: every status table of spec 004 (and the usual set vendor-notes part 2 gives for the rest of the
API) lists the same error statuses: 400 "Error while ...", 403, 404, 500. Fusion has no 409: a conflict
(a number held by another user, a name taken, a job already ended) is the spec's "will result in an error",
400, with its own code. `ERROR_STATUSES` is that decision, made once for the family; `render_domain_error`
never answers a status outside it. Beyond the tables, every route may answer APIO core's 401 and the
transport-level statuses of our own request limits and of Microsoft's availability (413, 429, 502, 503).
"""

from fastapi.responses import JSONResponse

from teamsvoice.core.errors import AuthenticationFailed, DomainError
from teamsvoice.api.fusion.error_codes import (  # noqa: F401  (the family's codes, used across api/)
    CONFLICT,
    DATABASE_BUSY,
    FORBIDDEN,
    INTERNAL,
    INVALID_REQUEST,
    NOT_FOUND,
    PRECONDITION,
    STOPPED_WAITING,
    UNAUTHENTICATED,
    UPSTREAM,
    UPSTREAM_RETRYABLE,
    status_and_code,
)

# The error statuses of spec 004's tables, and those every route may answer beyond them (see above).
SPEC_ERROR_STATUSES = frozenset({400, 403, 404, 500})
ERROR_STATUSES = SPEC_ERROR_STATUSES | {401, 413, 429, 502, 503}


def fusion_error(status: int, code: int, reason: str) -> JSONResponse:
    # An unencodable character in the reason (a lone surrogate echoed from the request) is shown escaped.
    reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(status_code=status, content={"error": {"code": code, "reason": reason}})


def code_for_status(status: int) -> int:
    return {400: INVALID_REQUEST, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 405: INVALID_REQUEST,
            }.get(status, INTERNAL if status >= 500 else INVALID_REQUEST)


def auth_error(reason: str) -> JSONResponse:
    """APIO core answers every 401 with a bare string; the portal then refreshes its access token."""
    return JSONResponse(status_code=401, content={"error": reason}, headers={"WWW-Authenticate": "Bearer"})


def render_domain_error(exc: DomainError) -> JSONResponse:
    if isinstance(exc, AuthenticationFailed):
        return auth_error(exc.message)
    status, code = status_and_code(exc)
    return fusion_error(status, code, exc.message)
