"""The last readiness check of each linked subscription, with when Microsoft answered it: the Tenant page's readiness
card shows it, so that viewing the page asks Microsoft nothing (it asked 3 to 5 requests at every view) until a staff
member asks again (Check now).

Remembered by the process that made the check, in memory: a restart forgets them, and behind a load balancer an API
process shows the checks it made itself (the card says when its check ran, or that it has made none). At most LIMIT
are kept, the one checked longest ago forgotten first.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.tenant_voice.readiness import TenantReadiness

LIMIT = 10_000


@dataclass(frozen=True)
class Checked:
    readiness: TenantReadiness
    at: datetime  # naive UTC: when the check began


class LastChecks:
    """Each subscription's last check of the Microsoft tenant linked to it: a subscription linked to another tenant
    (unlinked, then onboarded again) has none of the former's, and a subscription id a database gives again (its
    tenant's uuid is new) none of the deleted one's."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._checks: OrderedDict[tuple[str, int, str], Checked] = OrderedDict()

    @staticmethod
    def _key(access: SubscriptionAccess, tenant_id: str) -> tuple[str, int, str]:
        return access.tenant.uuid, access.subscription.id, tenant_id.lower()

    def last(self, access: SubscriptionAccess, tenant_id: str) -> Checked | None:
        return self._checks.get(self._key(access, tenant_id))

    def remember(self, access: SubscriptionAccess, tenant_id: str, readiness: TenantReadiness,
                 began: datetime) -> Checked:
        """Remembers the check that began at `began` (core.clock.utcnow) and answers it; a check that began before the
        one remembered (two staff members asked at once) replaces nothing, and the later one is answered."""
        key = self._key(access, tenant_id)
        known = self._checks.get(key)
        if known is not None and known.at > began:
            return known
        checked = Checked(readiness, began)
        self._checks.pop(key, None)
        self._checks[key] = checked
        while len(self._checks) > self._limit:
            self._checks.popitem(last=False)
        return checked


READINESS = LastChecks()
