"""Seeding of emulated customer tenants: organization, domains, admin, users, licences, groups."""

import re
from dataclasses import dataclass, field
from typing import Any

from . import catalog, clock
from .directory import add_user, consumed_units, stable_id, user_by_upn
from .store import Document, Transaction, public

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_GROUPS = ["Sales", "Support", "Teams Voice Users"]


@dataclass
class LicenseSpec:
    sku_part_number: str
    units: int


@dataclass
class TenantSpec:
    display_name: str
    domain: str
    user_count: int
    admin_username: str
    admin_password: str
    licenses: list[LicenseSpec] | None = None
    groups: list[str] = field(default_factory=lambda: list(DEFAULT_GROUPS))


class TenantSpecError(ValueError):
    """The seeding request is inconsistent (unknown SKU, admin outside the domain, domain taken)."""


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def resolve_tenant(tx: Transaction, segment: str) -> Document | None:
    """A tenant named in a URL path by GUID or by any of its verified domains."""
    if is_guid(segment):
        return tx.get("tenant", segment.lower())
    domain = tx.get("domain", segment.lower())
    return tx.get("tenant", domain["_tenantId"]) if domain else None


def create_tenant(tx: Transaction, spec: TenantSpec) -> tuple[Document, bool]:
    """Create the tenant, or return the existing one for that domain (idempotent, so callers can seed
    on every start). The boolean says whether it was created."""
    domain_name = spec.domain.lower()
    existing = tx.get("domain", domain_name)
    if existing is not None:
        return tx.get("tenant", existing["_tenantId"]), False  # type: ignore[return-value]
    if not spec.admin_username.lower().endswith("@" + domain_name):
        raise TenantSpecError("globalAdmin.username must be at the tenant's domain")
    licenses = spec.licenses or _default_licenses(spec.user_count)
    for licence in licenses:
        if licence.sku_part_number not in catalog.SKUS:
            raise TenantSpecError(f"unknown skuPartNumber '{licence.sku_part_number}'")
    tenant_id = stable_id("tenant", domain_name)
    initial_domain = _free_initial_domain(tx, domain_name)
    now = clock.iso_now()
    tenant: Document = {
        "id": tenant_id,
        "displayName": spec.display_name,
        "domain": domain_name,
        "initialDomain": initial_domain,
        "countryLetterCode": "US",
        "createdDateTime": now,
        "adminUsername": spec.admin_username.lower(),
    }
    tx.put("tenant", tenant_id, tenant, tenant_id)
    _add_domain(tx, tenant_id, initial_domain, is_default=False, is_initial=True)
    _add_domain(tx, tenant_id, domain_name, is_default=True, is_initial=False)
    skus = {licence.sku_part_number: _add_sku(tx, tenant_id, licence) for licence in licenses}

    # Seats are counted in memory while seeding (a new tenant starts with none used), so seeding
    # thousands of users stays linear.
    seats = {sku["skuId"]: 0 for sku in skus.values()}
    admin = add_user(
        tx,
        tenant_id,
        {
            **_person(tenant_id, "Global", "Administrator", spec.admin_username.lower(), "US", "IT Administrator"),
            "assignedLicenses": _licences(skus, seats, ["ENTERPRISEPACK"]),
        },
        spec.admin_password,
    )
    role_id = stable_id(tenant_id, "role", catalog.GLOBAL_ADMIN_TEMPLATE_ID)
    tx.put(
        "role",
        role_id,
        {
            "id": role_id,
            "deletedDateTime": None,
            **catalog.GLOBAL_ADMIN_ROLE,
            "_members": [admin["id"]],
            "_tenantId": tenant_id,
        },
        tenant_id,
    )
    users = [admin]
    for index in range(spec.user_count):
        users.append(_seed_user(tx, tenant_id, domain_name, index, skus, seats))
    _seed_groups(tx, tenant_id, domain_name, spec.groups, users[1:])
    return tenant, True


def _default_licenses(user_count: int) -> list[LicenseSpec]:
    # Enough seats for everyone plus a few free ones, so assignLicense works out of the box.
    return [
        LicenseSpec("ENTERPRISEPACK", user_count + 6),
        LicenseSpec("MCOEV", user_count + 5),
        LicenseSpec("PHONESYSTEM_VIRTUALUSER", 25),
    ]


def _free_initial_domain(tx: Transaction, domain_name: str) -> str:
    label = re.sub(r"[^a-z0-9]", "", domain_name.split(".")[0]) or "tenant"
    candidate, suffix = label, 1
    while tx.get("domain", f"{candidate}.onmicrosoft.com") is not None:
        suffix += 1
        candidate = f"{label}{suffix}"
    return f"{candidate}.onmicrosoft.com"


def _add_domain(tx: Transaction, tenant_id: str, name: str, is_default: bool, is_initial: bool) -> None:
    tx.put(
        "domain",
        name,
        {
            "id": name,
            "authenticationType": "Managed",
            "availabilityStatus": None,
            "isAdminManaged": True,
            "isDefault": is_default,
            "isInitial": is_initial,
            "isRoot": True,
            "isVerified": True,
            "passwordNotificationWindowInDays": 14,
            "passwordValidityPeriodInDays": 2147483647,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            "state": None,
            "_tenantId": tenant_id,
        },
        tenant_id,
    )


