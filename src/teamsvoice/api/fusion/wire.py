"""Fusion wire schemas (request bodies) and renderers, field names as the vendor's portal uses them."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.limits import Name
from teamsvoice.domain.fusion import accounts
from teamsvoice.domain.fusion.models import FusionNumber, FusionSubscription, FusionTenant, FusionUser
from teamsvoice.domain.fusion.numbers import NumberHolder
from teamsvoice.domain.fusion.onboarding import ADMIN_PASSWORD_MAX, ADMIN_USERNAME_MAX
from teamsvoice.domain.fusion.roles import ALL_ROLES
from teamsvoice.domain.fusion.tenants import BILLING_ID_MAX_LENGTH
from teamsvoice.domain.fusion.scope import org_uuid
from teamsvoice.domain.orgs.models import Reseller

SUB_PATH = "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}"
TENANTS_PATH = "/api/v01/draas/{draas_instance}/tenants"


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class Owner(Strict):
    type: Literal["distributor", "reseller"]
    uuid: StrictStr
    name: StrictStr | None = None


class TenantCreateBody(Strict):
    name: Name = Field(min_length=1, max_length=200)
    billingId: Name | None = Field(default=None, max_length=BILLING_ID_MAX_LENGTH)
    owner: Owner | None = None
    markup: StrictFloat | StrictInt | None = Field(default=None, description="A percentage from 0 to 1000 "
                                                   "(domain/fusion/tenants.check_markup)")


class TenantUpdateBody(Strict):
    name: Name = Field(min_length=1, max_length=200)
    billingId: Name | None = Field(default=None, max_length=BILLING_ID_MAX_LENGTH)
    markup: StrictFloat | StrictInt | None = Field(default=None, description="A percentage from 0 to 1000 "
                                                   "(domain/fusion/tenants.check_markup)")


class Licenses(Strict):
    msTeamsUsers: StrictInt = Field(default=0, ge=0)
    sipTrunkChannels: StrictInt = Field(default=0, ge=0)


class SubscriptionCreateBody(Strict):
    name: Name = Field(min_length=1, max_length=200)
    billingId: Name | None = Field(default=None, max_length=BILLING_ID_MAX_LENGTH)
    licenses: Licenses | None = None


class NumberRef(Strict):
    countryCode: StrictStr | StrictInt
    nsn: StrictStr | StrictInt


class NumbersDeleteBody(Strict):
    numbers: list[NumberRef] = Field(min_length=1)


class AdminBody(Strict):
    msUsername: StrictStr = Field(min_length=3, max_length=ADMIN_USERNAME_MAX)
    msPassword: StrictStr = Field(min_length=1, max_length=ADMIN_PASSWORD_MAX)


def render_owner(node: Reseller) -> dict[str, Any]:
    level = {"MASTER_RESELLER": "distributor", "RESELLER": "reseller", "PARTNER": "system"}.get(node.level, node.level)
    return {"type": level, "uuid": org_uuid(node.id), "name": node.name}


def render_tenant(tenant: FusionTenant, owner: Reseller | None, *, direct: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"uuid": tenant.uuid, "name": tenant.name, "billingId": tenant.billing_id,
                            "markup": tenant.markup}
    if owner is not None:
        body["owner"] = render_owner(owner)
    if direct is not None:
        body["isDirectTenant"] = direct
    return body


def render_subscription_summary(subscription: FusionSubscription) -> dict[str, Any]:
    return {"id": subscription.id, "name": subscription.name, "billingId": subscription.billing_id,
            "licenses": {"msTeamsUsers": subscription.ms_teams_users, "sipTrunkChannels": subscription.sip_trunk_channels}}


def render_number(row: FusionNumber, holder: NumberHolder | None, free_on: datetime | None = None) -> dict[str, Any]:
    """A PhoneNumber (vendor-notes 2.5): `assignedTo` names a user by its voice record's id, a resource account
    (`subType` "resource_account") by the account's own id; a number in quarantine (not assigned, not free either)
    also says when its quarantine ends (`freeOn`, as number_inventory's disconnected numbers)."""
    body: dict[str, Any] = {
        "assigned": holder is not None, "isoCode": row.iso_code, "countryCode": f"+{row.country_code}",
        "fullNumber": row.e164, "nsn": row.nsn, "numberType": row.number_type, "source": row.source, "id": row.id,
    }
    if holder is not None:
        account = holder.resource_account_id
        body["assignedTo"] = {"type": "ms_teams", "subType": "user" if account is None else "resource_account",
                              "to": holder.user.id if account is None else account,
                              "userPrincipalName": holder.user.user_principal_name}
    if free_on is not None:
        body["freeOn"] = free_on.isoformat() + "Z"
    return body


async def render_login(session: AsyncSession, user: FusionUser, *, with_rules: bool = False) -> dict[str, Any]:
    """A login as the portal reads it (never its password); `with_rules`: its roles as `profile.api_rules`."""
    login = await accounts.login_view(session, user)
    body: dict[str, Any] = {
        "id": user.id, "username": user.username, "status": "active" if user.active else "disabled", **login.profile,
        "ui_profile": accounts.UI_PROFILES[user.level],
        "admin_of": [{"level": login.admin_of.level, "reference": login.admin_of.reference, "name": login.admin_of.name}],
    }
    if with_rules:
        held = set(user.permissions or [])
        body["profile"] = {"name": user.level,
                           "api_rules": [{"name": role, "allowed": role in held} for role in sorted(ALL_ROLES)]}
    return body
