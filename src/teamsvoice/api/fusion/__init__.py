"""The Netaxis Fusion DRaaS API family (spec 004, vendor-notes part 2). Never imports api.connecttoteams."""

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.fusion import auth, msteams_tenant, subscriptions, tenants

PREFIX = "/api/v01/"
ROUTERS: list[APIRouter] = [auth.router, tenants.router, subscriptions.router, msteams_tenant.router,
                            msteams_tenant.consent_router]

# MS Teams users (bulk first: `msteams/users/bulk` must win over `msteams/users/{ms_user_id}`).
from teamsvoice.api.fusion import bulk, msteams_users, resource_accounts, templates  # noqa: E402

ROUTERS += [bulk.router, msteams_users.router, resource_accounts.router, templates.router]

# The platform around the MS Teams section (issue 10): profile, organisation, staff, licences, what is not done.
from teamsvoice.api.fusion import inventory, locations, platform, subscription_extras  # noqa: E402

ROUTERS += [platform.router, subscription_extras.router, inventory.router, locations.router]

# Groups (organisation nodes): their licences; the number inventory type of a group or subscription.
from teamsvoice.api.fusion import groups  # noqa: E402

ROUTERS += [groups.router]
