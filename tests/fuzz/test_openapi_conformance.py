"""The OpenAPI document is what the routes answer: schemathesis' response conformance checks (the status code is
documented, the content type is the documented one, the body matches the documented schema, documented headers
hold) on EVERY operation of both families and of /api/teamsvoice/v1, and no operation documents 422.

Each operation is called (1) without a token, (2) with generated input and a token of its family, (3) with
generated input on the real objects of an onboarded world (so validation, scope and Microsoft answers of real
tenants are met), and (4) with its documented example on the real objects, so that successes are checked too.
Invalid input (schemathesis' negative generation) is sent once per operation with a token too. The world is two
emulated Microsoft tenants of this test's own (nothing it changes is seen by other tests): one registered to a
ConnecttoTeams enterprise with the provider-management consent, one onboarded to a Fusion subscription with free
numbers. Destructive calls on the real objects run last, deepest first.
"""

import asyncio
import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.fusion.support import BASE, INSTANCE, PASSWORD, make_world
from tests.support.ctt import bearer, token_for
from tests.support.onboarding import Onboarding

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES_PER_OPERATION = 1
PUBLIC = (
    "/oauth/token", "/api/v01/auth/login", "/health", "/api/v01/msteams/consent", "/restricted/handleResponse"
)
METHODS = ("get", "put", "post", "delete", "patch")


def emulated_tenant(live, domain: str) -> dict:  # type: ignore[no-untyped-def]
    """A Microsoft tenant of this test's own in the (session-wide) emulator: idempotent by domain."""
    password = "Conformance-Passw0rd!"
    with httpx.Client(base_url=live.emulator.url, verify=str(live.emulator.ca_cert_path), timeout=60) as http:
        response = http.post("/_admin/tenants", json={
            "displayName": f"Conformance {domain}", "domain": domain, "userCount": 4,
            "globalAdmin": {"username": f"admin@{domain}", "password": password}})
        response.raise_for_status()
        created = response.json()
    return {"tenantId": created["tenantId"], "domain": created["domain"],
            "globalAdmin": {"username": created["globalAdmin"]["username"],
                            "password": created["globalAdmin"].get("password") or password}}  # known: ours


@dataclass
class World:
    ctt_token: str
    fusion_token: str
    path_values: dict[str, Any]
    query_values: dict[str, Any]
    body_values: dict[str, Any]
    # Operations whose example needs credentials of its own: (headers, body in place of the example's).
    credentials: dict[str, tuple[dict[str, str], Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    invalid_calls: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)


async def build_world(client: httpx.AsyncClient, live, organisation, receiver) -> World:  # type: ignore[no-untyped-def]
    receiver.reset()
    ctt_tenant = emulated_tenant(live, "conformance-ctt.example")
    fusion_tenant = emulated_tenant(live, "conformance-fusion.example")
    onboarding = Onboarding(client, live, organisation, receiver, ctt_tenant)
    fusion = await make_world(client, live, organisation)
    tenant = await fusion.create_tenant(name="Conformance")
    subscription = await fusion.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"

    async def register() -> None:
        await onboarding.register()
        await onboarding.consent("GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT")

    await asyncio.gather(register(), fusion.onboard(path, fusion_tenant))  # the two families' worlds at once
    login = organisation.resellers[0]
    ctt_token = await token_for(client, login)
    sbc = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{login.reseller_id}",
                            headers=bearer(ctt_token))).json()[0]["sbcGatewayId"]
    headers = await fusion.as_("reseller")
    start = 23000000 + random.randrange(0, 6_000_000 // 100) * 100
    added = await client.post(f"{path}/numbers", headers=headers,
                              json={"countryCode": "+32", "ranges": [[start, start + 9]]})
    assert added.status_code == 200, added.text
    users = (await client.get(f"{path}/msteams/users", headers=headers)).json()["users"]
    me = (await client.get("/api/v01/system/users/local", headers=headers)).json()
    refresh = await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD})
    basic = base64.b64encode(f"{login.client_id}:{login.client_secret}".encode()).decode()
    # Not the Global Administrator: the calls on the world's objects may change or delete this user, and the next
    # backend's run signs in as the administrator.
    ms_user = next(u["msTeams"] for u in users
                   if u["msTeams"]["userPrincipalName"] != fusion_tenant["globalAdmin"]["username"])
    return World(
        ctt_token=ctt_token, fusion_token=headers["Authorization"].split(" ", 1)[1],
        path_values={
            "draas_instance": INSTANCE, "uuid": tenant["uuid"], "subscription_id": subscription["id"],
            "ms_user_id": ms_user["id"], "template_id": 0, "level": "tenants", "user_id": me["id"],
            "masterResellerId": organisation.master.reseller_id, "resellerId": login.reseller_id,
            "enterpriseId": onboarding.enterprise_id, "upn": f"user1@{ctt_tenant['domain']}",
            "tenant_id": ctt_tenant["tenantId"],
        },
        query_values={"resellerId": login.reseller_id, "tenantId": ctt_tenant["tenantId"]},
        body_values={
            "tenantId": ctt_tenant["tenantId"], "tenantID": ctt_tenant["tenantId"],
            "resellerId": login.reseller_id,
            "enterpriseId": onboarding.enterprise_id, "enterpriseName": onboarding.name, "sbcGatewayId": sbc,
            "redirectUrl": f"{receiver.url}/hooks/conformance",
            "userPrincipalName": ms_user["userPrincipalName"],
            "upn": ms_user["userPrincipalName"], "phoneNumber": f"+32{start + 1}",
            "number": f"+32{start + 2}",
            "ms_tenant_text": ctt_tenant["tenantId"], "teamsUserId": f"user1@{ctt_tenant['domain']}",
            "username": "reseller", "password": PASSWORD,
        },
        credentials={
            "/oauth/token": ({"Authorization": f"Basic {basic}"}, {
                "grant_type": "password", "username": login.username, "password": login.password}),
            "/api/v01/auth/access_token": ({"Authorization": f"Bearer {refresh.json()['refresh_token']}"}, None),
        },
    )