def _add_sku(tx: Transaction, tenant_id: str, licence: LicenseSpec) -> Document:
    sku_id = catalog.SKUS[licence.sku_part_number]["skuId"]
    sku: Document = {
        "id": f"{tenant_id}_{sku_id}",
        "accountId": tenant_id,
        "accountName": tenant_id,
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "prepaidUnits": {"enabled": licence.units, "lockedOut": 0, "suspended": 0, "warning": 0},
        "servicePlans": catalog.service_plans(licence.sku_part_number),
        "skuId": sku_id,
        "skuPartNumber": licence.sku_part_number,
        "subscriptionIds": [stable_id(tenant_id, "subscription", sku_id)],
    }
    tx.put("sku", sku["id"], sku, tenant_id)
    return sku


def _person(
    tenant_id: str, given: str, surname: str, upn: str, usage_location: str, job_title: str
) -> dict[str, Any]:
    return {
        "id": stable_id(tenant_id, "user", upn),
        "displayName": f"{given} {surname}",
        "givenName": given,
        "surname": surname,
        "userPrincipalName": upn,
        "mail": upn,
        "mailNickname": upn.split("@")[0],
        "usageLocation": usage_location,
        "jobTitle": job_title,
        "preferredLanguage": "en-US",
        "businessPhones": [],
    }


def _seed_user(
    tx: Transaction, tenant_id: str, domain_name: str, index: int, skus: dict[str, Document], seats: dict[str, int]
) -> Document:
    given = catalog.FIRST_NAMES[index % len(catalog.FIRST_NAMES)]
    surname = catalog.LAST_NAMES[(index * 7 + 3) % len(catalog.LAST_NAMES)]
    nickname = f"{given}.{surname}".lower()
    if user_by_upn(tx, f"{nickname}@{domain_name}") is not None:
        nickname = f"{nickname}{index}"
    # Most users are licensed for Teams Phone; every fifth is left unlicensed for onboarding scenarios.
    part_numbers = ["ENTERPRISEPACK", "MCOEV"] if index % 5 != 4 else []
    return add_user(
        tx,
        tenant_id,
        {
            **_person(
                tenant_id,
                given,
                surname,
                f"{nickname}@{domain_name}",
                catalog.USAGE_LOCATIONS[index % len(catalog.USAGE_LOCATIONS)],
                catalog.JOB_TITLES[index % len(catalog.JOB_TITLES)],
            ),
            "assignedLicenses": _licences(skus, seats, part_numbers),
        },
        password=None,
    )


def _licences(skus: dict[str, Document], seats: dict[str, int], part_numbers: list[str]) -> list[dict[str, Any]]:
    """Licences for a seeded user while seats remain, counting the seats taken."""
    granted = []
    for part_number in part_numbers:
        sku = skus.get(part_number)
        if sku is None or seats[sku["skuId"]] >= sku["prepaidUnits"]["enabled"]:
            continue
        seats[sku["skuId"]] += 1
        granted.append({"skuId": sku["skuId"], "disabledPlans": []})
    return granted


def _seed_groups(
    tx: Transaction, tenant_id: str, domain_name: str, names: list[str], users: list[Document]
) -> None:
    for position, name in enumerate(names):
        nickname = re.sub(r"[^A-Za-z0-9]", "", name) or f"group{position}"
        team_backed = position == 0
        unified = position < 2
        if name == "Teams Voice Users":
            members = [u["id"] for u in users if any(lic["skuId"] == catalog.SKUS["MCOEV"]["skuId"] for lic in u["assignedLicenses"])][:10]
        else:
            members = [u["id"] for i, u in enumerate(users) if i % max(len(names), 1) == position]
        group_id = stable_id(tenant_id, "group", name)
        tx.put(
            "group",
            group_id,
            {
                "id": group_id,
                "deletedDateTime": None,
                "displayName": name,
                "description": f"{name} team" if team_backed else f"{name} group",
                "createdDateTime": clock.iso_now(),
                "groupTypes": ["Unified"] if unified else [],
                "mail": f"{nickname.lower()}@{domain_name}" if unified else None,
                "mailEnabled": unified,
                "mailNickname": nickname.lower(),
                "securityEnabled": not unified,
                "visibility": "Private" if unified else None,
                "resourceProvisioningOptions": ["Team"] if team_backed else [],
                "resourceBehaviorOptions": [],
                "proxyAddresses": [f"SMTP:{nickname.lower()}@{domain_name}"] if unified else [],
                "_members": members,
                "_tenantId": tenant_id,
            },
            tenant_id,
        )


def tenant_summary(tx: Transaction, tenant: Document) -> dict[str, Any]:
    """What the admin API reports about a tenant: its domains, object counts and consented apps."""
    tenant_id = tenant["id"]
    consents = []
    for principal in tx.list("service_principal", tenant_id):
        app = tx.get("app", principal["appId"])
        consents.append(
            {
                "appId": principal["appId"],
                "displayName": app["displayName"] if app else None,
                "servicePrincipalId": principal["id"],
                "delegatedPermissions": principal["_adminGrants"],
                "applicationPermissions": principal["_appRoles"],
                "consentedAt": principal["_consentedAt"],
            }
        )
    return {
        "tenantId": tenant_id,
        "displayName": tenant["displayName"],
        "domain": tenant["domain"],
        "initialDomain": tenant["initialDomain"],
        "domains": [public(d)["id"] for d in tx.list("domain", tenant_id)],
        "globalAdmin": tenant["adminUsername"],
        "userCount": len(tx.list("user", tenant_id)),
        "groupCount": len(tx.list("group", tenant_id)),
        "subscribedSkus": [
            {
                "skuPartNumber": sku["skuPartNumber"],
                "enabled": sku["prepaidUnits"]["enabled"],
                "consumed": consumed_units(tx, tenant_id, sku["skuId"]),
            }
            for sku in tx.list("sku", tenant_id)
        ],
        "consentedApps": consents,
    }
