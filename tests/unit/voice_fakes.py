"""An in-memory tenant behind the TenantVoiceAdmin port, with the Teams rules the services rely on: a
number has one holder, assigning one turns Enterprise Voice on, removing the last turns it off, creating
an existing object is refused, a policy must exist to be granted."""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from teamsvoice.core.errors import UpstreamError
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import VoiceState


def refused(message: str) -> UpstreamError:
    return UpstreamError(message, retryable=False, status=400)


@dataclass
class FakeTenantVoice:
    gateways: dict[str, PstnGateway] = field(default_factory=dict)
    usages: list[str] = field(default_factory=list)
    routes: dict[str, VoiceRoute] = field(default_factory=dict)
    policies: dict[str, VoiceRoutingPolicy] = field(default_factory=dict)
    users: dict[str, VoiceState] = field(default_factory=dict)  # by upn
    disabled: set[str] = field(default_factory=set)  # user ids whose Entra ID account is disabled
    calls: list[str] = field(default_factory=list)
    fail_transiently: int = 0  # the next N calls fail with a retryable error

    # --- test helpers (what an admin does by hand) ---------------------------------------------------
    def add_user(self, upn: str, number: str | None = None, policy: str | None = None) -> VoiceState:
        user = VoiceState(f"id-{upn}", upn, bool(number), [number] if number else [], policy)
        self.users[upn] = user
        return user

    def _set(self, upn: str, **changes: object) -> None:
        self.users[upn] = replace(self.users[upn], **changes)  # type: ignore[arg-type]

    def _user(self, upn: str) -> VoiceState:
        if upn not in self.users:
            raise refused(f"Management object not found for identity '{upn}'")
        return self.users[upn]

    def _call(self, name: str) -> None:
        if self.fail_transiently:
            self.fail_transiently -= 1
            raise UpstreamError(f"{name}: 503", retryable=True, status=503)
        self.calls.append(name)

    # --- the port --------------------------------------------------------------------------------------
    async def routing(self) -> RoutingInventory:
        self._call("routing")
        return RoutingInventory(list(self.gateways.values()), list(self.usages), list(self.routes.values()),
                                list(self.policies.values()))

    async def voice_users(self) -> list[VoiceState]:
        self._call("voice_users")
        return list(self.users.values())

    async def disabled_user_ids(self) -> set[str]:
        self._call("disabled_user_ids")
        return {user.user_id for user in self.users.values() if user.user_id in self.disabled}

    async def create_gateway(self, fqdn: str, sip_port: int) -> None:
        self._call(f"create_gateway {fqdn}")
        if fqdn in self.gateways:
            raise refused(f"Cannot create PSTN gateway {fqdn}: it already exists")
        self.gateways[fqdn] = PstnGateway(fqdn, sip_port, True)

    async def update_gateway(self, fqdn: str, sip_port: int) -> None:
        self._call(f"update_gateway {fqdn}")
        if fqdn not in self.gateways:
            raise refused(f"PSTN gateway {fqdn} not found")
        self.gateways[fqdn] = PstnGateway(fqdn, sip_port, True)

    async def add_usage(self, usage: str) -> None:
        self._call(f"add_usage {usage}")
        if usage not in self.usages:
            self.usages.append(usage)

    async def create_route(self, route: VoiceRoute) -> None:
        self._call(f"create_route {route.identity}")
        if route.identity in self.routes:
            raise refused(f"Cannot create voice route {route.identity}: it already exists")
        self.routes[route.identity] = route

    async def update_route(self, route: VoiceRoute) -> None:
        self._call(f"update_route {route.identity}")
        if route.identity not in self.routes:
            raise refused(f"voice route {route.identity} not found")
        self.routes[route.identity] = route

    async def create_policy(self, policy: VoiceRoutingPolicy) -> None:
        self._call(f"create_policy {policy.identity}")
        if policy.identity in self.policies:
            raise refused(f"Cannot create policy {policy.identity}: it already exists")
        self.policies[policy.identity] = policy

    async def update_policy(self, policy: VoiceRoutingPolicy) -> None:
        self._call(f"update_policy {policy.identity}")
        if policy.identity not in self.policies:
            raise refused(f"policy {policy.identity} not found")
        self.policies[policy.identity] = policy

    async def assign_number(self, user_principal_name: str, phone_number: str, *,
                            meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        self._call(f"assign_number {user_principal_name} {phone_number}")
        user = self._user(user_principal_name)
        if meanwhile is not None:  # Teams accepted the operation; it is refused (or applied) when it completes
            await meanwhile()
        if any(phone_number in u.phone_numbers for u in self.users.values() if u is not user):
            raise refused(f"Telephone Number '{phone_number}' has already been assigned to another user")
        self._set(user_principal_name, phone_numbers=[phone_number], enterprise_voice=True)

    async def remove_number(self, user_principal_name: str, phone_number: str) -> None:
        self._call(f"remove_number {user_principal_name} {phone_number}")
        user = self._user(user_principal_name)
        if phone_number not in user.phone_numbers:
            raise refused(f"Telephone Number '{phone_number}' is not assigned to any user or resource account.")
        left = [n for n in user.phone_numbers if n != phone_number]
        self._set(user_principal_name, phone_numbers=left, enterprise_voice=user.enterprise_voice and bool(left))

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None:
        self._call(f"set_enterprise_voice {user_principal_name} {enabled}")
        self._user(user_principal_name)
        self._set(user_principal_name, enterprise_voice=enabled)

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None:
        self._call(f"grant {user_principal_name} {policy}")
        self._user(user_principal_name)
        if policy is not None and policy not in self.policies:
            raise refused(f"Policy '{policy}' not found")
        self._set(user_principal_name, voice_routing_policy=policy)

    async def grant_voice_routing_policy_to_many(self, upns_or_ids: Iterable[str], policy: str | None) -> None:
        """All or nothing, as one Graph policy assignment call."""
        upns = list(upns_or_ids)
        self._call(f"grant many {','.join(upns)} {policy}")
        for upn in upns:
            self._user(upn)
        if policy is not None and policy not in self.policies:
            raise refused(f"Policy '{policy}' not found")
        for upn in upns:
            self._set(upn, voice_routing_policy=policy)
