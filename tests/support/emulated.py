"""A Microsoft tenant of a test's own in the session's emulator (shared by API and browser tests)."""

import httpx

from m365_emulator import catalog

PASSWORD = "Emulated-Admin-Passw0rd!"
# Teams Phone (MCOEV): Microsoft gives a number only to a user licensed for it ("lacks appropriate licenses"), and a
# seeded tenant leaves every fifth user and its Global Administrator without it. Graph's $filter for the users that
# hold it (user-list Example 9), for tests that give numbers to users they list through Graph or an SDK.
TEAMS_PHONE_SKU = catalog.SKUS["MCOEV"]["skuId"]
TEAMS_PHONE_USERS = f"assignedLicenses/any(x:x/skuId eq {TEAMS_PHONE_SKU})"


async def emulated_tenant(live, domain: str, users: int, *, groups: list[str] | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Created through the emulator's admin API (idempotent by domain), with `users` users and a Global
    Administrator `admin@<domain>` (and `groups`, named, when given: the emulator's seeding shares the users out
    among them); answered as the seeded tenants are described (`live.emulator.tenants`)."""
    body = {"displayName": domain, "domain": domain, "userCount": users,
            "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}}
    if groups is not None:
        body["groups"] = groups
    async with httpx.AsyncClient(base_url=live.emulator.url, verify=str(live.emulator.ca_cert_path), timeout=60) as admin:
        response = await admin.post("/_admin/tenants", json=body)
        assert response.status_code in (200, 201), response.text
        created = response.json()
    return {"tenantId": created["tenantId"], "domain": domain,
            "globalAdmin": {"username": f"admin@{domain}", "password": created["globalAdmin"].get("password", PASSWORD)}}
