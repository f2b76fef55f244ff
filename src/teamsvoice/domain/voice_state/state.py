"""A tenant's voice state in domain terms: what teamsvoice wants (desired) and what Microsoft holds
(observed), and the JSON document a desired state exports to and restores from.

The desired state covers the Direct Routing configuration teamsvoice made (gateways, PSTN usages, voice
routes, voice routing policies) and every voice user's assignment (number, voice routing policy,
Enterprise Voice). Objects in the tenant that teamsvoice did not make are not part of it and are left
alone; numbers are the exception: a number of the customer's inventory is teamsvoice's to place.
"""

from dataclasses import dataclass, field
from typing import Any

from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import name_problem
from teamsvoice.domain.fusion.numbers import parse_full_number
from teamsvoice.domain.tenant_voice.rules import check_policy_name
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import VoiceState

DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class Assignment:
    """One voice user's wanted configuration. `calling_enabled` False wants no number and no Enterprise Voice.
    `resource_account`: the record is a resource account's (a call queue's, an auto attendant's), whose Entra ID
    account Microsoft creates disabled: that is no offboarding."""

    user_principal_name: str
    user_id: str | None
    phone_number: str | None
    voice_routing_policy: str | None
    calling_enabled: bool
    resource_account: bool = False


@dataclass
class DesiredState:
    tenant_id: str
    routing: RoutingInventory = field(default_factory=RoutingInventory)
    users: list[Assignment] = field(default_factory=list)
    # Numbers of the customer's inventory (whoever holds them): a holder outside `users` is drift.
    inventory: frozenset[str] = frozenset()


@dataclass
class ObservedState:
    """The tenant as Microsoft reports it."""

    routing: RoutingInventory
    users: list[VoiceState]
    # Object ids of the tenant's users whose Entra ID account is disabled (accountEnabled false).
    disabled_user_ids: frozenset[str] = frozenset()


# --- export / restore ---------------------------------------------------------------------------------


def export_document(state: DesiredState) -> dict[str, Any]:
    routing = state.routing
    return {
        "version": DOCUMENT_VERSION,
        "tenantId": state.tenant_id,
        "gateways": [{"fqdn": g.fqdn, "sipSignalingPort": g.sip_port, "enabled": g.enabled} for g in routing.gateways],
        "pstnUsages": list(routing.usages),
        "voiceRoutes": [{"identity": r.identity, "numberPattern": r.number_pattern, "gateways": list(r.gateways),
                         "pstnUsages": list(r.usages), "priority": r.priority} for r in routing.routes],
        "voiceRoutingPolicies": [{"identity": p.identity, "pstnUsages": list(p.usages)} for p in routing.policies],
        "users": [{"userPrincipalName": u.user_principal_name, "phoneNumber": u.phone_number,
                   "voiceRoutingPolicy": u.voice_routing_policy, "callingEnabled": u.calling_enabled}
                  for u in sorted(state.users, key=lambda a: a.user_principal_name)],
    }


def _field(entry: Any, name: str, kind: type, where: str, *, optional: bool = False) -> Any:
    if not isinstance(entry, dict):
        raise ValidationFailed(f"{where}: must be an object")
    value = entry.get(name)
    if value is None and optional:
        return None
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ValidationFailed(f"{where}.{name}: must be {'a string' if kind is str else kind.__name__}")
    return value


def _strings(entry: Any, name: str, where: str) -> list[str]:
    value = _field(entry, name, list, where)
    if not all(isinstance(v, str) and v for v in value):
        raise ValidationFailed(f"{where}.{name}: must be a list of strings")
    return list(value)


def _list(document: dict[str, Any], name: str) -> list[Any]:
    value = document.get(name, [])
    if not isinstance(value, list):
        raise ValidationFailed(f"{name}: must be a list")
    return value


FQDN_MAX_LENGTH = 255


def _gateway(entry: Any, where: str) -> PstnGateway:
    fqdn = _field(entry, "fqdn", str, where).strip().lower()
    problem = "is required" if not fqdn else name_problem(fqdn, FQDN_MAX_LENGTH) or (
        "must be a host name (no spaces)" if " " in fqdn else None)
    if problem is not None:
        raise ValidationFailed(f"{where}.fqdn: {problem}")
    port = _field(entry, "sipSignalingPort", int, where)
    if not 0 < port < 65536:
        raise ValidationFailed(f"{where}.sipSignalingPort: must be a port, 1 to 65535")
    enabled = _field(entry, "enabled", bool, where, optional=True)
    return PstnGateway(fqdn, port, True if enabled is None else enabled)


