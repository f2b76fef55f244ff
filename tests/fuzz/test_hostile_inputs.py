"""Hostile values over real HTTP: each answers the family's 4xx envelope naming the field or the problem, never a
500, and the keep-alive connection that carried it serves the next request."""

import asyncio
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from fastapi import FastAPI, Request, Response

from teamsvoice.api.connecttoteams.errors import spring_error
from teamsvoice.api.limits import RequestLimits
from tests.api.fusion.support import BASE, make_world
from tests.api.fusion.users_support import onboard
from tests.support.ctt import SPRING, bearer, token_for
from tests.support.live import LiveServer, bound_socket

HUGE = 2**70
DEEP = "[" * 5000 + "]" * 5000
SURROGATE = "\ud800"


@dataclass
class Answer:
    status: int
    body: Any
    closes: bool


def _exchange(url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
    """One request, then GET /health on the same connection (unless the answer said `Connection: close`)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        raw = response.read()
        closes = (response.getheader("Connection") or "").lower() == "close"
        sock = connection.sock
        if not closes:
            connection.request("GET", "/health")
            follow = connection.getresponse()
            assert follow.status in (200, 404)  # /health, or a test app without it: an answer either way
            follow.read()
            assert connection.sock is sock, "the server dropped the keep-alive connection"
        return Answer(response.status, json.loads(raw), closes)
    finally:
        connection.close()


async def call(live, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
               headers: dict[str, str] | None = None) -> Answer:
    content = raw if raw is not None else None if body is None else json.dumps(body).encode()
    return await asyncio.to_thread(_exchange, live.url, method, path, content, headers or {})


def spring(answer: Answer, status: int, named: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) == SPRING and answer.body["status"] == status, answer.body
    assert named in answer.body["message"], answer.body


def fusion(answer: Answer, status: int, named: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"} and set(answer.body["error"]) == {"code", "reason"}, answer.body
    assert named in answer.body["error"]["reason"], answer.body


def configure_user_body(**changes: Any) -> dict[str, Any]:
    return {"directRouteId": 1, "password": "S1p-secret-104", "pbxAuthUserId": "104", "pbxLocation": "HQ",
            "pbxUserId": "104", "phoneNumber": "+14139301761", "teamsUserId": "someone@contoso.example",
            "tenantID": "00000000-0000-0000-0000-000000000000"} | changes


def configure_pbx_body(**changes: Any) -> dict[str, Any]:
    return {"enterpriseId": 1, "pbxLocation": "HQ", "pbxType": "BroadWorks",
            "canonicalPbxSIPDomain": "pbx.contoso-voice.example"} | changes


@pytest.fixture
async def ctt(client, organisation) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return bearer(await token_for(client, organisation.resellers[0]))


async def test_integers_past_64_bits(live, ctt) -> None:
    # An id no row can have (ours are 32-bit) is not found, whatever its size: the same 404 on both backends
    # (api/connecttoteams/wire.row_id; tests/api/connecttoteams/test_ids_and_extensions.py).
    spring(await call(live, "POST", "/enterprise/configureUser", body=configure_user_body(directRouteId=HUGE), headers=ctt),
           404, "directRouteId")
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(enterpriseId=HUGE), headers=ctt),
           404, "enterpriseId")
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(enterpriseId=-(2**63) - 1), headers=ctt),
           404, "enterpriseId")
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(enterpriseId=2**63 - 1), headers=ctt),
           404, "enterpriseId")
    spring(await call(live, "DELETE", f"/pbx/deletePBXLocation/{HUGE}", headers=ctt), 404, str(HUGE))


@pytest.mark.parametrize("encoded", ["escaped", "utf8"])
async def test_lone_surrogates(live, ctt, encoded: str) -> None:
    def raw(body: dict[str, Any]) -> bytes:
        if encoded == "escaped":
            return json.dumps(body).encode()  # "\ud800" as a JSON escape
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")  # the surrogate's own bytes

    cases = [
        ("/enterprise/configureUser", configure_user_body(pbxUserId="10" + SURROGATE), "pbxUserId"),
        ("/enterprise/configureUser", configure_user_body(pbxCallPolicyInfo={"callPolicyName": SURROGATE}),
         "pbxCallPolicyInfo.callPolicyName"),
        ("/pbx/configurePBX", configure_pbx_body(pbxType=SURROGATE + "x"), "pbxType"),
        ("/pbx/configurePBX", configure_pbx_body(pbxLocation=SURROGATE), "pbxLocation"),
        ("/provisioning/provisionDirectRouting", {"sbcGatewayId": 1, "tenantId": SURROGATE}, "tenantId"),
        ("/provisioning/provisionDirectRouting", {"sbcGatewayId": 1, "authenticationResult": [{SURROGATE: 1}]},
         "authenticationResult[0]"),
    ]
    for path, body, named in cases:
        answer = await call(live, "POST", path, raw=raw(body), headers=ctt)
        spring(answer, 400, named)
        assert "surrogate" in answer.body["message"]
    # a bare JSON string (the seeds' tenantId bodies) is checked too, and a valid pair is no problem
    spring(await call(live, "POST", "/pbx/getDirectRoutesForEnterprise", raw=raw(SURROGATE), headers=ctt), 400, "body")
    spring(await call(live, "POST", "/pbx/getDirectRoutesForEnterprise", body="\U0001f600", headers=ctt), 404, "")


async def test_deep_nesting(live, ctt) -> None:
    spring(await call(live, "POST", "/provisioning/provisionDirectRouting", raw=DEEP.encode(), headers=ctt), 400, "deeper")
    deep_object = '{"sbcGatewayId": 1, "x": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    spring(await call(live, "POST", "/pbx/configurePBX", raw=deep_object.encode(), headers=ctt), 400, "deeper")
    # brackets inside strings are text, not nesting
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(pbxType="[" * 100, enterpriseId=987654),
                      headers=ctt), 404, "987654")


async def test_names_are_bounded_and_printable(live, ctt) -> None:
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(pbxLocation="x" * 201), headers=ctt),
           400, "pbxLocation")
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(pbxLocation="HQ\u0000"), headers=ctt),
           400, "pbxLocation")
    spring(await call(live, "POST", "/pbx/configurePBX", body=configure_pbx_body(pbxLabel="a\nb"), headers=ctt),
           400, "pbxLabel")
    spring(await call(live, "POST", "/reseller/newEnterprise", body={"enterpriseName": "Acme\u0007"}, headers=ctt),
           400, "enterpriseName")


async def test_body_size_limit(live, ctt) -> None:
    limit = live.settings.max_request_body_bytes
    big = configure_pbx_body(pbxLocation="x" * (limit + 1))
    answer = await call(live, "POST", "/pbx/configurePBX", body=big, headers=ctt)
    spring(answer, 413, str(limit))
    assert not answer.closes  # the body was read to its end: the connection goes on


async def test_fusion_hostile_values(client, live, organisation) -> None:
    world = await make_world(client, live, organisation)
    headers = await world.as_("reseller")
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"

    for filters, named in (("{}", "filters"), ('{"kind":[[1]]}', "filters.kind"), ('{"kind":{"a":1}}', "filters.kind"),
                           ("[" * 3000 + "]" * 3000, "filters")):
        fusion(await call(live, "GET", f"{path}/msteams/users/bulk?filters={quote(filters)}", headers=headers), 400, named)
    listed = await call(live, "GET", f"{path}/msteams/users/bulk?filters={quote(json.dumps({'kind': ['ms_users']}))}",
                        headers=headers)
    assert listed.status == 200 and listed.body["bulks"] == []

    templates = f"{path}/msteams/templates"
    answer = await call(live, "POST", templates, body={"name": "x" * 10_000_000, "productKey": "k"}, headers=headers)
    fusion(answer, 413, "body")
    fusion(await call(live, "POST", templates, body={"name": "x" * 201, "productKey": "k"}, headers=headers), 400, "name")
    fusion(await call(live, "POST", templates, body={"name": "a\u0000b", "productKey": "k"}, headers=headers), 400, "name")
    fusion(await call(live, "POST", templates, body={"name": "ok", "productKey": SURROGATE}, headers=headers),
           400, "productKey")
    fusion(await call(live, "POST", templates, raw=DEEP.encode(), headers=headers), 400, "deeper")
    answer = await call(live, "GET", f"{templates}/{HUGE}", headers=headers)
    fusion(answer, answer.status, "")
    assert 400 <= answer.status < 500
    fusion(await call(live, "POST", f"{BASE}/tenants", body={"name": "Acme\u001b[31m"}, headers=headers), 400, "name")
    fusion(await call(live, "POST", f"{BASE}/tenants", raw=b"x" * (live.settings.max_request_body_bytes + 1),
                      headers=headers), 413, "body")


async def test_an_unhandled_error_is_answered_and_keeps_the_connection() -> None:
    """The catch-all answers the family's 500 envelope itself: nothing propagates to Starlette's error middleware
    (which re-raises, and uvicorn then drops the connection)."""
    app = FastAPI()

    @app.post("/enterprise/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected failure")

    async def unexpected(request: Request, exc: Exception) -> Response:
        return spring_error(request, 500, f"Internal error ({type(exc).__name__})")

    app.add_middleware(RequestLimits, max_body_bytes=1024, max_bulk_body_bytes=2048, render_unexpected=unexpected)
    server = LiveServer(app, bound_socket()).start()
    try:
        answer = await asyncio.to_thread(_exchange, server.url, "POST", "/enterprise/boom", b"{}", {})
        spring(answer, 500, "RuntimeError")
        assert not answer.closes
    finally:
        server.stop()


async def test_what_an_extended_campaign_found(client, live, organisation) -> None:
    """Each found by a longer hostile-input campaign against a served instance, each a 500 before: numbers of
    more digits than Python converts (in JSON and in text), digits of other scripts ("²", "١"), JSON sent as a
    form to routes that read their body themselves, names too long for a Microsoft Graph URL, a list where a
    string belongs, and two identical creates at the same moment."""
    sub = await onboard(client, live, organisation)
    world, path, headers = sub.world, sub.path, sub.headers
    many_digits = "1" * 5000
    fusion(await call(live, "POST", f"{path}/locations", raw=('{"city": ' + many_digits + "}").encode(), headers=headers),
           400, "4300 digits")
    fusion(await call(live, "PUT", f"{path}/licenses", raw=("[" + many_digits + "]").encode(), headers=headers),
           400, "4300 digits")
    ctt = bearer(await token_for(client, organisation.resellers[0]))
    spring(await call(live, "POST", "/pbx/getDirectRoutesForEnterprise", raw=("[" + many_digits + "]").encode(),
                      headers=ctt | {"Content-Type": "text/plain"}), 400, "4300 digits")
    for code in ("+" + many_digits, "+²", "+\u0661"):
        fusion(await call(live, "POST", f"{path}/numbers", body={"countryCode": code, "ranges": [[1, 2]]}, headers=headers),
               400, "countryCode")
    for ident in (many_digits, quote("²"), quote("\u0661")):  # "١" is not resource account 1
        answer = await call(live, "PUT", f"{path}/msteams/resource_accounts/{ident}", body={"displayName": "x"},
                            headers=headers)
        fusion(answer, 404, "")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    fusion(await call(live, "POST", f"{path}/locations", raw=DEEP.encode(), headers=headers | form), 400, "deeper")
    fusion(await call(live, "POST", f"{path}/locations", raw=json.dumps({"street": SURROGATE}).encode(),
                      headers=headers | form), 400, "surrogate")

    user = (await sub.users(3))[-1]["msTeams"]["id"]
    fusion(await call(live, "PUT", f"{path}/msteams/users/{user}/vrp", body={"vrp": "x" * 70_000}, headers=headers),
           400, "vrp: at most 200 characters")  # the field as sent (it said "voice routing policy")
    fusion(await call(live, "PUT", f"{path}/msteams/users/{user}/groups", body={"groups": ["x" * 100_000]}, headers=headers),
           400, "groups")
    for kind in ([], {}, ["call-queue"]):
        fusion(await call(live, "POST", f"{path}/msteams/resource_accounts", headers=headers, body={
            "accountType": kind, "userPrincipalName": "queue@contoso.example", "displayName": "Q", "location": "BE"}),
            400, "accountType")

    # Identical creates at the same moment. Subscriptions may share a name (their customers' names take a
    # counter): all eight are created. A template's name is its subscription's once: one is, the others are told.
    tenant = await world.create_tenant(name="Race")
    answers = await asyncio.gather(*(call(live, "POST", f"{BASE}/tenants/{tenant['uuid']}/subscriptions", headers=headers,
                                          body={"name": "same", "billingId": "B"}) for _ in range(8)))
    assert [a.status for a in answers] == [200] * 8, [(a.status, a.body) for a in answers]
    assert len({a.body["id"] for a in answers}) == 8
    answers = await asyncio.gather(*(call(live, "POST", f"{path}/msteams/templates", headers=headers,
                                          body={"name": "same", "productKey": "same"}) for _ in range(8)))
    statuses = sorted(a.status for a in answers)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 400, 409}, [(a.status, a.body) for a in answers]
    for answer in answers:
        if answer.status != 201:
            fusion(answer, answer.status, "")


@pytest.mark.any_backend  # refused before any database read
async def test_basic_credentials_that_are_not_ascii(client) -> None:  # type: ignore[no-untyped-def]
    """A third campaign's find (a 500 before): HTTP Basic credentials of bytes that are no ASCII are no client."""
    for credentials in ("é", "\xff\xfe=="):
        answer = await client.post("/oauth/token", headers={"Authorization": f"Basic {credentials}".encode("latin-1")},
                                   data={"grant_type": "password", "username": "x", "password": "y"})
        assert answer.status_code in (400, 401) and answer.status_code != 500, answer.text


async def test_ambiguous_and_compressed_bodies(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A fourth campaign's finds: a key twice in one JSON object was taken silently (the last one; other parsers
    take the first), a gzip body got a vague 400 from the JSON parser, and a form field of bytes that are no UTF-8
    was stored with replacement characters. Each is refused, named, before anything reads it."""
    sub = await onboard(client, live, organisation)
    path, headers = sub.path, sub.headers
    fusion(await call(live, "POST", f"{path}/locations", raw=b'{"city": "Ghent", "street": "a", "city": "Liege"}',
                      headers=headers), 400, 'the key "city" appears twice in one JSON object')
    fusion(await call(live, "PUT", f"{path}/licenses", raw=b'[{"a": 1}, {"b": 2, "b": 3}]', headers=headers),
           400, 'the key "b" appears twice')
    ctt = bearer(await token_for(client, organisation.resellers[0]))
    spring(await call(live, "POST", "/enterprise/configureUser", raw=b'{"pbxUserId": "1", "pbxUserId": "2"}',
                      headers=ctt), 400, 'the key "pbxUserId" appears twice')
    import gzip
    spring(await call(live, "POST", "/enterprise/configureUser", raw=gzip.compress(b'{"pbxUserId": "1"}'),
                      headers=ctt | {"Content-Encoding": "gzip"}), 415, "Content-Encoding: gzip is not accepted")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = await asyncio.to_thread(_exchange, live.url, "POST", "/oauth/token",
                                     b"grant_type=password&username=%FFadmin&password=x", form)
    assert answer.status == 400 and 'form field "username": not valid UTF-8' in answer.body["error_description"], answer.body
    page = await client.post("/console/login", content=b"username=%C3%28&password=x", headers=form)
    assert page.status_code == 400 and "text/html" in page.headers["content-type"], page.text
    assert "form field &#34;username&#34;: not valid UTF-8 text" in page.text or 'form field "username": not valid UTF-8 text' in page.text
    # Well-formed bodies go on as before: keys of the same name in different objects, a UTF-8 form.
    nested = await call(live, "PUT", f"{path}/licenses", raw=b'{"msTeamsUsers": {"assigned": 1, "msTeamsUsers": 2}}',
                        headers=headers)
    assert "twice" not in json.dumps(nested.body), nested.body
    good = await asyncio.to_thread(_exchange, live.url, "POST", "/oauth/token",
                                   "grant_type=password&username=%C3%A9&password=x".encode(), form)
    assert good.status in (400, 401) and "UTF-8" not in json.dumps(good.body), good.body


async def test_a_fourth_campaigns_smaller_finds(client, live, organisation, ctt) -> None:  # type: ignore[no-untyped-def]
    """configureUser stored a userType of any length (its column holds 40) and with NUL; a JSON body posted to
    /restricted/handleResponse was told to send grant_type=password, /oauth/token's hint."""
    for user_type in ("x" * 41, "a\x00b"):
        spring(await call(live, "POST", "/enterprise/configureUser", body=configure_user_body(userType=user_type),
                          headers=ctt), 400, "userType")
    answer = await client.post("/restricted/handleResponse", json={"code": "x", "state": "y"})
    assert answer.status_code == 400 and "form fields" in answer.text and "grant_type" not in answer.text, answer.text


@pytest.mark.any_backend  # refused before any database read
async def test_malformed_json_is_named_on_every_family(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A security probe's find: on routes whose body FastAPI parses, bytes that are no UTF-8 and a 5,000-digit number
    got "There was an error parsing the body", a broken body no position, and NaN or 1e999 (not JSON) were taken.
    Each is refused before any route reads it, saying what and where, in each family's envelope."""
    ctt = bearer(await token_for(client, organisation.resellers[0])) | {"Content-Type": "application/json"}
    for raw, named in ((b'{"a": "\xff"}', "not valid UTF-8 text (byte 7)"),
                       (b'{"a": ', "Malformed JSON request body: Expecting value: line 1 column 7"),
                       (b'{"a": "x\x01"}', "Invalid control character at: line 1 column 9"),
                       (b'{"v": 1e999}', "1e999 is out of range"), (b'{"v": NaN}', "NaN is not a JSON value"),
                       (b'{"v": ' + b"9" * 5000 + b"}", "4300 digits")):
        spring(await call(live, "POST", "/reseller/newEnterprise", raw=raw, headers=ctt), 400, named)
        spring(await call(live, "POST", "/api/teamsvoice/v1/tenants/x/apply", raw=raw, headers=ctt), 400, named)
        fusion(await call(live, "POST", "/api/v01/draas/draas_v1/tenants", raw=raw,
                          headers={"Content-Type": "application/json"}), 400, named)
