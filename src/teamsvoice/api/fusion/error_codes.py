"""Fusion's numeric error codes (docs/fusion-errors.md): the one table that turns a domain error (its kind and
its neutral code) into Fusion's status and number, for the API's error envelope (api/fusion/errors.py) and the
errors of bulk items (api/fusion/bulk.py). The domain never sees these numbers.

Statuses: every status table of spec 004 lists the same error statuses (400, 403, 404, 500). Fusion has no 409:
a conflict (a number held by another user, a name taken, a job already ended) is the spec's "will result in an
error", 400, with its own code."""

from typing import Any

from teamsvoice.core.errors import (
    UNEXPECTED,
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    UpstreamError,
    ValidationFailed,
    rebuild,
)
from teamsvoice.api.fusion import paging
from teamsvoice.domain.fusion import accounts, licences, locations, numbers, onboarding, scope, tenants
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.teams_users import bulk, resource_accounts, service, templates
from teamsvoice.domain.tenant_voice import rules

INVALID_REQUEST = 1000
UNAUTHENTICATED = 1001
FORBIDDEN = 1003
NOT_FOUND = 1004
CONFLICT = 1009
PRECONDITION = 1012
UPSTREAM = 1502
UPSTREAM_RETRYABLE = 1503
INTERNAL = 1500
DATABASE_BUSY = 1504  # a transient database failure gave the request up (app.py): retry
STOPPED_WAITING = 1505  # the server stopped before the job the request waits for ended (api/job_wait.py): follow it
INVALID_NEXT = 2001

# The domain's named codes as Fusion numbers them (docs/fusion-errors.md); a code not listed here gets the
# number of its kind (BY_ERROR).
NAMED_CODES: dict[str, int] = {
    paging.INVALID_NEXT: INVALID_NEXT,
    scope.NO_MS_TENANT: 2004,
    numbers.NUMBER_TAKEN: 2010,
    numbers.NUMBER_ASSIGNED: 2011,
    ownership.NUMBER_TAKEN: 2011,
    numbers.NUMBER_NOT_IN_SUBSCRIPTION: 2012,
    tenants.TENANT_HAS_SUBSCRIPTIONS: 2020,
    tenants.SUBSCRIPTION_NOT_DELETABLE: 2021,
    onboarding.WIZARD_RUNNING: 2030,
    onboarding.NO_ADMIN: 2031,
    onboarding.ALREADY_ONBOARDED: 2032,
    onboarding.JOBS_UNFINISHED: 2033,
    licences.QUOTA_EXCEEDED: 2060,
    licences.BELOW_IN_USE: 2061,
    accounts.WRONG_PASSWORD: 2062,
    accounts.SELF_DELETE: 2063,
    accounts.USERNAME_TAKEN: 2064,
    accounts.SELF_DISABLE: 2065,
    locations.LOCATION_NOT_FOUND: 2070,
    locations.LOCATION_IN_USE: 2071,
    locations.USER_HAS_NO_NUMBER: 2072,
    rules.NO_TEAMS_PHONE: 2088,
    bulk.BULK_ENDED: 2089,
    service.USER_NOT_FOUND: 2090,
    service.GROUP_NOT_FOUND: 2091,
    service.LICENCE_NOT_FOUND: 2092,
    service.VRP_REFUSED: 2093,
    service.INVALID_ITEM: 2094,
    service.TEMPLATE_NOT_FOUND: 2095,
    templates.TEMPLATE_NAME_TAKEN: 2096,
    templates.DEFAULT_TEMPLATE_READ_ONLY: 2097,
    bulk.BULK_NOT_FOUND: 2098,
    resource_accounts.RESOURCE_ACCOUNT_NOT_FOUND: 2099,
}

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
    status, code = next(((s, c) for kind, s, c in BY_ERROR if isinstance(exc, kind)), (400, INVALID_REQUEST))
    return status, NAMED_CODES.get(exc.code) or code


def error_body(exc: DomainError) -> dict[str, int | str]:
    """Fusion's `{"code", "reason"}` of a domain error."""
    return {"code": status_and_code(exc)[1], "reason": exc.message}


def outcome_body(outcome: dict[str, Any]) -> dict[str, int | str]:
    """Fusion's `{"code", "reason"}` of an error stored as data (`core.errors.describe`: a bulk item's)."""
    if outcome.get("kind") == UNEXPECTED:
        return {"code": INTERNAL, "reason": str(outcome.get("message", ""))}
    return error_body(rebuild(outcome))
