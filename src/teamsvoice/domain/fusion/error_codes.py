"""Fusion's numeric error codes (docs/fusion-errors.md) for domain errors: the one table behind the API's error
envelope (api/fusion/errors.py) and the errors stored on bulk items.

Statuses: every status table of spec 004 lists the same error statuses (400, 403, 404, 500). Fusion has no 409:
a conflict (a number held by another user, a name taken, a job already ended) is the spec's "will result in an
error", 400, with its own code."""

from teamsvoice.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    UpstreamError,
    ValidationFailed,
)
from teamsvoice.domain.inventory import ownership

INVALID_REQUEST = 1000
UNAUTHENTICATED = 1001
FORBIDDEN = 1003
NOT_FOUND = 1004
CONFLICT = 1009
PRECONDITION = 1012
UPSTREAM = 1502
UPSTREAM_RETRYABLE = 1503
INTERNAL = 1500

# Codes of domain rules both families share, as Fusion numbers them.
NAMED_CODES = {ownership.NUMBER_TAKEN: 2011}

BY_ERROR: list[tuple[type[DomainError], int, int]] = [
    (ValidationFailed, 400, INVALID_REQUEST),
    (PermissionDenied, 403, FORBIDDEN),
    (NotFound, 404, NOT_FOUND),
    (Conflict, 400, CONFLICT),  # the spec's "will result in an error": 400 (no Fusion table lists 409)
    (PreconditionFailed, 400, PRECONDITION),
]


def status_and_code(exc: DomainError) -> tuple[int, int]:
    """Fusion's status and code for a domain error (authentication failures aside: APIO core's bare 401)."""
    if isinstance(exc, UpstreamError):
        if exc.is_refusal:  # Microsoft refused the request itself: the caller's error, as a conflict is
            return 400, CONFLICT
        return (503, UPSTREAM_RETRYABLE) if exc.retryable else (502, UPSTREAM)
    # A domain error may carry its own numeric Fusion code (e.g. 2095 "The template does not exist").
    numeric = int(exc.code) if exc.code.isdigit() else NAMED_CODES.get(exc.code)
    status, code = next(((s, c) for kind, s, c in BY_ERROR if isinstance(exc, kind)), (400, INVALID_REQUEST))
    return status, numeric or code


def error_body(exc: DomainError) -> dict[str, int | str]:
    """Fusion's `{"code", "reason"}` of a domain error."""
    return {"code": status_and_code(exc)[1], "reason": exc.message}
