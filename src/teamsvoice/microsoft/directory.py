"""Directory administration of one customer tenant, in domain terms, on Graph v1.0: users, licences,
groups, memberships, domains.

The adapter of the `DirectoryAdministration` port (microsoft/directory_ports.py, which also holds the values it
returns). Use it as `connection.directory_admin` (a `DirectoryAdmin` built from `TenantConnection.graph`) or
`directory_admin(connection)`. Every call goes through the connection's Graph client, so it shares the
tenant's concurrency limit and the retry policy (429/5xx retried honouring Retry-After).

    admin = connection.directory_admin
    async for user in admin.users(filter="startswith(displayName,'A')", select=["id", "displayName"]):
        ...
    user = await admin.user("alice@contoso.com")                      # NotFound when absent
    user = await admin.user_batched("alice@contoso.com")              # the same, in a $batch with others waiting
    created = await admin.create_user(user_principal_name=..., display_name=..., mail_nickname=...,
                                      password=..., usage_location="US")   # Conflict on a taken UPN
    await admin.update_user(user.id, usage_location="BE", display_name="Alice B")
    await admin.delete_user(user.id)
    skus = await admin.subscribed_skus()                               # SubscribedSku(prepaid, consumed, available)
    await admin.assign_licences(user.id, add=["MCOEV"])                # part number or skuId
        # ValidationFailed: the user has no usageLocation; Conflict: no free seat; both name the SKU
    await admin.remove_licences(user.id, ["MCOEV"])
    async for group in admin.groups(teams_only=True): ...
    await admin.add_group_member(group.id, user.id)                    # False: was already a member
    await admin.remove_group_member(group.id, user.id)                 # False: was not a member
    memberships = await admin.member_of(user.id)                       # groups and directory roles
    domains = await admin.domains()
    results = await admin.update_users({user_id: {"usageLocation": "US"}, ...})  # $batch, per-user outcome

Errors: NotFound for a missing user/group; ValidationFailed / Conflict for Microsoft's refusals that the
caller can fix; everything else UpstreamError(retryable=...).
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from teamsvoice.core.errors import Conflict, DomainError, NotFound, UpstreamError, ValidationFailed
from teamsvoice.microsoft.directory_ports import (  # the values are the port's (re-exported for adapters and tests)
    DirectoryGroup, DirectoryObject, DirectoryUser, DirectoryUserPage, LicenceDetail, SubscribedSku, TenantDomain,
    UserUpdateResult,
)
from teamsvoice.microsoft.coalescing import COALESCER
from teamsvoice.microsoft.graph import BATCH_LIMIT, BatchRequest, GraphClient
from teamsvoice.core.remembered import Remembered
from teamsvoice.microsoft.paths import guid_segment, object_segment

if TYPE_CHECKING:
    from teamsvoice.microsoft.ports import TenantConnection

GRAPH_OBJECT_URL = "https://graph.microsoft.com/v1.0/directoryObjects/"
TEAMS_FILTER = "resourceProvisioningOptions/Any(x:x eq 'Team')"
USER_SELECT = (
    "id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "jobTitle", "usageLocation",
    "accountEnabled", "businessPhones", "mobilePhone", "department", "officeLocation", "assignedLicenses",
)
# What a listing of users (user_page) reads of each.
LIST_SELECT = ("id", "userPrincipalName", "displayName", "usageLocation", "accountEnabled", "assignedLicenses",
               "department")
USER_TYPE = "#microsoft.graph.user"
# What the connector reads of the tenant's organization (its name, id and domains).
ORGANIZATION_SELECT = "id,displayName,verifiedDomains"
# Domain keyword -> Graph property, for create_user / update_user.
USER_PROPERTIES = {
    "display_name": "displayName", "given_name": "givenName", "surname": "surname", "job_title": "jobTitle",
    "usage_location": "usageLocation", "account_enabled": "accountEnabled", "department": "department",
    "office_location": "officeLocation", "mobile_phone": "mobilePhone", "business_phones": "businessPhones",
    "mail_nickname": "mailNickname", "user_principal_name": "userPrincipalName",
    "preferred_language": "preferredLanguage", "company_name": "companyName", "city": "city", "country": "country",
}


def _segment(value: str) -> str:
    return object_segment(value)


def _group_segment(group_id: str) -> str:
    """Graph knows groups by id only: a name, or anything else, is no group."""
    try:
        return guid_segment(group_id, "group")
    except ValidationFailed:
        raise NotFound(f"Microsoft 365 group '{str(group_id)[:64]}' not found") from None


def _graph_properties(changes: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in USER_PROPERTIES:
            raise ValidationFailed(f"{name}: not a user property that can be set")
        if value is not None:
            body[USER_PROPERTIES[name]] = list(value) if name == "business_phones" else value
    return body


def _refusal(exc: UpstreamError, *, subject: str) -> DomainError:
    """Microsoft's 400s that name a fixable problem of the request, as domain errors."""
    message = exc.message.split("): ", 1)[-1]
    if exc.status == 400 and "already exists" in message:
        return Conflict(f"{subject}: {message}")
    if exc.status == 400:
        return ValidationFailed(f"{subject}: {message}")
    return exc


