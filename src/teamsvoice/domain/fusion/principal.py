"""Who is calling the Fusion API, derived from the access token only."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FusionPrincipal:
    user_id: int
    username: str
    level: str  # system, distributor, reseller or tenant
    permissions: frozenset[str]
    reseller_id: int | None  # org levels: the login's node of the Reseller tree
    fusion_tenant_id: int | None  # tenant level: the one Fusion tenant it may see
    tenant_uuid: str | None
    # Org levels: the login's node and every node below it. Empty for tenant-level logins.
    reseller_scope: frozenset[int]
    session_key: str
    # When the access token it came from expires (naive UTC); None when it did not come from a bearer token.
    expires_at: datetime | None = None

    @property
    def is_tenant_level(self) -> bool:
        return self.level == "tenant"

    def holds(self, permission: str) -> bool:
        return permission in self.permissions
