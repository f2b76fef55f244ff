"""The domain error tree. Domain code raises these; each API family renders them in its own envelope."""

from typing import Any


MAX_MESSAGE = 500


class DomainError(Exception):
    """A rule was broken. `code` is stable and documented; `message` is for humans."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if len(message) > MAX_MESSAGE:  # a message quoting the caller's input never echoes more than a prefix of it
            message = message[:MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ValidationFailed(DomainError):
    code = "validation_failed"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    # Whether the failure says something about the account named in the login (a wrong password) or only about
    # who is asking (an API client that could not authenticate): login throttling counts the first against the
    # account, the second against the address only.
    about_the_account = True


class PermissionDenied(DomainError):
    code = "permission_denied"


class PreconditionFailed(DomainError):
    """The request is valid but the object is not in a state that allows it (e.g. not registered yet)."""

    code = "precondition_failed"


class TooManyRequests(DomainError):
    """The caller must wait `retry_after` seconds (login throttling, or the server saturated with logins)."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class UpstreamError(DomainError):
    """Microsoft (Entra, Graph, Teams) refused or failed. `retryable` tells jobs whether to try again."""

    code = "upstream_error"

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, upstream_code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.upstream_code = upstream_code

    @property
    def is_refusal(self) -> bool:
        """Microsoft refused the request itself (a number held by another user, a bad value): something the
        caller can resolve, unlike Microsoft failing or refusing us (authorisation, outage)."""
        return self.status in (400, 409, 422)


# --- an error as stored data (a bulk item's outcome) ------------------------------------------------------

UNEXPECTED = "unexpected"  # the kind of an outcome that was no domain error (a bug, logged); never raised
KINDS: dict[str, type[DomainError]] = {kind.code: kind for kind in (
    DomainError, ValidationFailed, NotFound, Conflict, AuthenticationFailed, PermissionDenied, PreconditionFailed,
    UpstreamError)}


def describe(exc: DomainError) -> dict[str, Any]:
    """The error in neutral words: `kind` (not_found, conflict, validation_failed, upstream_error...), `code`
    (the rule's own name, e.g. number_taken; the kind when it has none) and `message`; Microsoft's failures add
    the status Microsoft answered and whether trying again may help. `rebuild` gives the error back, so each
    API family renders a stored error exactly as it renders a raised one."""
    kind = next(k for k in type(exc).__mro__ if k in KINDS.values()).code  # type: ignore[attr-defined]
    data: dict[str, Any] = {"kind": kind, "code": exc.code, "message": exc.message}
    if isinstance(exc, UpstreamError):
        data |= {"status": exc.status, "retryable": exc.retryable}
    return data


def describe_unexpected(exc: BaseException) -> dict[str, Any]:
    """An outcome for a failure that is no domain error: its type only (the details go to the log)."""
    return {"kind": UNEXPECTED, "code": UNEXPECTED, "message": f"Unexpected error: {type(exc).__name__}"}


def rebuild(data: dict[str, Any]) -> DomainError:
    """The error `describe` wrote (an unknown or unexpected kind comes back as a plain DomainError)."""
    kind = KINDS.get(str(data.get("kind")), DomainError)
    message, code = str(data.get("message") or ""), data.get("code") or None
    if kind is UpstreamError:
        error: DomainError = UpstreamError(message, retryable=bool(data.get("retryable")), status=data.get("status"))
        if code:
            error.code = str(code)
        return error
    return kind(message, code=str(code) if code else None)