# A group's members as `group_members` reads them: Graph's largest page (the default is 100) and what each member is
# known by (a DirectoryObject: its id, kind and name).
MEMBERS_PAGE = 999
MEMBER_SELECT = "id,displayName"

SKUS_SECONDS = 300.0
_SKUS: Remembered[list[SubscribedSku]] = Remembered(SKUS_SECONDS)  # tenant -> its SKUs


class DirectoryAdmin:
    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph
        self._skus: list[SubscribedSku] | None = None

    # --- users --------------------------------------------------------------------------------------

    async def users(
        self, *, filter: str | None = None, search: str | None = None, select: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[DirectoryUser]:
        """Every user (optionally filtered, e.g. "startswith(displayName,'A')"; or $search, e.g.
        '"displayName:wa"'), following Graph's pages."""
        params: dict[str, Any] = {"$select": ",".join(select or USER_SELECT)}
        headers: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if search:
            params["$search"] = search
            headers["ConsistencyLevel"] = "eventual"
        if page_size is not None:
            if not 1 <= page_size <= 999:
                raise ValidationFailed("page_size: must be between 1 and 999")
            params["$top"] = page_size
        async for item in self._graph.pages("/users", headers=headers or None, **params):
            yield DirectoryUser.from_graph(item)

    async def user_page(self, link: str | None = None, *, page_size: int, starts_with: str | None = None,
                        group: str | None = None) -> DirectoryUserPage:
        """One Graph page of `/users` ($filter startswith on the display name) or of a group's members (only
        its users); `link` is a page's URL as this method returned it."""
        if link is None:
            params: dict[str, Any] = {"$top": page_size, "$select": ",".join(LIST_SELECT)}
            if starts_with and not group:
                params["$filter"] = "startswith(displayName,'{}')".format(starts_with.replace("'", "''"))
            path = f"/groups/{guid_segment(group, 'group')}/members" if group else "/users"
            link = str(httpx.URL(f"{self._graph.base_url}{path}", params=params))
        else:
            link = self._own_page(link)
        page = (await self._graph.request("GET", link)).json()
        users = [DirectoryUser.from_graph(item) for item in page.get("value", [])
                 if not group or str(item.get("@odata.type", USER_TYPE)) == USER_TYPE]
        return DirectoryUserPage(link, users, page.get("@odata.nextLink"))

    def _own_page(self, link: str) -> str:
        """`link` (as normalised: dot segments resolved) when it is a page of this tenant's Graph; a link kept by a
        caller between two pages is never a request to another address."""
        base = httpx.URL(self._graph.base_url)
        try:
            url = httpx.URL(link)
        except httpx.InvalidURL:
            url = None
        if url is None or (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) \
                or not url.path.startswith(base.path.rstrip("/") + "/") or url.userinfo:
            raise ValidationFailed("next: not a page of this tenant's Microsoft Graph")
        return str(url)

    async def user(self, id_or_upn: str, *, select: Sequence[str] | None = None) -> DirectoryUser:
        return await self._read_user(self._graph.get, id_or_upn, select)

    async def user_batched(self, id_or_upn: str) -> DirectoryUser:
        """As `user`, possibly read in one `$batch` with the other reads this process has waiting for the tenant
        (`GraphClient.get_batched`: a bulk job's items, one round trip for up to 20)."""
        return await self._read_user(self._graph.get_batched, id_or_upn, None)

    async def _read_user(self, get: Callable[..., Awaitable[dict[str, Any]]], id_or_upn: str,
                         select: Sequence[str] | None) -> DirectoryUser:
        try:
            data = await get(f"/users/{_segment(id_or_upn)}", **{"$select": ",".join(select or USER_SELECT)})
        except NotFound:
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None
        return DirectoryUser.from_graph(data)

    async def create_user(
        self, *, user_principal_name: str, display_name: str, mail_nickname: str, password: str,
        account_enabled: bool = True, force_change_password: bool = True, **properties: Any,
    ) -> DirectoryUser:
        """Creates the user (Graph POST /users). Conflict when the UPN is taken; ValidationFailed for an
        unverified domain or an invalid property."""
        body = {
            "accountEnabled": account_enabled, "displayName": display_name, "mailNickname": mail_nickname,
            "userPrincipalName": user_principal_name,
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force_change_password},
            **_graph_properties(properties),
        }
        try:
            response = await self._graph.post("/users", body)
        except UpstreamError as exc:
            raise _refusal(exc, subject=f"user {user_principal_name}") from exc
        return DirectoryUser.from_graph(response.json())

    async def update_user(self, id_or_upn: str, **changes: Any) -> None:
        """PATCH of the given properties (display_name, usage_location, given_name, surname, job_title,
        account_enabled, department, ...); None values are left out."""
        body = _graph_properties(changes)
        if not body:
            raise ValidationFailed("nothing to update")
        try:
            await self._graph.patch(f"/users/{_segment(id_or_upn)}", body)
        except NotFound:
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None
        except UpstreamError as exc:
            raise _refusal(exc, subject=f"user {id_or_upn}") from exc

    async def update_users(self, changes: Mapping[str, Mapping[str, Any]]) -> list[UserUpdateResult]:
        """Many PATCHes through $batch (20 per round trip; throttled ones retried). Each entry maps a user
        id or UPN to its changes, keyed as for update_user. Returns one result per user, in order."""
        requests = [
            BatchRequest(str(index), "PATCH", f"/users/{_segment(user)}", body=_graph_properties(values))
            for index, (user, values) in enumerate(changes.items())
        ]
        responses = await self._graph.batch(requests)
        results = []
        for request, user in zip(requests, changes):
            error = responses[request.id].error(request)
            if isinstance(error, UpstreamError):
                error = _refusal(error, subject=f"user {user}")
            results.append(UserUpdateResult(user, error))
        return results

    async def delete_user(self, id_or_upn: str, *, missing_ok: bool = False) -> bool:
        """Deletes the user. Returns False when it did not exist and missing_ok is set."""
        try:
            await self._graph.delete(f"/users/{_segment(id_or_upn)}")
        except NotFound:
            if missing_ok:
                return False
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None
        return True

    # --- licences -----------------------------------------------------------------------------------

    async def subscribed_skus(self, *, refresh: bool = True) -> list[SubscribedSku]:
        """The tenant's SKUs with their seat counts. `refresh=False` may answer from this process's last read of
        the tenant (SKUS_SECONDS at most: a bulk job's items, each on its own connection, resolve a licence's
        name without reading them each); the seat counts are then that read's."""
        tenant = self._graph.tenant_id or ""
        if not refresh and self._skus is None and tenant:
            self._skus = await _SKUS.recall(tenant, self._read_skus)  # the items starting together read them once
        if refresh or self._skus is None:
            self._skus = await self._read_skus()
            if tenant:
                _SKUS.put(tenant, self._skus)
        return list(self._skus)

    async def _read_skus(self) -> list[SubscribedSku]:
        data = await self._graph.get("/subscribedSkus")
        return [SubscribedSku.from_graph(item) for item in data.get("value", [])]

    async def sku(self, sku: str, *, fresh: bool = True) -> SubscribedSku:
        """A subscribed SKU by skuId or skuPartNumber (e.g. MCOEV), with current seat counts (fresh=False
        may answer from this adapter's last read, for id lookups). NotFound when the tenant lacks it."""
        for refresh in ((True,) if fresh else (False, True)):
            for candidate in await self.subscribed_skus(refresh=refresh):
                if sku.lower() in (candidate.sku_id.lower(), candidate.sku_part_number.lower()):
                    return candidate
        raise NotFound(f"The tenant has no subscription for licence {sku}")

    async def licences(self, id_or_upn: str) -> list[LicenceDetail]:
        try:
            data = await self._graph.get(f"/users/{_segment(id_or_upn)}/licenseDetails",
                                         **{"$select": "skuId,skuPartNumber,servicePlans"})
        except NotFound:
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None
        return [
            LicenceDetail(str(item.get("skuId")), str(item.get("skuPartNumber")),
                          tuple(str(p.get("servicePlanName")) for p in item.get("servicePlans") or []))
            for item in data.get("value", [])
        ]

    async def assign_licences(
        self, id_or_upn: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> DirectoryUser:
        """assignLicense; SKUs by skuId or skuPartNumber. ValidationFailed when the user has no usage
        location, Conflict when a SKU has no free seat; both name the SKU."""
        adding = [await self.sku(s, fresh=False) for s in add]
        removing = [await self.sku(s, fresh=False) for s in remove]
        if not adding and not removing:
            raise ValidationFailed("no licence to add or remove")
        body = {"addLicenses": [{"skuId": s.sku_id, "disabledPlans": []} for s in adding],
                "removeLicenses": [s.sku_id for s in removing]}
        try:
            response = await self._graph.post(f"/users/{_segment(id_or_upn)}/assignLicense", body)
        except NotFound:
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None
        except UpstreamError as exc:
            raise self._licence_error(exc, id_or_upn, adding, removing) from exc
        return DirectoryUser.from_graph(response.json())

    async def assign_licences_batched(self, user_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """One user's assignLicense, sent in one `$batch` with the same change for other users that this process has
        waiting (microsoft/coalescing.py: a bulk job's items share round trips); the errors are assign_licences'."""
        adding = sorted({(await self.sku(s, fresh=False)).sku_id.lower() for s in add})
        removing = sorted({(await self.sku(s, fresh=False)).sku_id.lower() for s in remove})

        async def send(users: list[str]) -> dict[str, BaseException]:
            results = await self.assign_licences_to_many(users, add=adding, remove=removing)
            return {result.user_id: result.error for result in results if result.error is not None}

        await COALESCER.join(self._graph.shared_key("assignLicense", tuple(adding), tuple(removing)), user_id, send,
                             limit=BATCH_LIMIT)

    async def assign_licences_to_many(
        self, users: Sequence[str], *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[UserUpdateResult]:
        """The same assignLicense for many users through $batch (20 per round trip, throttled ones
        retried). One result per user, in order, with the errors assign_licences would raise."""
        adding = [await self.sku(s, fresh=False) for s in add]
        removing = [await self.sku(s, fresh=False) for s in remove]
        if not adding and not removing:
            raise ValidationFailed("no licence to add or remove")
        body = {"addLicenses": [{"skuId": s.sku_id, "disabledPlans": []} for s in adding],
                "removeLicenses": [s.sku_id for s in removing]}
        requests = [BatchRequest(str(i), "POST", f"/users/{_segment(user)}/assignLicense", body=body)
                    for i, user in enumerate(users)]
        responses = await self._graph.batch(requests)
        results = []
        for request, user in zip(requests, users):
            error = responses[request.id].error(request)
            if isinstance(error, UpstreamError):
                error = self._licence_error(error, user, adding, removing)
            results.append(UserUpdateResult(user, error))
        return results

    async def remove_licences(self, id_or_upn: str, skus: Sequence[str]) -> DirectoryUser:
        return await self.assign_licences(id_or_upn, remove=skus)

    def _licence_error(
        self, exc: UpstreamError, user: str, adding: list[SubscribedSku], removing: list[SubscribedSku]
    ) -> DomainError:
        if exc.status != 400:
            return exc
        text = exc.message.lower()
        names = ", ".join(s.sku_part_number for s in adding + removing)
        if "usage location" in text:
            return ValidationFailed(
                f"user {user}: licence {names} cannot be assigned: the user has no usage location "
                "(set usageLocation, a two-letter country code, first)"
            )
        if "available licenses" in text:
            full = next((s for s in adding if s.sku_id.lower() in text or s.sku_part_number.lower() in text), None)
            names = full.sku_part_number if full else names
            return Conflict(f"user {user}: no free seat of licence {names}: {exc.message.split('): ', 1)[-1]}")
        if "does not have a corresponding license" in text:
            return ValidationFailed(f"user {user}: does not hold licence {names}")
        return ValidationFailed(f"user {user}: licence {names}: {exc.message.split('): ', 1)[-1]}")

    # --- groups -------------------------------------------------------------------------------------

    async def groups(self, *, teams_only: bool = False, filter: str | None = None) -> AsyncIterator[DirectoryGroup]:
        clauses = [c for c in (TEAMS_FILTER if teams_only else None, filter) if c]
        params = {"$filter": " and ".join(clauses)} if clauses else {}
        async for item in self._graph.pages("/groups", **params):
            yield DirectoryGroup.from_graph(item)

    async def group(self, group_id: str) -> DirectoryGroup:
        try:
            return DirectoryGroup.from_graph(await self._graph.get(f"/groups/{_group_segment(group_id)}"))
        except NotFound:
            raise NotFound(f"Microsoft 365 group '{group_id}' not found") from None

    async def group_members(self, group_id: str) -> AsyncIterator[DirectoryObject]:
        """The group's members (id, kind, display name), in pages of MEMBERS_PAGE, each read for what a DirectoryObject
        holds of it only: at Graph's default page (100), with every default property of each user, a 5,000-member
        group took 50 requests."""
        try:
            async for item in self._graph.pages(f"/groups/{_group_segment(group_id)}/members",
                                                **{"$top": MEMBERS_PAGE, "$select": MEMBER_SELECT}):
                yield DirectoryObject.from_graph(item)
        except NotFound:
            raise NotFound(f"Microsoft 365 group '{group_id}' not found") from None

    async def add_group_member(self, group_id: str, member_id: str) -> bool:
        """Adds the member; True if added, False if it already was one (idempotent)."""
        try:
            await self._graph.post(f"/groups/{_group_segment(group_id)}/members/$ref",
                                   {"@odata.id": f"{GRAPH_OBJECT_URL}{guid_segment(member_id, 'member')}"})
        except NotFound:
            await self.group(group_id)  # raises NotFound naming the group when it is the group that is missing
            raise NotFound(f"Microsoft 365 directory object '{member_id}' not found") from None
        except UpstreamError as exc:
            if exc.status == 400 and "already exist" in exc.message:
                return False
            raise _refusal(exc, subject=f"group {group_id}") from exc
        return True

    async def remove_group_member(self, group_id: str, member_id: str) -> bool:
        """Removes the member ($ref only: never deletes the object); False if it was not a member."""
        try:
            await self._graph.delete(f"/groups/{_group_segment(group_id)}/members/{guid_segment(member_id, 'member')}/$ref")
        except NotFound:
            await self.group(group_id)
            return False
        return True

    async def member_of(self, id_or_upn: str) -> list[DirectoryObject]:
        try:
            return [DirectoryObject.from_graph(item) async for item in self._graph.pages(f"/users/{_segment(id_or_upn)}/memberOf")]
        except NotFound:
            raise NotFound(f"Microsoft 365 user '{id_or_upn}' not found") from None

    async def role_holders(self) -> dict[str, list[DirectoryObject]]:
        """Every user holding a directory role, by user id, with the roles it holds (in the order Graph lists the
        roles): the tenant's activated roles (`GET /directoryRoles`, one answer: Graph does not page them, and a
        tenant activates few) and each one's members (`_role_members`: together, not one role after another). A
        list of users reads this once, where `member_of` would cost a request per user."""
        roles = [DirectoryObject(str(item.get("id", "")), "directoryRole", item.get("displayName"),
                                 item.get("roleTemplateId"))
                 async for item in self._graph.pages("/directoryRoles", **{"$select": "id,displayName,roleTemplateId"})]
        held: dict[str, list[DirectoryObject]] = {}
        for role, members in zip(roles, await self._role_members([role.id for role in roles])):
            for member in members:
                held.setdefault(member, []).append(role)
        return held

    async def _role_members(self, role_ids: list[str]) -> list[list[str]]:
        """The member ids of each role, in the order of `role_ids`: the first page of every role in one `$batch` (20
        a call; a role alone, as it is), then any further page of a role after its own; a role deactivated since it
        was listed (not found) has none."""
        paths = [f"/directoryRoles/{guid_segment(role_id, 'role')}/members" for role_id in role_ids]
        if len(paths) == 1:
            try:
                return [[str(member.get("id", "")) async for member in self._graph.pages(paths[0], **{"$select": "id"})]]
            except NotFound:
                return [[]]
        requests = [BatchRequest(str(index), "GET", f"{path}?$select=id") for index, path in enumerate(paths)]
        responses = await self._graph.batch(requests)
        members: list[list[str]] = []
        for request in requests:
            answer = responses[request.id]
            error = answer.error(request)
            if isinstance(error, NotFound):
                members.append([])
                continue
            if error is not None:
                raise error
            page = answer.body or {}
            ids = [str(member.get("id", "")) for member in page.get("value", [])]
            next_link = page.get("@odata.nextLink")
            if next_link:
                async for more in self._graph.page_iter(str(next_link)):
                    ids += [str(member.get("id", "")) for member in more]
            members.append(ids)
        return members

    # --- tenant -------------------------------------------------------------------------------------

    async def domains(self) -> list[TenantDomain]:
        return [TenantDomain.from_graph(item) async for item in self._graph.pages(
            "/domains", **{"$select": "id,isVerified,isDefault,isInitial,supportedServices"})]

    async def organization(self) -> dict[str, Any]:
        return (await self._graph.get("/organization", **{"$select": ORGANIZATION_SELECT}))["value"][0]


def directory_admin(connection: "TenantConnection") -> DirectoryAdmin:
    return connection.directory_admin
