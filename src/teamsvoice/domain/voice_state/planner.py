"""Plan: compare a tenant's desired state with what Microsoft holds and list the differences, each with
what apply would do. Pure: no I/O, so it is tested against plain data and is fast on large tenants.

Actions: `create` (missing in Microsoft), `change` (present with another value), `remove` (present in
Microsoft, or in teamsvoice's records, though the desired state says it should not be), `leave` (a
difference apply will not touch, with the reason). Each difference also names the out-of-band change it
most likely comes from (`drift`): a number moved to another user, a policy granted by hand, a route
deleted, a user deleted in Entra ID while holding a number, ...

A user deleted or disabled in Entra ID while teamsvoice's records give it a number or calling is offboarding
done halfway (a resource account's user is not: Microsoft creates it disabled), and apply finishes it the way
offboarding does: the record loses number and calling and the number goes to quarantine, then back to the
inventory (`account` remove, a `record` operation). A disabled
user still exists in Teams, so apply also removes its numbers there and turns Enterprise Voice off (drift
`user_disabled` on its `phoneNumber` and `enterpriseVoice` differences); a deleted user's numbers went with it.
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

from teamsvoice.domain.tenant_voice import configuration, rules
from teamsvoice.domain.voice_state.state import Assignment, DesiredState, ObservedState
from teamsvoice.microsoft.calling_ports import PstnGateway, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import VoiceState

Action = Literal["create", "change", "remove", "leave"]
ACTIONS: tuple[Action, ...] = ("create", "change", "remove", "leave")
# Apply order: configuration first (a policy must exist before it is granted), then numbers are freed
# before they are given (a number moved by hand goes back to its owner), then the users.
_PHASES = {"gateway": 0, "usage": 1, "route": 2, "policy": 3, "number": 4, "user": 5}


@dataclass(frozen=True)
class Difference:
    id: str  # stable across plans: "<kind>:<object>[:<field>]"
    kind: str  # gateway, usage, route, policy, number, user
    object: str  # FQDN, identity, number or user principal name
    field: str | None  # for users: phoneNumber, voiceRoutingPolicy, enterpriseVoice, account
    action: Action
    desired: Any
    observed: Any
    drift: str  # what most likely happened
    detail: str
    user_id: str | None = None  # the Microsoft user the difference is about (users and numbers)

    def wire(self) -> dict[str, Any]:
        body = asdict(self)
        body["userId"] = body.pop("user_id")
        return body


def difference_from_wire(body: dict[str, Any]) -> Difference:
    fields = dict(body)
    fields["user_id"] = fields.pop("userId", None)
    return Difference(**fields)


@dataclass
class Plan:
    tenant_id: str
    differences: list[Difference]

    @property
    def empty(self) -> bool:
        return not self.differences

    def counts(self) -> dict[str, int]:
        return {action: sum(1 for d in self.differences if d.action == action) for action in ACTIONS}

    def wire(self) -> dict[str, Any]:
        return {"tenantId": self.tenant_id, "empty": self.empty, "counts": self.counts(),
                "differences": [d.wire() for d in self.differences]}


def _wire(obj: Any) -> Any:
    """The Difference values of a configuration object (as the API shows them)."""
    if isinstance(obj, PstnGateway):
        return {"sipSignalingPort": obj.sip_port, "enabled": obj.enabled}
    if isinstance(obj, VoiceRoute):
        return {"numberPattern": obj.number_pattern, "gateways": list(obj.gateways), "pstnUsages": list(obj.usages)}
    if isinstance(obj, VoiceRoutingPolicy):
        return {"pstnUsages": list(obj.usages)}
    return obj


_NOUNS = {"gateway": "PSTN gateway", "usage": "PSTN usage", "route": "Voice route", "policy": "Voice routing policy"}


def _configuration(desired: DesiredState, observed: ObservedState) -> list[Difference]:
    """Gateways, usages, routes and policies, compared by the one rule of domain/tenant_voice/configuration."""
    out: list[Difference] = []
    for change in configuration.changes(desired.routing, observed.routing):
        noun = _NOUNS[change.kind]
        missing = change.seen is None
        drift = f"{change.kind}_{'deleted' if missing else 'changed'}"
        where = ("is missing in the tenant" if change.kind in ("gateway", "usage") else "was deleted in the tenant") \
            if missing else "was changed in the tenant"
        out.append(Difference(f"{change.kind}:{change.identity}", change.kind, change.identity, None, change.action,
                              _wire(change.wanted), None if missing else _wire(change.seen), drift,
                              f"{noun} {change.identity} {where}"))
    return out


def _user(want: Assignment, seen: VoiceState, holders: dict[str, VoiceState], policies: set[str]) -> list[Difference]:
    upn, out = want.user_principal_name, []
    base = f"user:{upn}"
    if not want.calling_enabled:
        if seen.phone_numbers:
            out.append(Difference(f"{base}:phoneNumber", "user", upn, "phoneNumber", "remove", None, seen.phone_numbers,
                                  "number_assigned_by_hand", f"{upn} has calling disabled but holds "
                                  f"{', '.join(seen.phone_numbers)} in Teams", seen.user_id))
        elif seen.enterprise_voice:
            out.append(Difference(f"{base}:enterpriseVoice", "user", upn, "enterpriseVoice", "change", False, True,
                                  "enterprise_voice_changed", f"{upn} has calling disabled but Enterprise Voice on",
                                  seen.user_id))
        return out
    wanted = [want.phone_number] if want.phone_number else []
    if seen.phone_numbers != wanted:
        holder = holders.get(want.phone_number or "")
        if want.phone_number and holder is not None and holder.user_id != seen.user_id:
            drift, detail = "number_moved", f"{want.phone_number} of {upn} was moved to {holder.user_principal_name}"
        elif not wanted:
            drift, detail = "number_assigned_by_hand", f"{upn} should hold no number but holds {', '.join(seen.phone_numbers)}"
        elif not seen.phone_numbers:
            drift, detail = "number_removed", f"{upn} lost {want.phone_number}"
        else:
            drift, detail = "number_changed", f"{upn} holds {', '.join(seen.phone_numbers)} instead of {want.phone_number}"
        action: Any = "remove" if not wanted else "create" if not seen.phone_numbers else "change"
        out.append(Difference(f"{base}:phoneNumber", "user", upn, "phoneNumber", action, want.phone_number,
                              seen.phone_numbers or None, drift, detail, seen.user_id))
    elif not want.phone_number and not seen.enterprise_voice:
        out.append(Difference(f"{base}:enterpriseVoice", "user", upn, "enterpriseVoice", "change", True, False,
                              "enterprise_voice_changed", f"{upn} has Enterprise Voice off", seen.user_id))
    policy, seen_policy = want.voice_routing_policy, seen.voice_routing_policy
    if not rules.same_policy_name(policy, seen_policy):
        if policy and policy.lower() not in policies:
            out.append(Difference(f"{base}:voiceRoutingPolicy", "user", upn, "voiceRoutingPolicy", "leave", policy,
                                  seen_policy, "policy_deleted", f"{upn} should have voice routing policy {policy}, "
                                  "which does not exist in the tenant and is not teamsvoice's to create", seen.user_id))
        else:
            action = "create" if seen_policy is None else "remove" if policy is None else "change"
            drift = "policy_removed" if seen_policy is None else "policy_granted_by_hand"
            out.append(Difference(f"{base}:voiceRoutingPolicy", "user", upn, "voiceRoutingPolicy", action, policy,
                                  seen_policy, drift, f"{upn} has voice routing policy {seen_policy or 'Global'} instead "
                                  f"of {policy or 'Global'}", seen.user_id))
    return out


def _disabled(want: Assignment, seen: VoiceState) -> list[Difference]:
    """The offboarding of a user disabled in Entra ID, finished (see the module's docstring)."""
    upn, base = want.user_principal_name, f"user:{want.user_principal_name}"
    held = f" while holding {want.phone_number}" if want.phone_number else " while enabled for calling"
    out = [Difference(f"{base}:account", "user", upn, "account", "remove", {"phoneNumber": want.phone_number},
                      {"accountEnabled": False}, "user_disabled",
                      f"{upn} was disabled in Entra ID{held}; apply offboards it: its numbers are removed in Teams and "
                      "teamsvoice's records free its number (after the quarantine)", seen.user_id)]
    if seen.phone_numbers:
        out.append(Difference(f"{base}:phoneNumber", "user", upn, "phoneNumber", "remove", None, seen.phone_numbers,
                              "user_disabled", f"{upn} is disabled in Entra ID but holds {', '.join(seen.phone_numbers)} "
                              "in Teams", seen.user_id))
    if seen.enterprise_voice:
        out.append(Difference(f"{base}:enterpriseVoice", "user", upn, "enterpriseVoice", "change", False, True,
                              "user_disabled", f"{upn} is disabled in Entra ID but has Enterprise Voice on", seen.user_id))
    return out


def plan(desired: DesiredState, observed: ObservedState) -> Plan:
    differences = _configuration(desired, observed)
    by_id = {u.user_id: u for u in observed.users}
    by_upn = {u.user_principal_name.lower(): u for u in observed.users}
    holders = {n: u for u in observed.users for n in u.phone_numbers}
    policies = {p.identity.lower() for p in observed.routing.policies} | {p.identity.lower() for p in desired.routing.policies}
    managed: set[str] = set()
    wanted_holder: dict[str, str] = {}
    for want in desired.users:
        seen = by_id.get(want.user_id) if want.user_id else None
        seen = seen or by_upn.get(want.user_principal_name.lower())
        if seen is None:
            if want.phone_number or want.calling_enabled:
                held = f" while holding {want.phone_number}" if want.phone_number else ""
                differences.append(Difference(
                    f"user:{want.user_principal_name}:account", "user", want.user_principal_name, "account", "remove",
                    {"phoneNumber": want.phone_number}, None, "user_deleted",
                    f"{want.user_principal_name} was deleted in Entra ID{held}; apply frees the number in "
                    "teamsvoice's records", want.user_id))
            continue
        managed.add(seen.user_id)
        if (seen.user_id in observed.disabled_user_ids and not want.resource_account
                and (want.phone_number or want.calling_enabled)):
            differences.extend(_disabled(want, seen))
            continue
        if want.phone_number and want.calling_enabled:
            wanted_holder[want.phone_number] = want.user_principal_name
        differences.extend(_user(want, seen, holders, policies))
    ours = set(desired.inventory) | {u.phone_number for u in desired.users if u.phone_number}
    for user in observed.users:
        if user.user_id in managed:
            continue  # its own differences set all its numbers
        for number in user.phone_numbers:
            if number not in ours:
                continue
            rightful = wanted_holder.get(number)
            drift, detail = (("number_moved", f"{number} of {rightful} was moved to {user.user_principal_name}")
                             if rightful else ("number_assigned_by_hand",
                                               f"{number} is free in the inventory but assigned to {user.user_principal_name}"))
            differences.append(Difference(f"number:{number}", "number", number, None, "remove", rightful,
                                          user.user_principal_name, drift, detail, user.user_id))
    differences.sort(key=lambda d: (_PHASES[d.kind], d.id))
    return Plan(desired.tenant_id, differences)
