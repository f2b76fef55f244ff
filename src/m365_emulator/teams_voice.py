"""Teams voice state shared by Graph's teamsAdministration API and the PowerShell cmdlets: phone number
assignments, Enterprise Voice, and per-user policy assignments. One state, two surfaces."""

import re
import uuid
from typing import Any

from . import catalog, clock
from .directory import number_key
from .store import Document, Transaction

NUMBER_TYPES = ("directRouting", "callingPlan", "operatorConnect")
ASSIGNMENT_CATEGORIES = ("primary", "private", "alternate")
_NUMBER = re.compile(r"^\+?([0-9]{4,15})(;ext=[0-9]{1,10})?$")  # (ASCII digits: \d takes every script's)
_POLICY_NAMESPACE = uuid.UUID("0f6c7c6e-3a55-4f0b-9b5e-0b9c2f1d8a21")
# The SKUs whose service plans give a user Teams Phone (MCOEV): Teams Phone Standard itself, or a suite with it.
_USER_PHONE_SKUS = {sku["skuId"] for sku in catalog.SKUS.values()
                    if any(plan == "MCOEV" for _, plan in sku["servicePlans"])}
# A resource account's number needs Teams Phone Resource Account (free) or a paid Teams Phone.
_PHONE_SYSTEM_SKUS = _USER_PHONE_SKUS | {catalog.SKUS["PHONESYSTEM_VIRTUALUSER"]["skuId"]}
# Set-CsPhoneNumberAssignment's -PhoneNumberType names, by Graph's numberType.
_TYPE_NAMES = {"directRouting": "DirectRouting", "callingPlan": "CallingPlan", "operatorConnect": "OperatorConnect"}


class VoiceError(Exception):
    """A Teams voice rule refused the change; the message is Teams' own wording."""


def normalize_number(raw: str) -> str:
    """E.164 with a leading '+', keeping a Direct Routing ';ext=' suffix. Teams rejects 'tel:' here."""
    match = _NUMBER.match(raw.strip().replace(" ", "")) if isinstance(raw, str) else None
    if match is None:
        raise VoiceError(f"The telephone number '{raw}' is not in a valid format. Use E.164, e.g. +12065551234.")
    return f"+{match.group(1)}{match.group(2) or ''}"


def user_numbers(tx: Transaction, tenant_id: str, user_id: str) -> list[Document]:
    return tx.list_by("number", tenant_id, "assignmentTargetId", user_id)


def _touch(tx: Transaction, tenant_id: str, user_id: str, **changes: Any) -> None:
    configuration = tx.get("teams_user", user_id)
    if configuration is None:
        raise VoiceError(f"Management object not found for identity '{user_id}'.")
    configuration.update(changes, modifiedDateTime=clock.iso_now())
    tx.put("teams_user", user_id, configuration, tenant_id)


