"""A client's bad input is a 4xx naming the problem, refused before anything is stored, on every surface of the
emulator (Graph, its $batch, the cmdlet endpoint): never a 500, never a value stored that breaks later reads.

These tests work in a tenant of their own: they try to store what must not be stored, and the other modules
count what the shared tenant holds."""

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from emulator_support import (
    ADMIN_PASSWORD,
    TEAMS_ADMIN_API,
    App,
    Browser,
    app_token,
    authorize_url,
    cmdlet_invoker,
    redirect_params,
    seed_tenant,
)

from m365_emulator.server import EmulatorServer

NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"
CALL_QUEUE = "11cd3e2e-fccb-42ad-ad00-878b93575e07"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"  # ENTERPRISEPACK
MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
DOMAIN = "inputs.example"


@dataclass
class Own:
    graph: httpx.Client
    pwsh: Callable[..., httpx.Response]
    users: list[dict]
    http: httpx.Client
    cmdlet_token: str

    def cmdlet_body(self, body: bytes) -> httpx.Response:
        """The cmdlet endpoint given `body` as it is (the invoker sends JSON it encodes itself)."""
        return self.http.post("/_powershell/invoke", content=body,
                              headers={**JSON, "Authorization": f"Bearer {self.cmdlet_token}"})


@pytest.fixture(scope="module")
def own(http: httpx.Client, emulator: EmulatorServer, consented_app: App) -> Iterator[Own]:
    tenant = seed_tenant(http, DOMAIN, user_count=6)
    with httpx.Client(verify=str(emulator.ca_cert_path), timeout=10) as client:
        url = authorize_url(emulator.url, tenant.tenant_id, consented_app, "openid offline_access Directory.ReadWrite.All")
        assert "code" in redirect_params(Browser(client).sign_in_and_consent(url, tenant.admin, ADMIN_PASSWORD))
    token = app_token(http, tenant, consented_app)
    with httpx.Client(base_url=f"{emulator.url}/v1.0", verify=str(emulator.ca_cert_path), timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as graph:
        users = graph.get("/users?$filter=usageLocation eq 'US'").json()["value"]
        yield Own(graph, cmdlet_invoker(http, tenant, consented_app), [u for u in users if u["id"] != tenant.admin_id],
                  http, app_token(http, tenant, consented_app, resource=TEAMS_ADMIN_API))


def _raw(text: str) -> bytes:
    """JSON text as a client may send it: a lone surrogate as its escape, or as its (invalid) UTF-8 bytes."""
    return text.encode("utf-8", "surrogatepass")


def _json(value: object) -> bytes:
    return json.dumps(value).encode()  # (\ud800 escaped, as every JSON encoder writes it)


JSON = {"Content-Type": "application/json"}


def _graph_error(response: httpx.Response, status: int = 400, code: str = "Request_BadRequest") -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


def _cmdlet_error(response: httpx.Response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()["error"]


def _ok(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["output"]


def _new_user(own: Own, **properties: object) -> dict:
    name = f"u{uuid.uuid4().hex[:10]}"
    created = own.graph.post("/users", json={"accountEnabled": True, "displayName": name, "mailNickname": name,
                                              "passwordProfile": {"password": "P@ssw0rd-1"}, "usageLocation": "US",
                                              "userPrincipalName": f"{name}@{DOMAIN}", **properties})
    assert created.status_code == 201, created.text
    return created.json()


# --- 1. lone surrogates ------------------------------------------------------------------------------------------


def test_graph_refuses_a_lone_surrogate_before_storing_it(own: Own) -> None:
    user = _new_user(own, jobTitle="Before")
    for body in (_json({"jobTitle": "\ud800"}), _json({"jobTitle": "a\udfffb"}), _raw('{"jobTitle": "\ud800"}'),
                 _json({"\udc00": "x"}), _json({"businessPhones": ["+1 \ud800"]})):
        message = _graph_error(own.graph.patch(f"/users/{user['id']}", content=body, headers=JSON))
        assert "surrogate" in message
    assert own.graph.get(f"/users/{user['id']}").json()["jobTitle"] == "Before"
    assert own.graph.get("/users").status_code == 200
    # A surrogate pair is a character like any other (JSON encoders escape it so): taken, and read back.
    assert own.graph.patch(f"/users/{user['id']}", content=_json({"jobTitle": "Before \U0001f600"}), headers=JSON).status_code == 204
    assert own.graph.get(f"/users/{user['id']}").json()["jobTitle"] == "Before \U0001f600"

    upn = f"s{uuid.uuid4().hex[:8]}@{DOMAIN}"
    created = own.graph.post("/users", content=_json({
        "accountEnabled": True, "displayName": "\ud800", "mailNickname": upn.split("@")[0],
        "passwordProfile": {"password": "P@ssw0rd-1"}, "userPrincipalName": upn}), headers=JSON)
    assert "surrogate" in _graph_error(created)
    _graph_error(own.graph.get(f"/users/{upn}"), 404, "Request_ResourceNotFound")  # not created

    # In a $batch: the whole batch is refused before any of its requests runs.
    batch = own.graph.post("/$batch", content=_json({"requests": [
        {"id": "1", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "Batched"}},
        {"id": "2", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "\ud800"}},
    ]}), headers=JSON)
    assert batch.status_code == 400, batch.text
    assert own.graph.get(f"/users/{user['id']}").json()["jobTitle"] == "Before \U0001f600"  # the first did not run


def test_cmdlets_refuse_a_lone_surrogate_before_storing_it(own: Own) -> None:
    def raw(cmdlet: str, **parameters: object) -> httpx.Response:
        return own.cmdlet_body(_json({"cmdlet": cmdlet, "parameters": parameters}))

    _ok(own.pwsh("New-CsOnlinePSTNGateway", Fqdn=f"sbc.{DOMAIN}", SipSignalingPort=5061, Description="Before"))
    assert "surrogate" in _cmdlet_error(raw("Set-CsOnlinePSTNGateway", Identity=f"sbc.{DOMAIN}", Description="\ud800"))["message"]
    assert _ok(own.pwsh("Get-CsOnlinePSTNGateway", Identity=f"sbc.{DOMAIN}"))[0]["Description"] == "Before"

    _cmdlet_error(raw("Set-CsOnlinePstnUsage", Usage={"Add": ["\udc00"]}))
    assert "\udc00" not in json.dumps(_ok(own.pwsh("Get-CsOnlinePstnUsage")))

    upn = f"ra-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    _cmdlet_error(raw("New-CsOnlineApplicationInstance", UserPrincipalName=upn, ApplicationId=CALL_QUEUE, DisplayName="\ud800"))
    _ok(own.pwsh("Get-CsOnlineApplicationInstance"))
    assert _cmdlet_error(own.pwsh("Get-CsOnlineUser", Identity=upn))["category"] == "ObjectNotFound"  # not created


# --- 2, 6. $batch requests it cannot send; page sizes -------------------------------------------------------------


@pytest.fixture()
def microsoft_limits(http: httpx.Client) -> Iterator[None]:
    """Microsoft's request budgets on (they price each request: $top is read there first)."""
    assert http.put("/_admin/faults", json={"limits": "microsoft"}).status_code == 200
    yield
    assert http.delete("/_admin/faults").status_code == 200


def test_batch_refuses_requests_it_cannot_send_before_running_any(own: Own) -> None:
    user = _new_user(own, jobTitle="Before")
    write = {"id": "1", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "Written"}}
    for bad in ({"url": "/users?$top=1", "headers": {"X-A": "\u20ac"}},   # not ISO-8859-1
                {"url": "/users?$top=1", "headers": {"X-\u20ac": "a"}},
                {"url": "/users?$top=1", "headers": {"X-A": "a\r\nX-B: b"}},
                {"url": "//elsewhere.example/users"}):
        response = own.graph.post("/$batch", json={"requests": [write, {"id": "2", "method": "GET", **bad}]})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["code"] == "BadRequest"
    assert own.graph.get(f"/users/{user['id']}").json()["jobTitle"] == "Before"  # nothing ran