def personalised(example: Any, values: dict[str, Any]) -> Any:
    """A documented example with the world's objects in place of the vendor's sample values."""
    if isinstance(example, dict):
        return {k: values[k] if k in values and not isinstance(v, (dict, list)) else personalised(v, values)
                for k, v in example.items()}
    if isinstance(example, list):
        return [personalised(v, values) for v in example]
    return example


def is_destructive(method: str, path: str) -> bool:
    return method == "DELETE" or path.endswith(("/unlink", "/cancel"))


async def test_every_route_answers_as_documented(client, live, organisation,  # type: ignore[no-untyped-def]
                                                 receiver) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                assert "422" not in operation["responses"], (method, path)
    world = await build_world(client, live, organisation, receiver)
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = sum(1 for item in document["paths"].values() for m in item if m in METHODS)
    assert len(operations) == documented >= 130

    def validate(case, headers: dict[str, str], note: str) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=headers, timeout=120)
        world.calls += 1
        world.statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as exc:  # every failed check is reported, with what was sent
            world.failures.append(f"{note}: {case.method} {case.formatted_path} -> {response.status_code} "
                                  f"{response.text[:200]!r}: {str(exc)[:600]}")

    def auth(operation) -> dict[str, str]:  # type: ignore[no-untyped-def]
        if operation.path == "/api/v01/auth/logout":  # ends the session of its token: a session of its own
            login = httpx.post(
                f"{live.url}/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD}
            )
            return {"Authorization": f"Bearer {login.json()['access_token']}"}
        token = world.fusion_token if operation.path.startswith("/api/v01/") else world.ctt_token
        return {"Authorization": f"Bearer {token}"}

    def on_world(operation, case):  # type: ignore[no-untyped-def]
        known = {k: v for k, v in world.path_values.items() if k in (case.path_parameters or {})}
        if not known:
            return None
        return operation.Case(path_parameters={**case.path_parameters, **known}, query=case.query,
                              headers=case.headers, body=case.body, media_type=case.media_type)

    def generated(operation) -> None:  # type: ignore[no-untyped-def]
        public = operation.path in PUBLIC

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case) -> None:  # type: ignore[no-untyped-def]
            if not public:
                validate(case, {}, "no token")
            validate(case, auth(operation), "generated")
            if operation.path.startswith("/api/teamsvoice/v1/"):  # takes either family's token
                validate(case, {"Authorization": f"Bearer {world.fusion_token}"}, "generated, Fusion token")
            placed = on_world(operation, case)
            if placed is not None and not is_destructive(operation.method.upper(), operation.path):
                validate(placed, auth(operation), "generated on the world's objects")

        exercise()

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise_invalid(case) -> None:  # type: ignore[no-untyped-def]
            world.invalid_calls += 1
            validate(case, auth(operation), "invalid input")

        if operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"):
            try:
                exercise_invalid()  # invalid input: the 400s in the family's envelope
            except Unsatisfiable:
                pass  # nothing it takes can be invalid (e.g. only optional text)

    def documented_example(operation) -> None:  # type: ignore[no-untyped-def]
        definition = operation.definition.raw
        params = {p["name"]: world.path_values.get(p["name"], 1 if p.get("schema", {}).get("type") == "integer"
                                                     else "unknown")
                  for p in definition.get("parameters", []) if p["in"] == "path"}
        query = {p["name"]: world.query_values[p["name"]] for p in definition.get("parameters", [])
                 if p["in"] == "query" and p.get("required") and p["name"] in world.query_values}
        kwargs: dict[str, Any] = {"path_parameters": params, "query": query}
        content = definition.get("requestBody", {}).get("content", {})
        for media, entry in content.items():
            if media == "text/plain":
                kwargs |= {"body": world.body_values["ms_tenant_text"], "media_type": media}
            elif "example" in entry:
                kwargs |= {"body": personalised(entry["example"], world.body_values), "media_type": media}
            break
        if content and "body" not in kwargs:
            return  # a typed body without an example: the generated calls cover it
        headers = auth(operation) if operation.path not in PUBLIC else {}
        if operation.path in world.credentials:
            headers, body = world.credentials[operation.path]
            if body is not None:
                kwargs["body"] = body
        validate(operation.Case(**kwargs), headers, "example")

    def run() -> None:
        for operation in operations:
            generated(operation)
        ordered = sorted(operations, key=lambda o: (is_destructive(o.method.upper(), o.path), -len(o.path)))
        for operation in ordered:
            documented_example(operation)

    await asyncio.to_thread(run)
    assert not world.failures, f"{len(world.failures)} failures:\n" + "\n".join(world.failures[:40])
    assert world.calls >= 3 * len(operations)  # the generator really ran
    assert world.invalid_calls >= len(operations) // 2, world.invalid_calls
    # Successes are checked too, not only errors: most operations answered 2xx on the world's objects.
    for token_route in ("POST /oauth/token", "POST /api/v01/auth/login", "GET /api/v01/auth/access_token"):
        assert 200 in world.statuses[token_route], (token_route, world.statuses[token_route])
    successes = [op for op, codes in world.statuses.items() if any(200 <= c < 300 for c in codes)]
    assert len(successes) >= 0.6 * len(operations), json.dumps(sorted(set(world.statuses) - set(successes)))
