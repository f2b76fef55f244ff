"""Login throttling at the API edge: the policy from settings and the caller's address."""

from fastapi import Request

from teamsvoice.domain.security.throttle import Rule, ThrottlePolicy
from teamsvoice.settings import Settings


def policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        account=Rule(settings.login_free_failures, settings.login_lock_base_seconds, settings.login_lock_max_seconds),
        address=Rule(settings.login_address_free_failures, settings.login_lock_base_seconds, settings.login_lock_max_seconds),
        forget_after_seconds=settings.login_forget_after_seconds,
    )


def client_address(request: Request) -> str | None:
    # As api/forwarded.py decided it: the TCP peer, or the client a trusted proxy reports (settings.trusted_proxies).
    return request.client.host if request.client else None

