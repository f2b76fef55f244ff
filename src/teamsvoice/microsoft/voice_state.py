"""The tenant-wide Teams voice port (ports.TenantVoiceAdmin) on the existing clients: users' voice
configurations in bulk from Graph's admin/teams/userConfigurations, numbers and policy grants through
Graph's admin/teams (microsoft/teams_voice.py), Direct Routing objects (gateways, usages, routes, policies)
through the MicrosoftTeams cmdlets, which Graph does not offer."""

import asyncio
from collections.abc import Iterable

from teamsvoice.microsoft.calling_ports import RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.direct_routing import CmdletDirectRouting
from teamsvoice.core.errors import NotFound, UpstreamError
from teamsvoice.microsoft.directory_ports import DirectoryAdministration
from teamsvoice.microsoft.ports import TenantConnection, VoiceState
from teamsvoice.microsoft.teams_voice import TeamsVoiceAdapter


class TenantVoiceAdapter:
    def __init__(self, connection: TenantConnection) -> None:
        self._routing = CmdletDirectRouting(connection.cmdlets, connection.tenant_id)
        self._graph = connection.graph
        voice = connection.voice
        self._voice = voice if isinstance(voice, TeamsVoiceAdapter) else TeamsVoiceAdapter(connection.graph, connection.cmdlets)

    async def routing(self) -> RoutingInventory:
        return await self._routing.inventory()

    async def voice_users(self) -> list[VoiceState]:
        return await self._voice.voice_users()

    async def disabled_user_ids(self) -> set[str]:
        # teamsUserConfiguration carries no accountEnabled: the directory answers, one filtered read.
        return {str(u["id"]) async for u in self._graph.pages(
            "/users", **{"$filter": "accountEnabled eq false", "$select": "id,accountEnabled", "$top": "999"})}

    async def create_gateway(self, fqdn: str, sip_port: int) -> None:
        await self._routing.create_gateway(fqdn, sip_port)

    async def update_gateway(self, fqdn: str, sip_port: int) -> None:
        await self._routing.update_gateway(fqdn, sip_port)

    async def add_usage(self, usage: str) -> None:
        await self._routing.add_usage(usage)

    async def create_route(self, route: VoiceRoute) -> None:
        await self._routing.create_route(route)

    async def update_route(self, route: VoiceRoute) -> None:
        await self._routing.update_route(route)

    async def create_policy(self, policy: VoiceRoutingPolicy) -> None:
        await self._routing.create_policy(policy)

    async def update_policy(self, policy: VoiceRoutingPolicy) -> None:
        await self._routing.update_policy(policy)

    async def assign_number(self, user_principal_name: str, phone_number: str) -> None:
        await self._voice.assign_number(user_principal_name, phone_number)

    async def remove_number(self, user_principal_name: str, phone_number: str) -> None:
        await self._voice.remove_number(user_principal_name, phone_number)

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None:
        await self._voice.set_enterprise_voice(user_principal_name, enabled)

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None:
        await self._voice.grant_voice_routing_policy(user_principal_name, policy)

    async def grant_voice_routing_policy_to_many(self, upns_or_ids: Iterable[str], policy: str | None) -> None:
        await self._voice.grant_voice_routing_policy_to_many(upns_or_ids, policy)


def tenant_voice(connection: TenantConnection) -> TenantVoiceAdapter:
    return TenantVoiceAdapter(connection)


async def lookup_user_ids(directory: DirectoryAdministration, upns: list[str]) -> dict[str, str]:
    """The Microsoft object id of each user principal name that exists in the tenant, all asked at once (up to 20
    in one `$batch`: a document of 1,000 users was 1,000 round trips one after another in one request)."""
    async def object_id(upn: str) -> str | None:
        try:
            return (await directory.user_batched(upn)).id
        except NotFound:
            return None
        except UpstreamError as exc:
            if exc.status != 404:
                raise
            return None

    ids = await asyncio.gather(*(object_id(upn) for upn in upns))
    return {upn: found for upn, found in zip(upns, ids) if found is not None}


class UserAccountsAdapter:
    def __init__(self, connection: TenantConnection) -> None:
        self._directory = connection.directory_admin

    async def disable(self, id_or_upn: str) -> None:
        await self._directory.update_user(id_or_upn, account_enabled=False)

    async def delete(self, id_or_upn: str) -> None:
        await self._directory.delete_user(id_or_upn, missing_ok=True)