def test_page_sizes_are_ascii_digits(own: Own, microsoft_limits: None) -> None:
    for top in ("\u00b2", "\u0661\u0660", "1\u00b2"):
        message = _graph_error(own.graph.get("/users", params={"$top": top}), code="Request_UnsupportedQuery")
        assert message.startswith("Invalid page size specified")
    assert len(own.graph.get("/users", params={"$top": "3"}).json()["value"]) == 3

    user = _new_user(own, jobTitle="Before")
    batch = own.graph.post("/$batch", json={"requests": [
        {"id": "1", "method": "PATCH", "url": f"/users/{user['id']}", "headers": JSON, "body": {"jobTitle": "Written"}},
        {"id": "2", "method": "GET", "url": "/users?$top=\u00b2"}]})
    assert batch.status_code == 200, batch.text
    answers = {a["id"]: a for a in batch.json()["responses"]}
    assert answers["1"]["status"] == 204
    assert answers["2"]["status"] == 400 and answers["2"]["body"]["error"]["code"] == "Request_UnsupportedQuery"


# --- 3, 10. NaN, Infinity, depth ----------------------------------------------------------------------------------


def test_json_bodies_without_nan_infinity_or_deep_nesting(own: Own) -> None:
    user = _new_user(own, jobTitle="Before")
    deep = b"[" * 50_000 + b"]" * 50_000
    for body in (b'{"jobTitle": NaN}', b'{"jobTitle": "a", "x": Infinity}', b'{"jobTitle": -Infinity}',
                 b'{"jobTitle": 1e400}', b'{"jobTitle": ' + deep + b"}",
                 b'{"jobTitle": ' + b"[" * 101 + b"]" * 101 + b"}"):
        _graph_error(own.graph.patch(f"/users/{user['id']}", content=body, headers=JSON))
    assert own.graph.get(f"/users/{user['id']}").json()["jobTitle"] == "Before"
    _graph_error(own.graph.post("/$batch", content=b'{"requests": ' + deep + b"}", headers=JSON), code="Request_BadRequest")

    assign = (b'{"telephoneNumber": "+12065550301", "assignmentTargetId": "%s", "numberType": "directRouting", '
              b'"locationId": Infinity}' % user["id"].encode())
    _graph_error(own.graph.post(f"{NUMBERS}/assignNumber", content=assign, headers=JSON))
    assert own.graph.get(NUMBERS).status_code == 200

    for body in (b'{"cmdlet": "Get-CsOnlineUser", "parameters": ' + deep + b"}",
                 b'{"cmdlet": "New-CsOnlinePSTNGateway", "parameters": {"Fqdn": "sbc-nan.inputs.example", '
                 b'"SipSignalingPort": NaN}}'):
        assert _cmdlet_error(own.cmdlet_body(body))["errorId"] == "InvalidRequest"


