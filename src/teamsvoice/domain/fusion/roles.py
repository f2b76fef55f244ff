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

# Tenants and subscriptions (vendor-notes 2.3/2.4: tenants.list is documented; the rest follow the documented
# pattern `<collection>.list|create`, `<collection>.instance.<verb>` for one object, as the portal checks them).
TENANT_ADMIN_ROLES = ["tenants.list", "tenants.create", "tenants.instance.update", "tenants.instance.delete"]
TENANT_READ_ROLES = ["tenants.instance.read"]
SUBSCRIPTION_ADMIN_ROLES = ["tenants.instance.subscriptions.create", f"{_SUB}.delete",
                            f"{_SUB}.numbers.create", f"{_SUB}.numbers.delete", f"{_SUB}.licenses.update",
                            f"{_SUB}.entitlements.create", f"{_SUB}.entitlements.update",
                            f"{_SUB}.entitlements.delete"]
SUBSCRIPTION_READ_ROLES = ["tenants.instance.subscriptions.list", f"{_SUB}.read",
                           f"{_SUB}.numbers.list", f"{_SUB}.free_numbers.list", f"{_SUB}.licenses.read",
                           f"{_SUB}.entitlements.list", f"{_SUB}.number_inventory.list",
                           f"{_SUB}.number_inventory_type.read"]
# Emergency (civic) addresses of a subscription and the location of a user's number: the tenant's own data,
# managed by the tenant login too.
LOCATION_ROLES = [f"{_SUB}.locations.list", f"{_SUB}.locations.create", f"{_SUB}.locations.update",
                  f"{_SUB}.locations.delete", f"{_MST}.users.instance.location.update"]
# Number porting (vendor-notes 2.4): teamsvoice does not port numbers; the routes answer 501.
PORTING_ROLES = [f"{_SUB}.porting.requests.list", f"{_SUB}.porting.requests.create"]
# Provider-side catalogues (97_public_data) and the number stock.
PUBLIC_ROLES = ["public.country_codes.list", "public.entitlement_types.list", "public.rate_plans.list",
                "public.owners.list", "public.number_inventory.ranges.list", "public.number_inventory.suggestion.read"]
# The organisation tree and its staff (logins). `users.list` lists every login under the caller's control;
# `<level>s.instance.admins.*` manage the logins (admins) of one distributor, reseller or tenant.
ORG_ROLES = ["distributors.list", "distributors.instance.read", "resellers.list", "resellers.instance.read",
             "users.list"]
STAFF_ROLES = [f"{kind}.instance.admins.{verb}" for kind in ("distributors", "resellers", "tenants")
               for verb in ("list", "create", "update", "delete")]
# Groups (nodes of the organisation tree: system, distributor, reseller; vendor-notes 2.5 and 2.9): their
# licences and number inventory type. Organisation levels only: a tenant login sees no group.
GROUP_ROLES = ["groups.instance.licenses.list", "groups.instance.number_inventory_type.read"]

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
    # Operator Connect (the portal's msteams/oc/*): a Direct Routing subscription has no OC numbers.
    f"{_MST}.oc.numbers.list",
]

ALL_ROLES: frozenset[str] = frozenset(
    TENANT_ADMIN_ROLES + TENANT_READ_ROLES + SUBSCRIPTION_ADMIN_ROLES + SUBSCRIPTION_READ_ROLES + MSTEAMS_ROLES
    + LOCATION_ROLES + PORTING_ROLES + PUBLIC_ROLES + ORG_ROLES + STAFF_ROLES + GROUP_ROLES
)
# A tenant login's own logins: it may see and manage the admins of its tenant, nothing above it.
TENANT_STAFF_ROLES = [r for r in STAFF_ROLES if r.startswith("tenants.")]

# Organisation levels manage tenants, subscriptions and numbers; a tenant login manages its own MS Teams
# side, its locations and its own admins, and reads (but does not create, delete or stock) its subscriptions.
PROFILES: dict[str, frozenset[str]] = {
    "system": ALL_ROLES,
    "distributor": ALL_ROLES,
    "reseller": ALL_ROLES - {r for r in ALL_ROLES if r.startswith("distributors.")},
    "tenant": frozenset(TENANT_READ_ROLES + SUBSCRIPTION_READ_ROLES + MSTEAMS_ROLES + LOCATION_ROLES
                        + TENANT_STAFF_ROLES + ["users.list", "public.country_codes.list"]),
}


def default_permissions(level: str) -> list[str]:
    return sorted(PROFILES[level])