def parse_document(document: Any) -> DesiredState:
    """The inverse of `export_document`; every field checked, naming the first bad one."""
    if not isinstance(document, dict):
        raise ValidationFailed("The voice state document must be a JSON object")
    if document.get("version") != DOCUMENT_VERSION:
        raise ValidationFailed(f"version: must be {DOCUMENT_VERSION}")
    gateways = [_gateway(g, f"gateways[{i}]") for i, g in enumerate(_list(document, "gateways"))]
    usages = _list(document, "pstnUsages")
    if not all(isinstance(u, str) and u for u in usages):
        raise ValidationFailed("pstnUsages: must be a list of strings")
    routes = [VoiceRoute(_field(r, "identity", str, f"voiceRoutes[{i}]"), _field(r, "numberPattern", str, f"voiceRoutes[{i}]"),
                         _strings(r, "gateways", f"voiceRoutes[{i}]"), _strings(r, "pstnUsages", f"voiceRoutes[{i}]"),
                         _field(r, "priority", int, f"voiceRoutes[{i}]", optional=True) or 0)
              for i, r in enumerate(_list(document, "voiceRoutes"))]
    policies = [VoiceRoutingPolicy(_field(p, "identity", str, f"voiceRoutingPolicies[{i}]"),
                                   _strings(p, "pstnUsages", f"voiceRoutingPolicies[{i}]"))
                for i, p in enumerate(_list(document, "voiceRoutingPolicies"))]
    users: list[Assignment] = []
    seen: set[str] = set()
    numbers: set[str] = set()
    for i, u in enumerate(_list(document, "users")):
        upn = _field(u, "userPrincipalName", str, f"users[{i}]").lower()
        if "@" not in upn or upn in seen:
            raise ValidationFailed(f"users[{i}].userPrincipalName: '{upn}' is not a user principal name or appears twice")
        number = _field(u, "phoneNumber", str, f"users[{i}]", optional=True)
        if number is not None:
            # E.164 with its +, normalised: the number's owner, quarantine and uniqueness are looked up by that form,
            # so '3222100100' or '+32 2 210 01 00' would have passed them as numbers nobody holds.
            number = parse_full_number(number, f"users[{i}].phoneNumber")
            if number in numbers:
                raise ValidationFailed(f"users[{i}].phoneNumber: {number} is given to two users")
            numbers.add(number)
        seen.add(upn)
        policy = check_policy_name(f"users[{i}].voiceRoutingPolicy",
                                   _field(u, "voiceRoutingPolicy", str, f"users[{i}]", optional=True))
        users.append(Assignment(upn, None, number, policy, bool(_field(u, "callingEnabled", bool, f"users[{i}]"))))
    tenant_id = document.get("tenantId")
    return DesiredState(str(tenant_id or ""), RoutingInventory(gateways, list(usages), routes, policies), users)


def rename_domain(state: DesiredState, old: str, new: str) -> DesiredState:
    """The state moved to a tenant whose domain is `new` in place of `old`: user principal names and
    gateway FQDNs under `old` move under `new` (a replacement tenant)."""
    old, new = old.lower().strip("."), new.lower().strip(".")

    def moved(name: str, separator: str) -> str:
        return name[: -len(old)] + new if name.lower().endswith(separator + old) else name

    routing = state.routing
    return DesiredState(
        state.tenant_id,
        RoutingInventory(
            [PstnGateway(moved(g.fqdn, "."), g.sip_port, g.enabled) for g in routing.gateways], list(routing.usages),
            [VoiceRoute(r.identity, r.number_pattern, [moved(g, ".") for g in r.gateways], list(r.usages), r.priority)
             for r in routing.routes],
            list(routing.policies)),
        [Assignment(moved(u.user_principal_name, "@"), None, u.phone_number, u.voice_routing_policy, u.calling_enabled)
         for u in state.users],
        state.inventory)
