"""Who is calling, derived from the credential only."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Principal:
    portal_user_id: int
    username: str
    user_type: str  # PARTNER, MASTER_RESELLER, RESELLER or ENTERPRISE
    reseller_id: int | None
    enterprise_id: int | None
    # The caller's own reseller and every reseller below it; empty for enterprise-level callers.
    reseller_scope: frozenset[int]
    # When the credential it came from expires (naive UTC); None when it did not come from a bearer token.
    expires_at: datetime | None = None

    @property
    def is_enterprise_level(self) -> bool:
        return self.enterprise_id is not None
