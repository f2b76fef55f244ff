"""Fixed Microsoft identifiers the emulator reproduces: SKUs, service plans, roles, first-party resources."""

from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
# "Skype and Teams Tenant Admin API": the audience of the tokens the MicrosoftTeams module sends.
TEAMS_ADMIN_APP_ID = "48ac35b8-9aa8-4d74-927d-1f4a14a0b239"

GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"
GLOBAL_ADMIN_ROLE: dict[str, str] = {
    "displayName": "Global Administrator",
    "description": "Can manage all aspects of Microsoft Entra ID and Microsoft services that use "
    "Microsoft Entra identities.",
    "roleTemplateId": GLOBAL_ADMIN_TEMPLATE_ID,
}

_E3_PLANS = [
    ("efb87545-963c-4e0d-99df-69c6916d9eb0", "EXCHANGE_S_ENTERPRISE"),
    ("5dbe027f-2339-4123-9542-606e4d348a72", "SHAREPOINTENTERPRISE"),
    ("43de0ff5-c92c-492b-9116-175376d08c38", "OFFICESUBSCRIPTION"),
    ("0feaeb32-d00e-4d66-bd5a-43b5b83db82c", "MCOSTANDARD"),
    ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
    ("a23b959c-7ce8-4e57-9140-b90eb88a9e97", "SWAY"),
    ("7547a3fe-08ee-4ccb-b430-5077c5041653", "YAMMER_ENTERPRISE"),
]

SKUS: dict[str, dict[str, Any]] = {
    "ENTERPRISEPACK": {
        "skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900",
        "servicePlans": _E3_PLANS,
    },
    "MCOEV": {
        "skuId": "e43b5b99-8dfb-405f-9987-dc307f34bcbd",
        "servicePlans": [("4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "MCOEV")],
    },
    "PHONESYSTEM_VIRTUALUSER": {
        "skuId": "440eaaa8-b3e0-484b-a8be-62870b9ba70a",
        "servicePlans": [("f47330e9-c134-43b3-9993-e7f004506889", "MCOEV_VIRTUALUSER")],
    },
}


def service_plans(sku_part_number: str) -> list[dict[str, str]]:
    return [
        {
            "servicePlanId": plan_id,
            "servicePlanName": plan_name,
            "provisioningStatus": "Success",
            "appliesTo": "User",
        }
        for plan_id, plan_name in SKUS[sku_part_number]["servicePlans"]
    ]


# Deterministic "realistic" people for seeded tenants.
FIRST_NAMES = [
    "Adele", "Alex", "Allan", "Diego", "Emily", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni",
    "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Sofia", "Tomas",
    "Amira", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
]
LAST_NAMES = [
    "Vance", "Wilber", "Deyoung", "Franco", "Braun", "Archie", "Mueller", "Langer", "Lauer", "Sherman",
    "Gu", "Holloway", "Robbins", "Bowen", "Graham", "Wilke", "Fernandez", "Gupta", "Peeters", "Novak",
    "Haddad", "Costa", "Martin", "Ivanov", "Rossi", "Nasser", "Lind", "Dubois", "Moreau", "Janssens",
]
JOB_TITLES = ["Sales Manager", "Support Engineer", "Account Executive", "Marketing Lead", "Developer"]
USAGE_LOCATIONS = ["US", "GB", "BE"]
