"""Directory objects shared by the admin API, the sign-in pages and Graph: users, their credentials,
group and role memberships, and the Teams configuration every user carries."""

import hashlib
import re
import hmac
import secrets
import uuid
from typing import Any

from . import clock
from .catalog import GLOBAL_ADMIN_TEMPLATE_ID
from .store import Document, Transaction

_PBKDF2_ROUNDS = 20_000
_NAMESPACE = uuid.UUID("6c1b0f2e-5a3d-4a47-9c1e-8f3f5b2d7a10")


def stable_id(*parts: str) -> str:
    """A GUID derived from names, so seeding the same tenant twice yields the same ids."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def hash_secret(secret: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${salt}${digest.hex()}"


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        _, salt, expected = hashed.split("$")
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), _PBKDF2_ROUNDS)
    return hmac.compare_digest(digest.hex(), expected)


# The characters Entra ID allows in a userPrincipalName: A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @ (no accented
# characters), a domain name after it (graph-and-teams-notes 1.3). Every user is one: Graph's POST/PATCH /users and
# a resource account's New-CsOnlineApplicationInstance.
_UPN = re.compile(r"^[A-Za-z0-9'.\-_!#^~]+@[A-Za-z0-9.\-]+$")


def is_valid_upn(upn: str) -> bool:
    return _UPN.match(upn) is not None


def find_user(tx: Transaction, tenant_id: str, id_or_upn: str) -> Document | None:
    """Graph and Teams PowerShell address users by object id or by userPrincipalName, both in any case (an object id
    is a GUID: `/users/{ID}` in capitals finds the user, as `-Identity` does)."""
    user = tx.get("user", id_or_upn)
    if user is None and "@" not in id_or_upn and id_or_upn != id_or_upn.lower():  # (an id in capitals: a second read)
        user = tx.get("user", id_or_upn.lower())
    if user is not None:
        return user if user["_tenantId"] == tenant_id else None
    index = tx.get("upn", id_or_upn.lower())
    if index is None or index["tenantId"] != tenant_id:
        return None
    return tx.get("user", index["userId"])


def user_by_upn(tx: Transaction, upn: str) -> Document | None:
    index = tx.get("upn", upn.lower())
    return tx.get("user", index["userId"]) if index else None


def add_user(tx: Transaction, tenant_id: str, properties: dict[str, Any], password: str | None) -> Document:
    """Create a user with Graph's defaults for unset properties, plus its Teams configuration."""
    now = clock.iso_now()
    user_id = properties.get("id") or str(uuid.uuid4())
    user: Document = {
        "id": user_id,
        "accountEnabled": True,
        "displayName": None,
        "givenName": None,
        "surname": None,
        "userPrincipalName": None,
        "mail": None,
        "mailNickname": None,
        "jobTitle": None,
        "department": None,
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "usageLocation": None,
        "userType": "Member",
        "assignedLicenses": [],
        "createdDateTime": now,
        "deletedDateTime": None,
        **properties,
        "_tenantId": tenant_id,
        "_passwordHash": hash_secret(password) if password else None,
    }
    tx.put("user", user_id, user, tenant_id)
    tx.put("upn", user["userPrincipalName"].lower(), {"userId": user_id, "tenantId": tenant_id})
    tx.put(
        "teams_user",
        user_id,
        {
            "id": user_id,
            "tenantId": tenant_id,
            "accountType": "user",
            "isEnterpriseVoiceEnabled": False,
            "featureTypes": ["Teams", "AudioConferencing"],
            "createdDateTime": now,
            "modifiedDateTime": now,
            "_policies": {},
        },
        tenant_id,
    )
    return user


def save_user(tx: Transaction, user: Document, previous_upn: str | None = None) -> None:
    if previous_upn and previous_upn.lower() != user["userPrincipalName"].lower():
        tx.delete("upn", previous_upn.lower())
        tx.put("upn", user["userPrincipalName"].lower(), {"userId": user["id"], "tenantId": user["_tenantId"]})
    tx.put("user", user["id"], user, user["_tenantId"])


def delete_user(tx: Transaction, user: Document) -> None:
    """Soft delete: the user moves to the recycle bin, leaves its groups and roles, and its licence
    seats and phone numbers are released immediately."""
    tenant_id = user["_tenantId"]
    for kind in ("group", "role"):
        for container in tx.list(kind, tenant_id):
            if user["id"] in container["_members"]:
                container["_members"].remove(user["id"])
                tx.put(kind, container["id"], container, tenant_id)
    for number in tx.list("number", tenant_id):
        if number["assignmentTargetId"] == user["id"]:
            tx.delete("number", number_key(tenant_id, number["telephoneNumber"]))
    tx.delete("teams_user", user["id"])
    tx.delete("user", user["id"])
    tx.delete("upn", user["userPrincipalName"].lower())
    tx.put("deleted_user", user["id"], {**user, "deletedDateTime": clock.iso_now()}, tenant_id)


def number_key(tenant_id: str, telephone_number: str) -> str:
    return f"{tenant_id}|{telephone_number}"


def is_global_admin(tx: Transaction, user: Document) -> bool:
    return any(
        role["roleTemplateId"] == GLOBAL_ADMIN_TEMPLATE_ID and user["id"] in role["_members"]
        for role in tx.list("role", user["_tenantId"])
    )


def consumed_units(tx: Transaction, tenant_id: str, sku_id: str) -> int:
    """The tenant's users holding the licence (the store counts them through its index; no user is read)."""
    return tx.count_by_element("user", tenant_id, "assignedLicenses", sku_id)