def assign_number(
    tx: Transaction,
    user: Document,
    telephone_number: str,
    number_type: str,
    category: str = "primary",
    location_id: str | None = None,
) -> None:
    """Assign (idempotently) a number; a new primary number replaces the user's previous one, and
    assigning any number turns Enterprise Voice on."""
    tenant_id = user["_tenantId"]
    number = normalize_number(telephone_number)
    configuration = tx.get("teams_user", user["id"])
    if configuration is None:  # refused before anything is written, as every rule here
        raise VoiceError(f"Management object not found for identity '{user['id']}'.")
    if configuration.get("accountType") == "resourceAccount":
        if ";ext=" in number:
            raise VoiceError(
                f"Telephone Number '{number}' with an extension cannot be assigned to a resource account. "
                "Extensions are supported for users only."
            )
        if not any(licence["skuId"] in _PHONE_SYSTEM_SKUS for licence in user["assignedLicenses"]):
            raise VoiceError(
                f"The resource account '{user['userPrincipalName']}' requires a Microsoft Teams Phone Resource "
                "Account (PHONESYSTEM_VIRTUALUSER) or Teams Phone Standard license before a phone number can be "
                "assigned."
            )
    existing = tx.get("number", number_key(tenant_id, number))
    if existing is not None and existing["assignmentTargetId"] != user["id"]:
        raise VoiceError(f"Telephone Number '{number}' has already been assigned to another user")
    if configuration.get("accountType") != "resourceAccount" and not any(
        licence["skuId"] in _USER_PHONE_SKUS for licence in user["assignedLicenses"]
    ):
        # Teams gives a user a number only with a Teams Phone (MCOEV) licence, in Microsoft's own words (module
        # 3.x's Set-CsPhoneNumberAssignment, as quoted in MicrosoftDocs/office-docs-powershell issue 9281).
        raise VoiceError(
            f"User '{user['id']}' lacks appropriate licenses to assign a "
            f"'{_TYPE_NAMES.get(number_type, number_type)}' number."
        )
    if category == "primary":
        for previous in user_numbers(tx, tenant_id, user["id"]):
            if previous["assignmentCategory"] == "primary" and previous["telephoneNumber"] != number:
                tx.delete("number", number_key(tenant_id, previous["telephoneNumber"]))
    tx.put(
        "number",
        number_key(tenant_id, number),
        {
            "id": number.lstrip("+"),
            "telephoneNumber": number,
            "assignmentTargetId": user["id"],
            "numberType": number_type,
            "assignmentCategory": category,
            "locationId": location_id,
            "assignedDateTime": clock.iso_now(),
            # How many assignment requests this holder's number has seen (admin view only): lets tests
            # check that durable work never assigned the same number twice.
            "_assignCount": (existing or {}).get("_assignCount", 0) + 1,
        },
        tenant_id,
    )
    _touch(tx, tenant_id, user["id"], isEnterpriseVoiceEnabled=True)


def unassign_number(tx: Transaction, tenant_id: str, telephone_number: str) -> None:
    """Release a number; a user left without numbers loses Enterprise Voice, as in Teams."""
    number = normalize_number(telephone_number)
    existing = tx.get("number", number_key(tenant_id, number))
    if existing is None:
        raise VoiceError(f"Telephone Number '{number}' is not assigned to any user or resource account.")
    tx.delete("number", number_key(tenant_id, number))
    if not user_numbers(tx, tenant_id, existing["assignmentTargetId"]):
        _touch(tx, tenant_id, existing["assignmentTargetId"], isEnterpriseVoiceEnabled=False)


def update_number(tx: Transaction, tenant_id: str, telephone_number: str, changes: dict[str, Any]) -> None:
    """Graph's updateNumber: the optional attributes of a number of the tenant (locationId, networkSiteId,
    reverseNumberLookupOptions); a number the tenant does not hold is refused."""
    number = normalize_number(telephone_number)
    existing = tx.get("number", number_key(tenant_id, number))
    if existing is None:
        raise VoiceError(f"Telephone Number '{number}' was not found in the tenant.")
    tx.put("number", number_key(tenant_id, number), {**existing, **changes}, tenant_id)


def remove_all_numbers(tx: Transaction, user: Document) -> None:
    for number in user_numbers(tx, user["_tenantId"], user["id"]):
        tx.delete("number", number_key(user["_tenantId"], number["telephoneNumber"]))
    _touch(tx, user["_tenantId"], user["id"], isEnterpriseVoiceEnabled=False)


def set_enterprise_voice(tx: Transaction, user: Document, enabled: bool) -> None:
    _touch(tx, user["_tenantId"], user["id"], isEnterpriseVoiceEnabled=enabled)


def policy_id(policy_type: str, name: str) -> str:
    """Policy ids are stable per (type, name), matching what getPolicyId reports."""
    return str(uuid.uuid5(_POLICY_NAMESPACE, f"{policy_type.lower()}|{name.lower()}"))


def register_policy(tx: Transaction, tenant_id: str, policy_type: str, name: str) -> str:
    identifier = policy_id(policy_type, name)
    tx.put("policy", f"{tenant_id}|{identifier}", {"policyType": policy_type, "name": name}, tenant_id)
    return identifier


