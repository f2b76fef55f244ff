"""Fusion's wire format of MS Teams users and resource accounts (spec 004): the `msTeams` object (what Microsoft
holds) and the `draas` object (what teamsvoice holds) rendered from the domain's views
(`domain/teams_users/service.TeamsUser`, `resource_accounts.ResourceAccountView`), and the users list's sealed
`next` token."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.api.fusion import paging
from teamsvoice.core.security import Keyring
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import service
from teamsvoice.domain.teams_users.resource_accounts import ResourceAccountView
from teamsvoice.microsoft.ports import TenantConnection


def render_licences(licences: list[service.Licence]) -> list[dict[str, str]]:
    return [{"skuId": licence.sku_id, "skuPartNumber": licence.sku_part_number} for licence in licences]


def render_record(view: service.VoiceRecordView) -> dict[str, Any]:
    """The `draas` object: the record's id, customer licences, sync status and, with a number, the number, its
    inventory id (`numberId`) and `connectionId`."""
    body: dict[str, Any] = {"id": view.id, "customerLicenses": list(view.customer_licences), "status": view.status}
    if view.phone_number:
        body["connectionId"] = view.id
        if view.number_id is not None:
            body["numberId"] = view.number_id
        body["phoneNumber"] = view.phone_number
    return body


def render_user(entry: service.TeamsUser) -> dict[str, Any]:
    """`{msTeams, draas?}`, for a list and one user alike: `roles` when the user holds any (spec 004's list example);
    one user read alone also has its groups and `vrp`. `draas` only for a user "voice enabled" (`voiceEnabled`
    "yes") that has "a phone number assigned" (spec 004): a record without a number is not shown."""
    user, details = entry.user, entry.details
    ms: dict[str, Any] = {"id": user.id, "userPrincipalName": user.user_principal_name, "displayName": user.display_name}
    if details is not None:
        ms["groups"] = [{"displayName": g.display_name, "id": g.id} for g in details.groups]
    ms |= {"location": user.usage_location, "licenses": render_licences(entry.licences), "voiceEnabled": entry.voice_enabled}
    if details is not None:
        ms["vrp"] = details.voice_routing_policy or "Global"
    if entry.roles:
        ms["roles"] = [{"id": r.id, "displayName": r.display_name} for r in entry.roles]
    body: dict[str, Any] = {"msTeams": ms}
    if entry.record is not None and entry.record.phone_number and entry.voice_enabled == "yes":
        body["draas"] = render_record(entry.record)
    return body


async def users_page(
    session: AsyncSession, access: SubscriptionAccess, connection: TenantConnection, keyring: Keyring, *,
    page_size: int, next_token: str | None, search: str | None, group: str | None, filters: service.UserFilters,
) -> dict[str, Any]:
    """`{users, next?}`: the `next` token holds Graph's page link and the position in it, sealed (the client never
    sees or steers the link), and names the query it continues (the subscription and its MS Teams tenant, page
    size, search, group, filters): a token of another subscription is a 400 naming `next`."""
    service.check_users_page_size(page_size)
    context = {"subscription": access.subscription.id, "ms_tenant": access.ms_tenant_id, "page_size": page_size, "search": search or "", "group": group or "", "country": sorted(filters.countries),
               "voice": filters.is_voice_enabled, "have": filters.have_number}
    start = None
    if next_token:
        position = paging.decode_cursor(keyring, next_token, context, fields={"u": str, "s": int})
        start = service.UsersPosition(position["u"], position["s"])
    page = await service.list_users(session, access, connection, page_size=page_size, start=start, search=search,
                                    group=group, filters=filters)
    body: dict[str, Any] = {"users": [render_user(u) for u in page.users]}
    if page.following is not None:
        body["next"] = paging.encode_cursor(keyring, {"u": page.following.link, "s": page.following.skip}, context)
    return body


def render_resource_account(view: ResourceAccountView) -> dict[str, Any]:
    """`{msTeams, draas?}`: `draas` for an account teamsvoice made; its `status` is the job's while the job runs."""
    ms: dict[str, Any] = {"id": view.microsoft_id, "userPrincipalName": view.user_principal_name,
                          "displayName": view.display_name, "location": view.location, "accountType": view.account_type}
    if view.in_microsoft:
        ms["licenses"] = render_licences(view.licences)
    if view.phone_number:
        ms["phoneNumber"] = view.phone_number
    entry: dict[str, Any] = {"msTeams": ms}
    row = view.account
    if row is not None:
        if not view.in_microsoft:  # wanted, not (yet) in Microsoft: the intermediate state
            draas: dict[str, Any] = {"id": row.id, "customerLicenses": row.customer_licences, "status": row.status}
        else:
            draas = {**render_record(view.record), "id": row.id} if view.record is not None else {
                "id": row.id, "customerLicenses": row.customer_licences}
            draas["status"] = row.status if row.status != "active" else draas.get("status", "active")
        if row.error:
            draas["error"] = row.error
        entry["draas"] = draas
    return entry
