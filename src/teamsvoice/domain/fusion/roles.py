"""Fusion "Required role" strings and the permission sets each login level gets by default.

A login holds an explicit list of these strings (`FusionUser.permissions`); a route names the one it
needs (`require("...")` in api/fusion/deps.py), which refuses unknown strings at import time so a typo
cannot silently open or close a route.
"""

LEVELS = ("system", "distributor", "reseller", "tenant")
# Fusion level -> the ConnecttoTeams level of the Reseller node a login of that level belongs to.
RESELLER_LEVEL_OF = {"system": "PARTNER", "distributor": "MASTER_RESELLER", "reseller": "RESELLER"}
FUSION_LEVEL_OF = {v: k for k, v in RESELLER_LEVEL_OF.items()}

_SUB = "tenants.instance.subscriptions.instance"
_MST = f"{_SUB}.msteams"

# Tenants and subscriptions (vendor-notes 2.3/2.4: only tenants.list is documented; the rest follow its style).
TENANT_ADMIN_ROLES = ["tenants.list", "tenants.create", "tenants.update", "tenants.delete"]
TENANT_READ_ROLES = ["tenants.read"]
SUBSCRIPTION_ADMIN_ROLES = ["tenants.instance.subscriptions.create", "tenants.instance.subscriptions.delete",
                            f"{_SUB}.numbers.create", f"{_SUB}.numbers.delete"]
SUBSCRIPTION_READ_ROLES = ["tenants.instance.subscriptions.list", "tenants.instance.subscriptions.read",
                           f"{_SUB}.numbers.list", f"{_SUB}.free_numbers.list"]

# Spec 004 (every "Required role" of the MS Teams section), plus the onboarding wizard and unlink
# (vendor-notes 2.8, undocumented roles named in the same style).
MSTEAMS_ROLES = [
    f"{_MST}.status.read",
    f"{_MST}.admins.read",
    f"{_MST}.admins.update",
    f"{_MST}.admins.delete",
    f"{_MST}.wizard.read",
    f"{_MST}.wizard.run",
    f"{_MST}.unlink",
    f"{_MST}.users.list",
    f"{_MST}.users.read",
    f"{_MST}.users.create",
    f"{_MST}.users.instance.check",
    f"{_MST}.users.instance.update",
    f"{_MST}.users.instance.delete",
    f"{_MST}.users.bulk",
    f"{_MST}.users.bulk.jobs",
    f"{_MST}.users.bulk.jobs.details",
    f"{_MST}.users.instance.groups.update",
    f"{_MST}.users.instance.licenses.update",
    f"{_MST}.users.instance.phone_number.update",
    f"{_MST}.users.instance.vrp.update",
    f"{_MST}.users.instance.template.instance.update",
    f"{_MST}.users.instance.sip_address.read",
    f"{_MST}.resource_accounts.list",
    f"{_MST}.resource_accounts.create",
    f"{_MST}.resource_accounts.update",
    f"{_MST}.resource_accounts.instance.delete",
    f"{_MST}.domains.list",
    f"{_MST}.licenses.list",
    f"{_MST}.licenses.instance.update",
    f"{_MST}.vrps.read",
    f"{_MST}.groups.read",
    f"{_MST}.groups.create",
    f"{_MST}.sync",
    f"{_MST}.templates.list",
    f"{_MST}.templates.create",
    f"{_MST}.templates.update",
    f"{_MST}.templates.delete",
]

ALL_ROLES: frozenset[str] = frozenset(
    TENANT_ADMIN_ROLES + TENANT_READ_ROLES + SUBSCRIPTION_ADMIN_ROLES + SUBSCRIPTION_READ_ROLES + MSTEAMS_ROLES
)

# Organisation levels manage tenants, subscriptions and numbers; a tenant login manages its own MS Teams
# side and reads (but does not create, delete or stock) its subscriptions.
PROFILES: dict[str, frozenset[str]] = {
    "system": ALL_ROLES,
    "distributor": ALL_ROLES,
    "reseller": ALL_ROLES,
    "tenant": frozenset(TENANT_READ_ROLES + SUBSCRIPTION_READ_ROLES + MSTEAMS_ROLES),
}


def default_permissions(level: str) -> list[str]:
    return sorted(PROFILES[level])
