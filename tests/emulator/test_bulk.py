"""A large tenant (5,000 seeded users) is seeded in one call and pages through $top=999."""

import httpx
from emulator_support import ADMIN_PASSWORD, Browser, app_token, authorize_url, redirect_params, register_app, seed_tenant


def test_five_thousand_users_seed_and_page(http: httpx.Client, emulator) -> None:
    tenant = seed_tenant(http, "bulk.example", user_count=5000)
    summary = http.get(f"/_admin/tenants/{tenant.tenant_id}").json()
    assert summary["userCount"] == 5001
    seats = {s["skuPartNumber"]: s for s in summary["subscribedSkus"]}
    assert seats["MCOEV"]["consumed"] == 4000 and seats["ENTERPRISEPACK"]["consumed"] == 4001
    app = register_app(http, "bulk reader")
    with httpx.Client(verify=str(emulator.ca_cert_path), timeout=10) as client:
        url = authorize_url(emulator.url, tenant.tenant_id, app, "openid Directory.ReadWrite.All")
        assert "code" in redirect_params(Browser(client).sign_in_and_consent(url, tenant.admin, ADMIN_PASSWORD))
    headers = {"Authorization": f"Bearer {app_token(http, tenant, app)}"}
    seen: list[str] = []
    url: str | None = "/v1.0/users?$top=999&$select=id,userPrincipalName"
    pages = 0
    while url:
        page = http.get(url, headers=headers, timeout=30).json()
        assert len(page["value"]) <= 999
        seen += [u["userPrincipalName"] for u in page["value"]]
        url = page.get("@odata.nextLink")
        pages += 1
    assert pages == 6 and len(seen) == len(set(seen)) == 5001
    assert http.post("/_admin/tenants", json={"displayName": "Too big", "domain": "huge.example", "userCount": 20001,
                                              "globalAdmin": {"username": "admin@huge.example", "password": ADMIN_PASSWORD}}).status_code == 400