# --- 4. assignNumber's locationId ---------------------------------------------------------------------------------


def test_assign_number_takes_a_location_of_the_tenant_only(own: Own) -> None:
    address = _ok(own.pwsh("New-CsOnlineLisCivicAddress", CompanyName="Inputs", CountryOrRegion="US"))[0]
    target = own.users[0]["id"]
    assign = {"telephoneNumber": "+12065550400", "assignmentTargetId": target, "numberType": "directRouting"}
    for location in (["x"], 5, {"a": 1}, True):
        _graph_error(own.graph.post(f"{NUMBERS}/assignNumber", json={**assign, "locationId": location}))
    missing = _graph_error(own.graph.post(f"{NUMBERS}/assignNumber", json={**assign, "locationId": str(uuid.uuid4())}))
    assert "was not found in the tenant" in missing
    unknown = _graph_error(own.graph.post(f"{NUMBERS}/assignNumber", json={**assign, "colour": "red"}))
    assert "'colour' does not exist" in unknown
    # What was refused stored nothing that breaks the civic addresses' cmdlets.
    assert [a["CivicAddressId"] for a in _ok(own.pwsh("Get-CsOnlineLisCivicAddress"))] == [address["CivicAddressId"]]

    accepted = own.graph.post(f"{NUMBERS}/assignNumber", json={**assign, "locationId": address["DefaultLocationId"]})
    assert accepted.status_code == 202, accepted.text
    assert own.graph.get(accepted.headers["location"]).json()["status"] == "succeeded"
    held = [n for n in own.graph.get(NUMBERS).json()["value"] if n["telephoneNumber"] == "+12065550400"]
    assert held[0]["locationId"] == address["DefaultLocationId"]
    assert _ok(own.pwsh("Get-CsOnlineLisCivicAddress"))[0]["NumberOfTelephoneNumbers"] == 1
    in_use = _cmdlet_error(own.pwsh("Remove-CsOnlineLisCivicAddress", CivicAddressId=address["CivicAddressId"]))
    assert "cannot be removed" in in_use["message"]

    update = own.graph.post(f"{NUMBERS}/updateNumber", json={"telephoneNumber": "+12065550400", "locationId": "nowhere"})
    assert "was not found in the tenant" in _graph_error(update)


