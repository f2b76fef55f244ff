"""/docs and /redoc work offline: every asset comes from this server (a browser with all other hosts blocked
renders both, with no CSP violation), and the OpenAPI document declares both families' security schemes,
their error envelopes, no FastAPI 422, a description and documented models on every operation, the required
fields and enums of the vendors' bodies, and examples from the vendor documents. (That the documented answers are
what the routes answer is tests/fuzz/test_openapi_conformance.py.)"""

import json
from pathlib import Path

import httpx
import pytest

from tests.console.test_console import browser, new_page, shots  # noqa: F401  (fixtures; skip without chromium)


PUBLIC = ("/oauth/token", "/api/v01/auth/login", "/health", "/api/v01/msteams/consent", "/api/v01/auth/2fa",
          "/api/v01/auth/reset-password", "/api/v01/auth/reset-password/{token}")
METHODS = ("get", "put", "post", "delete", "patch")


def refs(schema: dict) -> list[str]:
    """The component names a schema points at (itself or any of its `anyOf`)."""
    return [s["$ref"].rsplit("/", 1)[1] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s]


def operations(document: dict):  # type: ignore[no-untyped-def]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


async def test_openapi_declares_security_and_errors_and_no_422(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert '"422"' not in json.dumps(document)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["ConnecttoTeamsOAuth"]["flows"]["password"]["tokenUrl"] == "/oauth/token"
    assert schemes["FusionBearer"] == schemes["FusionBearer"] | {"type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        security = operation["security"]
        if path in PUBLIC or path.startswith("/restricted/"):
            assert security == [], (method, path)
            continue
        family = "FusionBearer" if path.startswith("/api/v01/") else "ConnecttoTeamsOAuth"
        either = path.startswith("/api/teamsvoice/v1/") and path != "/api/teamsvoice/v1/audit"
        if either:  # teamsvoice's voice state routes take either family's token
            assert security == [{"ConnecttoTeamsOAuth": []}, {"FusionBearer": []}], (method, path)
        elif path == "/api/v01/auth/logout":  # without a token there is no session to end: 200 {}
            assert security == [{"FusionBearer": []}, {}], (method, path)
        else:
            assert security == [{family: []}], (method, path)
        responses = operation["responses"]
        envelope = "FusionError" if family == "FusionBearer" else "SpringError"
        assert envelope in refs(responses["400"]["content"]["application/json"]["schema"]), (method, path)
        unauthenticated = "FusionAuthError" if family == "FusionBearer" else "OAuthError"
        assert refs(responses["401"]["content"]["application/json"]["schema"]) == [unauthenticated], (method, path)
        if not path.startswith("/api/v01/auth/"):  # the session routes need no role
            assert refs(responses["403"]["content"]["application/json"]["schema"]) == [envelope], (method, path)


async def test_every_operation_has_a_description_and_documented_models(client: httpx.AsyncClient) -> None:
    """A description per operation; every success and error answer with a body has a schema (a model, not a bare
    object), and every request body a schema with its fields (no untyped `{}`)."""
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    count = 0
    for path, method, operation in operations(document):
        count += 1
        if path != "/health":  # the process's liveness probe (app.py), not an API family's route
            assert operation.get("description"), (method, path)
        assert operation.get("summary"), (method, path)
        for status, response in operation["responses"].items():
            assert status.isdigit() and status != "422", (method, path, status)
            for media, content in response.get("content", {}).items():
                schema = content.get("schema")
                assert schema, (method, path, status, media)
                if media == "application/json" and path != "/health":
                    assert refs(schema) or schema.get("type") in ("array", "integer") or "properties" in schema, (
                        method, path, status, schema)
                    for name in refs(schema) + refs(schema.get("items", {})):
                        assert name in schemas, (method, path, name)
        if path != "/health" and not any(s.startswith("2") for s in operation["responses"]):
            assert set(operation["responses"]) & {"404", "501"}, (method, path)  # only routes that answer no success
        body = operation.get("requestBody")
        if body:
            for media, content in body["content"].items():
                schema = content["schema"]
                assert schema.get("type") or refs(schema), (method, path, media, schema)
                for name in refs(schema):
                    assert schemas[name].get("properties") or schemas[name].get("anyOf"), (method, path, name)
    assert count >= 130


async def test_required_fields_enums_and_vendor_examples(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def body_schema(path: str, method: str = "post") -> dict:
        content = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        return schemas[refs(content["schema"])[0]]

    new_enterprise = body_schema("/reseller/newEnterprise")
    assert set(new_enterprise["required"]) == {"enterpriseName", "pbxId", "sbcGateways", "services"}
    assert new_enterprise["properties"]["services"]["items"]["enum"] == ["PBX", "Trunk", "CALLAPP", "CallRecording",
                                                                       "SMS", "CHAT"]
    action = body_schema("/enterprise/getActionItemUrl")
    assert {"REGISTRATION", "GET_USER_SYNC_CONSENT", "GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT"} <= set(
        action["properties"]["actionType"]["enum"])
    assert set(action["required"]) == {"actionType", "enterpriseName", "redirectUrl"}
    assert body_schema("/reseller/editEnterprise")["required"] == ["enterpriseId"]
    sub = "/api/v01/draas/{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}"
    bulk = body_schema(f"{sub}/msteams/users/bulk", "put")
    assert set(bulk["required"]) == {"name", "data"}
    assert schemas["BulkItemRequest"]["required"] == ["upn", "displayName"]
    user = f"{sub}/msteams/users/{{ms_user_id}}"
    assert body_schema(f"{user}/phone_number", "put")["required"] == ["phoneNumber"]
    assert body_schema(f"{user}/licenses", "put")["required"] == ["licenses"]
    assert body_schema(f"{sub}/msteams/sync")["properties"]["type"]["enum"] == ["normal", "resource_account", "all"]
    # Examples from the vendor documents: the bulk request (spec 004) and the SBC gateways (spec 000).
    bulk_example = document["paths"][f"{sub}/msteams/users/bulk"]["put"]["requestBody"]["content"][
        "application/json"]["example"]
    assert bulk_example["data"][1] == {"upn": "test2@netaxisdev.onmicrosoft.com", "displayName": "bulk test 2",
                                       "number": None, "template": "BE-Test"}
    gateways = document["paths"]["/reseller/getAvailableSBCGatewayRegionsByResellerId/{resellerId}"]["get"]
    assert gateways["responses"]["200"]["content"]["application/json"]["example"] == [
        {"sbcGatewayId": 5678, "sbcGatewayRegion": "US-East"}]
    bulk_answers = document["paths"][f"{sub}/msteams/users/bulk"]["put"]["responses"]
    assert {"200", "202", "207", "400"} <= set(bulk_answers)
    bulk_400 = bulk_answers["400"]["content"]["application/json"]["schema"]
    assert set(refs(bulk_400)) == {"BulkResult", "FusionError"}


# How long a page may take to render the whole OpenAPI document (about 360 KB, 130 operations) in the browser. The
# rendering is the browser's own CPU, nothing the server does (each request of both pages is answered within 0.3 s):
# ReDoc takes about 3 s on an idle machine here, 6 s in a suite run, and once more than the console's 20 s wait
# (a fresh-clone CI run, 2026-12-03, with the suite's four workers on two cores). This bounds a hang; it is no speed
# claim.
RENDER_MS = 120_000


@pytest.mark.any_backend  # the pages and the document are the same on both backends
async def test_docs_and_redoc_render_offline(new_page, live, shots: Path) -> None:  # noqa: F811
    page = await new_page()
    outside: list[str] = []
    problems: list[str] = []

    async def only_this_server(route):  # type: ignore[no-untyped-def]
        if route.request.url.startswith(live.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_server)
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    await page.goto("/docs")
    await page.get_by_role("button", name="Authorize").wait_for(timeout=RENDER_MS)
    await page.get_by_text("/reseller/newEnterprise").first.wait_for(timeout=RENDER_MS)
    await page.screenshot(path=shots / "docs.png")
    await page.goto("/redoc")
    await page.get_by_text("newEnterprise").first.wait_for(timeout=RENDER_MS)
    await page.screenshot(path=shots / "redoc.png")
    assert not outside, outside
    # ReDoc's sidebar credit always asks for its logo on cdn.redoc.ly (no option turns it off); the CSP blocks it
    # before any request leaves and ReDoc hides the image. Nothing else may be refused.
    assert not [p for p in problems if ("Content Security Policy" in p or "Refused" in p)
                and "cdn.redoc.ly/redoc/logo-mini.svg" not in p], problems


def test_documented_bodies_name_the_fields_the_routes_read() -> None:
    """The documentation models of the untyped Fusion bodies list exactly the keys the routes and bulk items accept."""
    from teamsvoice.api.fusion import docs, msteams_users
    from teamsvoice.domain.teams_users import bulk

    assert set(docs.UpdateUserRequest.model_fields) == set(msteams_users.UPDATE_FIELDS)
    assert set(docs.BulkItemRequest.model_fields) == set(bulk.ITEM_KEYS)
    assert set(docs.BulkRequest.model_fields) == {"name", "data"}
