"""Direct Routing configuration that only the MicrosoftTeams module manages: PSTN gateways (SBCs), the
tenant's PSTN usage list, online voice routes and online voice routing policies.

Objects are rendered with the property names the module's Get-* cmdlets print. Rules the service
enforces and the emulator reproduces:
- a gateway's FQDN must sit under a verified domain of the tenant (not *.onmicrosoft.com); gateways are
  created disabled unless -Enabled $true; Identity = Fqdn;
- usages are one tenant-global list ("Global"); routes and policies may only name usages in it, and a usage
  still referenced cannot be removed;
- routes name existing gateways; NumberPattern must be a valid regular expression; Priority orders
  routes (lowest first) and a new route at a taken priority pushes the others down;
- policies are "Tag:<name>" plus the always-present "Global"; Grant refuses a policy that does not exist.
"""

import fnmatch
import re
from typing import Any

from . import teams_voice
from .cmdlet_support import (
    CmdletError,
    Output,
    Parameters,
    ambiguous,
    apply_list_change,
    boolean,
    integer,
    missing,
    string,
)
from .store import Document, Transaction, public

VOICE_ROUTING_POLICY_TYPE = "onlineVoiceRoutingPolicy"
_FQDN = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")

GATEWAY_PARAMETERS = (
    "Identity", "Fqdn", "SipSignalingPort", "Enabled", "MaxConcurrentSessions", "ForwardCallHistory", "ForwardPai",
    "SendSipOptions", "MediaBypass", "FailoverTimeSeconds", "FailoverResponseCodes", "GatewaySiteId",
    "GatewaySiteLbrEnabled", "PidfLoSupported", "ProxySbc", "BypassMode", "Description",
    "InboundTeamsNumberTranslationRules", "InboundPstnNumberTranslationRules",
    "OutboundTeamsNumberTranslationRules", "OutboundPstnNumberTranslationRules", "Force",
)


def _not_exists(kind: str, identity: str) -> CmdletError:
    return CmdletError("ManagementObjectNotFound", "ObjectNotFound", f"Cannot get \"{kind}\" \"{identity}\" because it does not exist.")


def _duplicate(kind: str, identity: str) -> CmdletError:
    return CmdletError(
        "DuplicateKeyException", "ResourceExists",
        f"Cannot create \"{kind}\" \"{identity}\" because it already exists. Use the Set cmdlet to change it.",
    )


# --- PSTN gateways -----------------------------------------------------------------------------------


def _gateway_key(tenant_id: str, fqdn: str) -> str:
    return f"{tenant_id}|{fqdn.lower()}"


def _gateway(tx: Transaction, tenant_id: str, identity: str) -> Document:
    gateway = tx.get("pstn_gateway", _gateway_key(tenant_id, identity))
    if gateway is None:
        raise _not_exists("OnlinePSTNGateway", identity)
    return gateway


def _check_fqdn_domain(tx: Transaction, tenant_id: str, fqdn: str) -> None:
    labels = fqdn.lower().split(".")
    for start in range(1, len(labels) - 1):
        domain = tx.get("domain", ".".join(labels[start:]))
        if domain is not None and domain["_tenantId"] == tenant_id and domain["isVerified"] and not domain["isInitial"]:
            return
    raise CmdletError(
        "BadRequest", "InvalidOperation", f"Can not use the \"{fqdn}\" domain as it was not configured for this tenant."
    )


def _gateway_settings(cmdlet: str, parameters: Parameters, gateway: Document) -> None:
    port = integer(cmdlet, parameters, "SipSignalingPort", 1, 65535)
    if port is not None:
        gateway["SipSignalingPort"] = port
    if "MaxConcurrentSessions" in parameters:
        # $null clears the limit.
        gateway["MaxConcurrentSessions"] = (
            None if parameters["MaxConcurrentSessions"] is None
            else integer(cmdlet, parameters, "MaxConcurrentSessions", 1, 100000)
        )
    failover = integer(cmdlet, parameters, "FailoverTimeSeconds", 1, 3600)
    if failover is not None:
        gateway["FailoverTimeSeconds"] = failover
    for name in ("Enabled", "ForwardCallHistory", "ForwardPai", "SendSipOptions", "MediaBypass", "GatewaySiteLbrEnabled", "PidfLoSupported"):
        value = boolean(cmdlet, parameters, name)
        if value is not None:
            gateway[name] = value
    for name in ("FailoverResponseCodes", "GatewaySiteId", "ProxySbc", "BypassMode", "Description"):
        if name in parameters:
            value = parameters[name]
            if value is not None and not isinstance(value, str):
                raise CmdletError(f"ParameterArgumentTransformationError,{cmdlet}", "InvalidData",
                                  f"Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" to type \"System.String\".")
            gateway[name] = value
    for name in ("InboundTeamsNumberTranslationRules", "InboundPstnNumberTranslationRules",
                 "OutboundTeamsNumberTranslationRules", "OutboundPstnNumberTranslationRules"):
        if name in parameters:
            gateway[name] = apply_list_change(cmdlet, name, gateway[name], parameters[name])