# --- 5. $filter lambdas on single values --------------------------------------------------------------------------


def test_filter_any_needs_a_collection(own: Own) -> None:
    user = _new_user(own, businessPhones=["+1 425 555 0100"])
    for expression in ("displayName/any(x:x/a eq 'b')", "accountEnabled/any(x:x eq 'a')",
                       "businessPhones/any(x:x/z eq 'a')"):
        _graph_error(own.graph.get("/users", params={"$filter": expression}), code="Request_UnsupportedQuery")
    _graph_error(own.graph.get("/groups", params={"$filter": "mailEnabled/any(x:x eq 'b')"}),
                 code="Request_UnsupportedQuery")
    found = own.graph.get("/users", params={"$filter": "businessPhones/any(x:x eq '+1 425 555 0100')"}).json()["value"]
    assert [u["id"] for u in found] == [user["id"]]

    batch = own.graph.post("/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": "/users?$filter=displayName/any(x:x/a eq 'b')"}]})
    assert batch.status_code == 200, batch.text
    assert batch.json()["responses"][0]["status"] == 400


# --- 7. $skiptoken ------------------------------------------------------------------------------------------------


def test_skiptoken_is_a_token_the_emulator_gave(own: Own) -> None:
    def token(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    for text in ('{"o": 1e400}', '{"o": -5}', '{"o": true}', '{"o": 1.5}', '{"o": NaN}', "[" * 5000):
        message = _graph_error(own.graph.get("/users", params={"$top": "2", "$skiptoken": token(text)}))
        assert "page token" in message
    first = own.graph.get("/users", params={"$top": "2"}).json()
    following = own.graph.get(first["@odata.nextLink"]).json()["value"]
    assert len(following) == 2 and following[0]["id"] not in {u["id"] for u in first["value"]}


# --- 8, 9. assignLicense's collections; required user properties ---------------------------------------------------


def test_assign_license_checks_its_collections_before_changing_anything(own: Own) -> None:
    user = _new_user(own)
    for body in ({"addLicenses": [], "removeLicenses": [{}]}, {"addLicenses": [], "removeLicenses": [[1]]},
                 {"addLicenses": [], "removeLicenses": [5]},
                 {"addLicenses": [{"skuId": E3, "disabledPlans": 5}], "removeLicenses": []},
                 {"addLicenses": [{"skuId": E3, "disabledPlans": "abc"}], "removeLicenses": []},
                 {"addLicenses": [{"skuId": E3, "disabledPlans": [{}]}], "removeLicenses": []},
                 {"addLicenses": [{"skuId": E3, "disabledPlans": ["not-a-guid"]}], "removeLicenses": []}):
        _graph_error(own.graph.post(f"/users/{user['id']}/assignLicense", json=body))
    details = own.graph.get(f"/users/{user['id']}/licenseDetails")
    assert details.status_code == 200 and details.json()["value"] == []

    plans = own.graph.get("/subscribedSkus").json()["value"]
    plan = next(p["servicePlanId"] for s in plans if s["skuId"] == E3 for p in s["servicePlans"])
    assigned = own.graph.post(f"/users/{user['id']}/assignLicense",
                              json={"addLicenses": [{"skuId": E3, "disabledPlans": [plan]}], "removeLicenses": []})
    assert assigned.status_code == 200, assigned.text
    detail = own.graph.get(f"/users/{user['id']}/licenseDetails").json()["value"]
    assert [d["skuId"] for d in detail] == [E3] and plan not in [p["servicePlanId"] for p in detail[0]["servicePlans"]]


def test_user_principal_name_and_mail_nickname_cannot_be_cleared(own: Own) -> None:
    user = _new_user(own)
    for name in ("userPrincipalName", "mailNickname"):
        message = _graph_error(own.graph.patch(f"/users/{user['id']}", json={name: None}))
        assert f"'{name}'" in message
    fetched = own.graph.get(f"/users/{user['id']}?$select=userPrincipalName,mailNickname").json()
    assert fetched["userPrincipalName"] == user["userPrincipalName"] and fetched["mailNickname"]
    assert own.graph.get("/users").status_code == 200


# --- 11, 12. cmdlet integers; phone numbers ----------------------------------------------------------------------


def test_integer_parameters_are_ascii_digits_within_int32(own: Own) -> None:
    for port in ("\u00b2", "\u0661\u0660", "--5", "9" * 5000, "5061x", 2**31, "2147483648"):
        refused = _cmdlet_error(own.pwsh("New-CsOnlinePSTNGateway", Fqdn=f"sbc-int.{DOMAIN}", SipSignalingPort=port))
        assert refused["errorId"] == "ParameterArgumentTransformationError,New-CsOnlinePSTNGateway", refused
    assert _cmdlet_error(own.pwsh("Get-CsOnlinePSTNGateway", Identity=f"sbc-int.{DOMAIN}"))["category"] == "ObjectNotFound"
    created = _ok(own.pwsh("New-CsOnlinePSTNGateway", Fqdn=f"sbc-int.{DOMAIN}", SipSignalingPort=" 5067 "))[0]
    assert created["SipSignalingPort"] == 5067


def test_phone_numbers_are_ascii_digits(own: Own) -> None:
    target = own.users[1]["id"]
    arabic = "+\u0661\u0662\u0660\u0666\u0665\u0665\u0665\u0660\u0661\u0669\u0669"  # +12065550199 in Arabic-Indic
    refused = _cmdlet_error(own.pwsh("Set-CsPhoneNumberAssignment", Identity=target, PhoneNumber=arabic,
                                     PhoneNumberType="DirectRouting"))
    assert "not in a valid format" in refused["message"]
    _graph_error(own.graph.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": arabic, "assignmentTargetId": target, "numberType": "directRouting"}))
    assert own.graph.get(f"/admin/teams/userConfigurations/{target}").json()["telephoneNumbers"] == []


# --- a defect's answer ---------------------------------------------------------------------------------------------


async def test_an_unexpected_failure_answers_in_the_surfaces_error_format(tmp_path: Path) -> None:
    """A defect under /v1.0 answers Graph's error envelope (500 InternalServerError), which a client reads as it
    reads Microsoft's; the cmdlet endpoint its own; not Starlette's text/plain."""
    from m365_emulator.app import create_app
    from m365_emulator.settings import EmulatorSettings

    app = create_app(EmulatorSettings(data_dir=tmp_path, limits="off"))

    async def defect() -> None:
        raise RuntimeError("a defect")

    app.add_api_route("/v1.0/defect", defect)
    app.add_api_route("/_admin/defect", defect)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://emulator") as client:
        graph = await client.get("/v1.0/defect", headers={"client-request-id": "abc"})
        assert graph.status_code == 500 and graph.headers["content-type"] == "application/json"
        error = graph.json()["error"]
        assert error["code"] == "InternalServerError" and error["innerError"]["client-request-id"] == "abc"
        assert "a defect" not in graph.text
        admin = await client.get("/_admin/defect")
        assert admin.status_code == 500
