"""The domain error tree. Domain code raises these; each API family renders them in its own envelope."""


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