def new_pstn_gateway(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "New-CsOnlinePSTNGateway"
    if "Fqdn" in parameters and "Identity" in parameters:
        raise ambiguous(cmdlet)
    fqdn = string(cmdlet, parameters, "Fqdn") or string(cmdlet, parameters, "Identity")
    if fqdn is None:
        raise missing(cmdlet, "Fqdn")
    if "SipSignalingPort" not in parameters:
        raise missing(cmdlet, "SipSignalingPort")
    if not _FQDN.match(fqdn):
        raise CmdletError(
            f"ParameterArgumentValidationError,{cmdlet}", "InvalidData",
            f"Cannot validate argument on parameter 'Fqdn'. The argument \"{fqdn}\" is not a valid fully qualified "
            "domain name (at most 63 characters).",
        )
    fqdn = fqdn.lower()
    if tx.get("pstn_gateway", _gateway_key(tenant_id, fqdn)) is not None:
        raise _duplicate("OnlinePSTNGateway", fqdn)
    _check_fqdn_domain(tx, tenant_id, fqdn)
    gateway: Document = {
        "Identity": fqdn,
        "Fqdn": fqdn,
        "SipSignalingPort": None,
        "CodecPriority": "SILKWB,SILKNB,PCMU,PCMA",
        "ExcludedCodecs": "",
        "FailoverTimeSeconds": 10,
        "ForwardCallHistory": False,
        "ForwardPai": False,
        "SendSipOptions": True,
        "MaxConcurrentSessions": None,
        "Enabled": False,
        "MediaBypass": False,
        "GatewaySiteId": None,
        "GatewaySiteLbrEnabled": False,
        "GatewayLbrEnabledUserOverride": False,
        "FailoverResponseCodes": "408,503,504",
        "GenerateRingingWhileLocatingUser": True,
        "PidfLoSupported": False,
        "MediaRelayRoutingLocationOverride": None,
        "ProxySbc": None,
        "BypassMode": "None",
        "Description": None,
        "InboundTeamsNumberTranslationRules": [],
        "InboundPstnNumberTranslationRules": [],
        "OutboundTeamsNumberTranslationRules": [],
        "OutboundPstnNumberTranslationRules": [],
        "_tenantId": tenant_id,
    }
    _gateway_settings(cmdlet, parameters, gateway)
    tx.put("pstn_gateway", _gateway_key(tenant_id, fqdn), gateway, tenant_id)
    return [public(gateway)]


def set_pstn_gateway(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlinePSTNGateway"
    identity = string(cmdlet, parameters, "Identity", required=True)
    gateway = _gateway(tx, tenant_id, identity)  # type: ignore[arg-type]
    if "Fqdn" in parameters and str(parameters["Fqdn"]).lower() != gateway["Fqdn"]:
        raise CmdletError("BadRequest", "InvalidOperation", "The Fqdn of an existing gateway cannot be changed.")
    _gateway_settings(cmdlet, parameters, gateway)
    tx.put("pstn_gateway", _gateway_key(tenant_id, gateway["Fqdn"]), gateway, tenant_id)
    return []


def get_pstn_gateway(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Get-CsOnlinePSTNGateway"
    identity = string(cmdlet, parameters, "Identity")
    if identity is not None:
        return [public(_gateway(tx, tenant_id, identity))]
    pattern = string(cmdlet, parameters, "Filter")
    gateways = tx.list("pstn_gateway", tenant_id)
    return [public(g) for g in gateways if pattern is None or fnmatch.fnmatch(g["Identity"], pattern.lower())]


def remove_pstn_gateway(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Remove-CsOnlinePSTNGateway"
    gateway = _gateway(tx, tenant_id, string(cmdlet, parameters, "Identity", required=True))  # type: ignore[arg-type]
    users = [r["Identity"] for r in tx.list("voice_route", tenant_id)
             if gateway["Fqdn"] in (g.lower() for g in r["OnlinePstnGatewayList"])]
    if users:
        raise CmdletError(
            "BadRequest", "InvalidOperation",
            f"Cannot remove PSTN gateway \"{gateway['Fqdn']}\" because it is used by voice route(s): {', '.join(users)}.",
        )
    tx.delete("pstn_gateway", _gateway_key(tenant_id, gateway["Fqdn"]))
    return []


# --- PSTN usages -------------------------------------------------------------------------------------


def usages(tx: Transaction, tenant_id: str) -> list[str]:
    document = tx.get("pstn_usage", tenant_id)
    return list(document["Usage"]) if document else []


def _check_usages(tx: Transaction, tenant_id: str, names: list[str]) -> list[str]:
    """Usages as the tenant list spells them; an unknown one is refused."""
    known = {usage.lower(): usage for usage in usages(tx, tenant_id)}
    for name in names:
        if name.lower() not in known:
            raise CmdletError(
                "BadRequest", "InvalidArgument",
                f"The PSTN usage \"{name}\" is not in the tenant's list of PSTN usages. Add it with "
                f"Set-CsOnlinePstnUsage -Identity Global -Usage @{{Add=\"{name}\"}} first.",
            )
    return [known[name.lower()] for name in names]


def set_pstn_usage(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlinePstnUsage"
    identity = parameters.get("Identity", "Global")
    if not isinstance(identity, str) or identity.lower() != "global":
        raise _not_exists("OnlinePstnUsages", str(identity))
    if "Usage" not in parameters:
        return []
    current = usages(tx, tenant_id)
    updated = apply_list_change(cmdlet, "Usage", current, parameters["Usage"])
    removed = [u for u in current if u.lower() not in (v.lower() for v in updated)]
    for usage in removed:
        referencing = [r["Identity"] for r in tx.list("voice_route", tenant_id)
                       if usage.lower() in (u.lower() for u in r["OnlinePstnUsages"])]
        referencing += [p["Identity"] for p in tx.list("voice_routing_policy", tenant_id)
                        if usage.lower() in (u.lower() for u in p["OnlinePstnUsages"])]
        if referencing:
            raise CmdletError(
                "BadRequest", "InvalidOperation",
                f"Cannot remove PSTN usage \"{usage}\" because it is used by: {', '.join(referencing)}.",
            )
    tx.put("pstn_usage", tenant_id, {"Identity": "Global", "Usage": updated}, tenant_id)
    return []


def get_pstn_usage(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    identity = parameters.get("Identity", "Global")
    if not isinstance(identity, str) or identity.lower() != "global":
        raise _not_exists("OnlinePstnUsages", str(identity))
    return [{"Identity": "Global", "Usage": usages(tx, tenant_id)}]


# --- voice routes ------------------------------------------------------------------------------------

ROUTE_PARAMETERS = (
    "Identity", "Name", "NumberPattern", "OnlinePstnGatewayList", "OnlinePstnUsages", "Priority", "Description",
    "BridgeSourcePhoneNumber", "Force",
)


def _route_key(tenant_id: str, identity: str) -> str:
    return f"{tenant_id}|{identity.lower()}"


def _route(tx: Transaction, tenant_id: str, identity: str) -> Document:
    route = tx.get("voice_route", _route_key(tenant_id, identity))
    if route is None:
        raise _not_exists("OnlineRoute", identity)
    return route


def _route_settings(tx: Transaction, tenant_id: str, cmdlet: str, parameters: Parameters, route: Document) -> None:
    if "NumberPattern" in parameters:
        pattern = string(cmdlet, parameters, "NumberPattern", required=True)
        try:
            re.compile(pattern)  # type: ignore[arg-type]
        except re.error as exc:
            raise CmdletError(
                f"ParameterArgumentValidationError,{cmdlet}", "InvalidData",
                f"Cannot validate argument on parameter 'NumberPattern'. \"{pattern}\" is not a valid regular "
                f"expression: {exc}.",
            ) from exc
        route["NumberPattern"] = pattern
    if "OnlinePstnGatewayList" in parameters:
        gateways = apply_list_change(cmdlet, "OnlinePstnGatewayList", route["OnlinePstnGatewayList"], parameters["OnlinePstnGatewayList"])
        for fqdn in gateways:
            if tx.get("pstn_gateway", _gateway_key(tenant_id, fqdn)) is None:
                raise CmdletError(
                    "BadRequest", "InvalidArgument",
                    f"The PSTN gateway \"{fqdn}\" does not exist. Create it with New-CsOnlinePSTNGateway first.",
                )
        route["OnlinePstnGatewayList"] = [g.lower() for g in gateways]
    if "OnlinePstnUsages" in parameters:
        names = apply_list_change(cmdlet, "OnlinePstnUsages", route["OnlinePstnUsages"], parameters["OnlinePstnUsages"])
        route["OnlinePstnUsages"] = _check_usages(tx, tenant_id, names)
    if "Description" in parameters:
        route["Description"] = parameters["Description"] if parameters["Description"] is None else str(parameters["Description"])
    if "BridgeSourcePhoneNumber" in parameters:
        if route["OnlinePstnGatewayList"] and parameters["BridgeSourcePhoneNumber"]:
            raise ambiguous(cmdlet)
        route["BridgeSourcePhoneNumber"] = parameters["BridgeSourcePhoneNumber"]


def _place(tx: Transaction, tenant_id: str, route: Document, priority: int | None) -> None:
    """Insert the route at a priority; the routes from that priority on move down by one."""
    others = sorted((r for r in tx.list("voice_route", tenant_id) if r["Identity"].lower() != route["Identity"].lower()),
                    key=lambda r: r["Priority"])
    position = len(others) if priority is None else min(priority, len(others))
    ordered = others[:position] + [route] + others[position:]
    for index, item in enumerate(ordered):
        if item["Priority"] != index or item is route:
            item["Priority"] = index
            tx.put("voice_route", _route_key(tenant_id, item["Identity"]), item, tenant_id)


def new_voice_route(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "New-CsOnlineVoiceRoute"
    if "Identity" in parameters and "Name" in parameters:
        raise ambiguous(cmdlet)
    identity = string(cmdlet, parameters, "Identity") or string(cmdlet, parameters, "Name")
    if identity is None:
        raise missing(cmdlet, "Identity")
    if tx.get("voice_route", _route_key(tenant_id, identity)) is not None:
        raise _duplicate("OnlineRoute", identity)
    route: Document = {
        "Identity": identity,
        "Priority": 0,
        "Description": None,
        "NumberPattern": "[0-9]{10}",
        "OnlinePstnUsages": [],
        "OnlinePstnGatewayList": [],
        "BridgeSourcePhoneNumber": None,
        "Name": identity,
        "_tenantId": tenant_id,
    }
    _route_settings(tx, tenant_id, cmdlet, parameters, route)
    _place(tx, tenant_id, route, integer(cmdlet, parameters, "Priority", 0, 2**31 - 1))
    return [public(route)]


def set_voice_route(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlineVoiceRoute"
    route = _route(tx, tenant_id, string(cmdlet, parameters, "Identity", required=True))  # type: ignore[arg-type]
    _route_settings(tx, tenant_id, cmdlet, parameters, route)
    priority = integer(cmdlet, parameters, "Priority", 0, 2**31 - 1)
    if priority is not None:
        _place(tx, tenant_id, route, priority)
    else:
        tx.put("voice_route", _route_key(tenant_id, route["Identity"]), route, tenant_id)
    return []


def get_voice_route(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Get-CsOnlineVoiceRoute"
    identity = string(cmdlet, parameters, "Identity")
    if identity is not None:
        return [public(_route(tx, tenant_id, identity))]
    pattern = string(cmdlet, parameters, "Filter")
    routes = sorted(tx.list("voice_route", tenant_id), key=lambda r: r["Priority"])
    return [public(r) for r in routes if pattern is None or fnmatch.fnmatch(r["Identity"].lower(), pattern.lower())]


def remove_voice_route(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Remove-CsOnlineVoiceRoute"
    route = _route(tx, tenant_id, string(cmdlet, parameters, "Identity", required=True))  # type: ignore[arg-type]
    tx.delete("voice_route", _route_key(tenant_id, route["Identity"]))
    for index, item in enumerate(sorted(tx.list("voice_route", tenant_id), key=lambda r: r["Priority"])):
        if item["Priority"] != index:
            item["Priority"] = index
            tx.put("voice_route", _route_key(tenant_id, item["Identity"]), item, tenant_id)
    return []


# --- voice routing policies --------------------------------------------------------------------------

POLICY_PARAMETERS = ("Identity", "OnlinePstnUsages", "Description", "RouteType", "Force")


def policy_identity(name: str) -> str:
    """'Global' stays Global; any other name is a per-user policy 'Tag:<name>'."""
    bare = name[4:] if name.lower().startswith("tag:") else name
    return "Global" if bare.lower() == "global" and not name.lower().startswith("tag:") else f"Tag:{bare}"


def _policy_key(tenant_id: str, identity: str) -> str:
    return f"{tenant_id}|{identity.lower()}"


def _global_policy(tenant_id: str) -> Document:
    return {"Identity": "Global", "OnlinePstnUsages": [], "Description": None, "RouteType": "BYOT", "_tenantId": tenant_id}


def find_policy(tx: Transaction, tenant_id: str, name: str) -> Document | None:
    identity = policy_identity(name)
    policy = tx.get("voice_routing_policy", _policy_key(tenant_id, identity))
    if policy is None and identity == "Global":
        return _global_policy(tenant_id)
    return policy


def _policy_settings(tx: Transaction, tenant_id: str, cmdlet: str, parameters: Parameters, policy: Document) -> None:
    if "OnlinePstnUsages" in parameters:
        names = apply_list_change(cmdlet, "OnlinePstnUsages", policy["OnlinePstnUsages"], parameters["OnlinePstnUsages"])
        policy["OnlinePstnUsages"] = _check_usages(tx, tenant_id, names)
    if "Description" in parameters:
        policy["Description"] = parameters["Description"] if parameters["Description"] is None else str(parameters["Description"])
    if "RouteType" in parameters:
        if not isinstance(parameters["RouteType"], str) or parameters["RouteType"].upper() != "BYOT":
            raise CmdletError(
                f"ParameterArgumentValidationError,{cmdlet}", "InvalidData",
                f"Cannot validate argument on parameter 'RouteType'. The argument \"{parameters['RouteType']}\" does "
                "not belong to the set \"BYOT\" specified by the ValidateSet attribute.",
            )


def _save_policy(tx: Transaction, tenant_id: str, policy: Document) -> None:
    tx.put("voice_routing_policy", _policy_key(tenant_id, policy["Identity"]), policy, tenant_id)


def new_voice_routing_policy(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "New-CsOnlineVoiceRoutingPolicy"
    identity = policy_identity(string(cmdlet, parameters, "Identity", required=True))  # type: ignore[arg-type]
    if identity == "Global" or tx.get("voice_routing_policy", _policy_key(tenant_id, identity)) is not None:
        raise _duplicate("OnlineVoiceRoutingPolicy", identity)
    policy: Document = {"Identity": identity, "OnlinePstnUsages": [], "Description": None, "RouteType": "BYOT", "_tenantId": tenant_id}
    _policy_settings(tx, tenant_id, cmdlet, parameters, policy)
    _save_policy(tx, tenant_id, policy)
    teams_voice.register_policy(tx, tenant_id, VOICE_ROUTING_POLICY_TYPE, identity[4:])
    return [public(policy)]


def _existing_policy(tx: Transaction, tenant_id: str, cmdlet: str, parameters: Parameters) -> Document:
    name = string(cmdlet, parameters, "Identity", required=True)
    policy = find_policy(tx, tenant_id, name)  # type: ignore[arg-type]
    if policy is None:
        raise _not_exists("OnlineVoiceRoutingPolicy", policy_identity(name))  # type: ignore[arg-type]
    return policy


def set_voice_routing_policy(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Set-CsOnlineVoiceRoutingPolicy"
    policy = _existing_policy(tx, tenant_id, cmdlet, parameters)
    _policy_settings(tx, tenant_id, cmdlet, parameters, policy)
    _save_policy(tx, tenant_id, policy)
    return []


def all_policies(tx: Transaction, tenant_id: str) -> list[Document]:
    stored = tx.list("voice_routing_policy", tenant_id)
    if not any(p["Identity"] == "Global" for p in stored):
        stored.insert(0, _global_policy(tenant_id))
    return stored


def get_voice_routing_policy(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Get-CsOnlineVoiceRoutingPolicy"
    if "Identity" in parameters and "Filter" in parameters:
        raise ambiguous(cmdlet)
    if "Identity" in parameters:
        return [public(_existing_policy(tx, tenant_id, cmdlet, parameters))]
    pattern = string(cmdlet, parameters, "Filter")
    policies = all_policies(tx, tenant_id)
    return [public(p) for p in policies if pattern is None or fnmatch.fnmatch(p["Identity"].lower(), pattern.lower())]


def remove_voice_routing_policy(tx: Transaction, tenant_id: str, parameters: Parameters) -> Output:
    cmdlet = "Remove-CsOnlineVoiceRoutingPolicy"
    policy = _existing_policy(tx, tenant_id, cmdlet, parameters)
    if policy["Identity"] == "Global":
        # Removing Global resets it to its defaults; it never disappears.
        tx.delete("voice_routing_policy", _policy_key(tenant_id, "Global"))
        return []
    name = policy["Identity"][4:]
    holders = [c["id"] for c in tx.list("teams_user", tenant_id)
               if (c["_policies"].get(VOICE_ROUTING_POLICY_TYPE) or {}).get("displayName", "").lower() == name.lower()]
    if holders:
        raise CmdletError(
            "BadRequest", "InvalidOperation",
            f"Cannot remove \"{policy['Identity']}\" because it is assigned to {len(holders)} user(s). Assign them "
            "another policy first.",
        )
    tx.delete("voice_routing_policy", _policy_key(tenant_id, policy["Identity"]))
    return []


def grant_policy_identifier(tx: Transaction, tenant_id: str, name: str) -> tuple[str, str]:
    """(policy id, display name) for Grant-CsOnlineVoiceRoutingPolicy -PolicyName; only existing per-user
    policies can be granted, with the module's error otherwise."""
    identity = policy_identity(name)
    if identity == "Global" or tx.get("voice_routing_policy", _policy_key(tenant_id, identity)) is None:
        bare = name[4:] if name.lower().startswith("tag:") else name
        raise CmdletError(
            "PolicyNotFound", "InvalidArgument",
            f"Policy \"{bare}\" is not a user policy. You can assign only a policy that has per-user scope.",
        )
    policy = tx.get("voice_routing_policy", _policy_key(tenant_id, identity))
    display = policy["Identity"][4:]  # type: ignore[index]
    return teams_voice.register_policy(tx, tenant_id, VOICE_ROUTING_POLICY_TYPE, display), display


def state(tx: Transaction, tenant_id: str) -> dict[str, Any]:
    """The admin API's read-back of the Direct Routing configuration."""
    return {
        "gateways": [public(g) for g in tx.list("pstn_gateway", tenant_id)],
        "usages": usages(tx, tenant_id),
        "routes": [public(r) for r in sorted(tx.list("voice_route", tenant_id), key=lambda r: r["Priority"])],
        "policies": [public(p) for p in all_policies(tx, tenant_id)],
    }


CMDLETS = {
    "New-CsOnlinePSTNGateway": (new_pstn_gateway, GATEWAY_PARAMETERS),
    "Set-CsOnlinePSTNGateway": (set_pstn_gateway, GATEWAY_PARAMETERS),
    "Get-CsOnlinePSTNGateway": (get_pstn_gateway, ("Identity", "Filter")),
    "Remove-CsOnlinePSTNGateway": (remove_pstn_gateway, ("Identity", "Force")),
    "Set-CsOnlinePstnUsage": (set_pstn_usage, ("Identity", "Usage", "Force")),
    "Get-CsOnlinePstnUsage": (get_pstn_usage, ("Identity",)),
    "New-CsOnlineVoiceRoute": (new_voice_route, ROUTE_PARAMETERS),
    "Set-CsOnlineVoiceRoute": (set_voice_route, ROUTE_PARAMETERS),
    "Get-CsOnlineVoiceRoute": (get_voice_route, ("Identity", "Filter")),
    "Remove-CsOnlineVoiceRoute": (remove_voice_route, ("Identity", "Force")),
    "New-CsOnlineVoiceRoutingPolicy": (new_voice_routing_policy, POLICY_PARAMETERS),
    "Set-CsOnlineVoiceRoutingPolicy": (set_voice_routing_policy, POLICY_PARAMETERS),
    "Get-CsOnlineVoiceRoutingPolicy": (get_voice_routing_policy, ("Identity", "Filter")),
    "Remove-CsOnlineVoiceRoutingPolicy": (remove_voice_routing_policy, ("Identity", "Force")),
}
