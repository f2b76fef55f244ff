"""ConnecttoTeams client helpers for tests: tokens as a provider's script gets them."""

import httpx

from teamsvoice.demo import Login


SPRING = {"timestamp", "status", "error", "message", "path"}  # the keys of ConnecttoTeams' (Spring's) error body


async def token_for(client: httpx.AsyncClient, login: Login) -> str:
    response = await client.post(
        "/oauth/token", auth=(login.client_id, login.client_secret),
        data={"username": login.username, "password": login.password, "grant_type": "password"},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enterprise_body(reseller_id: int, name: str, *, services: list[str] | None = None, pbx: list[int], sbc: list[int],
                    manage: bool = True) -> dict:
    return {
        "enterpriseName": name, "resellerId": reseller_id, "services": services or ["PBX"], "pbxId": pbx,
        "sbcGateways": sbc, "countryName": "United States", "canResellerManageEnterpriseProvisioning": manage,
        "allowExternalNumbers": True, "billingReferences": ["PO-1"], "userLimit": 100,
    }


async def reseller_catalogue(client: httpx.AsyncClient, token: str, reseller_id: int) -> tuple[list[int], list[int]]:
    """The PBX type ids and SBC gateway ids a reseller may use."""
    pbx = await client.get("/pbx/getPBXTypesByResellerId", params={"resellerId": reseller_id}, headers=bearer(token))
    sbc = await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{reseller_id}", headers=bearer(token))
    assert pbx.status_code == 200 and sbc.status_code == 200
    return [p["id"] for p in pbx.json()], [g["sbcGatewayId"] for g in sbc.json()]