def assign_policy(tx: Transaction, user: Document, policy_type: str, identifier: str | None) -> None:
    """Direct per-user assignment; None removes it so the user falls back to the global policy."""
    configuration = tx.get("teams_user", user["id"])
    if configuration is None:
        raise VoiceError(f"Management object not found for identity '{user['id']}'.")
    policies = dict(configuration["_policies"])
    if identifier is None:
        policies.pop(policy_type, None)
    else:
        known = tx.get("policy", f"{user['_tenantId']}|{identifier}")
        policies[policy_type] = {"policyId": identifier, "displayName": known["name"] if known else identifier}
    _touch(tx, user["_tenantId"], user["id"], _policies=policies)


def policy_name(tx: Transaction, user_id: str, policy_type: str) -> str | None:
    configuration = tx.get("teams_user", user_id)
    assignment = configuration["_policies"].get(policy_type) if configuration else None
    return assignment["displayName"] if assignment else None


def feature_types(user: Document) -> list[str]:
    features = ["Teams", "AudioConferencing"]
    if any(licence["skuId"] in _PHONE_SYSTEM_SKUS for licence in user["assignedLicenses"]):
        features.append("PhoneSystem")
    return features


def numbers_by_user(tx: Transaction, tenant_id: str) -> dict[str, list[Document]]:
    """Every assigned number of the tenant by holder, read once (for listing many users' configurations)."""
    held: dict[str, list[Document]] = {}
    for number in tx.list("number", tenant_id):
        held.setdefault(number["assignmentTargetId"], []).append(number)
    return held


def user_configuration(tx: Transaction, user: Document, held: dict[str, list[Document]] | None = None) -> Document:
    """Graph's teamsAdministration.teamsUserConfiguration for a user (`held`: numbers_by_user, when listing)."""
    configuration = tx.get("teams_user", user["id"]) or {}
    numbers = held.get(user["id"], []) if held is not None else user_numbers(tx, user["_tenantId"], user["id"])
    return {
        "id": user["id"],
        "userPrincipalName": user["userPrincipalName"],
        "tenantId": user["_tenantId"],
        "accountType": configuration.get("accountType", "user"),
        "isEnterpriseVoiceEnabled": configuration.get("isEnterpriseVoiceEnabled", False),
        "featureTypes": feature_types(user),
        "telephoneNumbers": [
            {"telephoneNumber": number["telephoneNumber"], "assignmentCategory": number["assignmentCategory"]}
            for number in numbers
        ],
        "effectivePolicyAssignments": [
            {
                "policyType": policy_type,
                "policyAssignment": {
                    "assignmentType": "direct",
                    "displayName": assignment["displayName"],
                    "groupId": None,
                    "policyId": assignment["policyId"],
                },
            }
            for policy_type, assignment in configuration.get("_policies", {}).items()
        ],
        "createdDateTime": configuration.get("createdDateTime", user["createdDateTime"]),
        "modifiedDateTime": configuration.get("modifiedDateTime", user["createdDateTime"]),
    }


def number_assignment(number: Document) -> Document:
    """Graph's teamsAdministration.numberAssignment for an assigned number."""
    return {
        "id": number["id"],
        "telephoneNumber": number["telephoneNumber"],
        "assignmentTargetId": number["assignmentTargetId"],
        "numberType": number["numberType"],
        "assignmentCategory": number["assignmentCategory"],
        "activationState": "activated",
        "assignmentStatus": "userAssigned",
        "capabilities": ["userAssignment"],
        "city": None,
        "civicAddressId": None,
        "isoCountryCode": None,
        "locationId": number["locationId"],
        "networkSiteId": number.get("networkSiteId"),
        # Direct Routing numbers are owned by the customer's carrier, which Teams reports as on-premises.
        "numberSource": "onPremises" if number["numberType"] == "directRouting" else "online",
        "operatorId": "",
        "portInStatus": None,
        "reverseNumberLookupOptions": list(number.get("reverseNumberLookupOptions") or []),
        "supportedCustomerActions": [],
    }
