"""Graph JSON batching, Graph-like throttling and run-time fault injection over HTTPS."""

import time
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture()
def faults(http: httpx.Client) -> Iterator[callable]:
    def configure(**config: object) -> dict:
        response = http.put("/_admin/faults", json=config)
        assert response.status_code == 200, response.text
        return response.json()

    yield configure
    assert http.delete("/_admin/faults").json()["config"] == {"latencyMs": 0, "errorRate5xx": 0, "errorStatus": 503,
                                                              "limits": "off", "profile": "none"}


def test_batch_runs_requests_with_dependencies(graph: httpx.Client, tenant) -> None:
    users = graph.get("/users?$top=2&$filter=usageLocation eq 'US'").json()["value"]
    body = {"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{users[0]['id']}?$select=id,displayName"},
        {"id": "2", "method": "PATCH", "url": f"/users/{users[1]['id']}", "headers": {"Content-Type": "application/json"},
         "body": {"jobTitle": "Batch Title"}},
        {"id": "3", "method": "GET", "url": f"/users/{users[1]['id']}?$select=jobTitle", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/users/ghost@contoso.example"},
        {"id": "5", "method": "GET", "url": "/domains", "dependsOn": ["4"]},
        {"id": "6", "method": "GET", "url": "/organization", "dependsOn": ["5"]},
    ]}
    response = graph.post("/$batch", json=body)
    assert response.status_code == 200, response.text
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert [r["id"] for r in response.json()["responses"]] == ["1", "2", "3", "4", "5", "6"]
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["displayName"] == users[0]["displayName"]
    assert by_id["2"]["status"] == 204 and "body" not in by_id["2"]
    assert by_id["3"]["body"]["jobTitle"] == "Batch Title"
    assert by_id["4"]["status"] == 404 and by_id["4"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["5"]["status"] == 424 and by_id["6"]["status"] == 424
    assert by_id["1"]["headers"]["content-type"].startswith("application/json")


def test_batch_requests_answer_errors_as_graph_does_alone(graph: httpx.Client) -> None:
    """A request of a batch runs through the routes alone (not the middleware stack, which the batch went through):
    a path no route knows, a method its route does not take and a bad query answer inside the batch as they do alone."""
    requests = [("GET", "/nonexistent/thing"), ("DELETE", "/domains"), ("GET", "/users?$top=abc")]
    alone = [graph.request(method, url) for method, url in requests]
    body = {"requests": [{"id": str(i), "method": method, "url": url} for i, (method, url) in enumerate(requests)]}
    batch = graph.post("/$batch", json=body)
    assert batch.status_code == 200, batch.text
    answers = batch.json()["responses"]
    assert [a["status"] for a in answers] == [r.status_code for r in alone] == [400, 405, 400]
    assert [a["body"]["error"]["code"] for a in answers] == [r.json()["error"]["code"] for r in alone]
    assert "segment 'thing'" in answers[0]["body"]["error"]["message"]


def test_batch_refusals(graph: httpx.Client) -> None:
    many = {"requests": [{"id": str(i), "method": "GET", "url": "/domains"} for i in range(21)]}
    assert graph.post("/$batch", json=many).status_code == 400
    twenty = {"requests": [{"id": str(i), "method": "GET", "url": "/domains"} for i in range(20)]}
    assert [r["status"] for r in graph.post("/$batch", json=twenty).json()["responses"]] == [200] * 20
    duplicate = {"requests": [{"id": "a", "method": "GET", "url": "/domains"}, {"id": "A", "method": "GET", "url": "/users"}]}
    refused = graph.post("/$batch", json=duplicate)
    assert refused.status_code == 400 and "unique" in refused.json()["error"]["message"]
    unknown = {"requests": [{"id": "1", "method": "GET", "url": "/domains", "dependsOn": ["9"]}]}
    assert graph.post("/$batch", json=unknown).status_code == 400
    absolute = {"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]}
    assert graph.post("/$batch", json=absolute).status_code == 400
    no_type = {"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {"displayName": "x"}}]}
    assert graph.post("/$batch", json=no_type).status_code == 400
    nested = {"requests": [{"id": "1", "method": "POST", "url": "/$batch", "headers": {"Content-Type": "application/json"}, "body": {"requests": []}}]}
    assert graph.post("/$batch", json=nested).json()["responses"][0]["status"] == 400


def test_throttle_budget_per_app_and_tenant(faults, graph: httpx.Client, pwsh) -> None:
    # A token every 2 s: the six requests below find the bucket empty if they come within 2 s of the first (not 0.5 s,
    # which a loaded machine's requests can take).
    faults(throttle={"requestsPerSecond": 0.5, "burst": 3})
    statuses = [graph.get("/domains").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = graph.get("/domains")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    cmdlet = pwsh("Get-CsOnlinePstnUsage")  # its own token, but the same (app, tenant) budget
    assert cmdlet.status_code == 429 and cmdlet.json()["error"]["errorId"] == "TooManyRequests"
    time.sleep(2.1)
    assert graph.get("/domains").status_code == 200
    batch = graph.post("/$batch", json={"requests": [{"id": str(i), "method": "GET", "url": "/domains"} for i in range(5)]})
    assert batch.status_code == 200
    assert 429 in [r["status"] for r in batch.json()["responses"]]
    throttled_item = next(r for r in batch.json()["responses"] if r["status"] == 429)
    assert "retry-after" in {name.lower() for name in throttled_item["headers"]}


def test_storm_latency_and_server_errors(faults, http: httpx.Client, graph: httpx.Client, pwsh) -> None:
    view = faults(storm429={"count": 3, "retryAfterSeconds": 2}, latencyMs=50)
    assert view["remaining"]["storm429"] == 3
    started = time.monotonic()
    responses = [graph.get("/domains") for _ in range(3)] + [pwsh("Get-CsOnlinePstnUsage")]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert responses[0].headers["retry-after"] == "2"
    assert time.monotonic() - started >= 0.2  # four requests, 50 ms each
    assert http.get("/_admin/tenants").status_code == 200  # the admin API is never faulted
    assert http.get("/_admin/faults").json()["injected"]["storm429"] == 3

    faults(errorRate5xx=1.0, seed=7)
    before = graph.get("/users?$top=1&$filter=usageLocation eq 'BE'")
    assert before.status_code == 503 and before.json()["error"]["code"] == "serviceNotAvailable"
    assert pwsh("Get-CsOnlinePstnUsage").status_code == 503
    faults(errorRate5xx=0.5, seed=42)
    first = [graph.get("/domains").status_code for _ in range(20)]
    faults(errorRate5xx=0.5, seed=42)
    second = [graph.get("/domains").status_code for _ in range(20)]
    assert first == second and 503 in first and 200 in first  # seeded draws are reproducible


def test_server_errors_change_nothing(faults, graph: httpx.Client) -> None:
    user = graph.get("/users?$top=1&$filter=usageLocation eq 'GB'").json()["value"][0]
    faults(errorRate5xx=1.0, errorStatus=500)
    assert graph.patch(f"/users/{user['id']}", json={"jobTitle": "Never Written"}).status_code == 500
    faults()
    assert graph.get(f"/users/{user['id']}?$select=jobTitle").json()["jobTitle"] != "Never Written"


def test_cmdlet_timeout(faults, http: httpx.Client, pwsh, tenant) -> None:
    faults(cmdletTimeout={"cmdlet": "Set-CsOnlinePstnUsage", "count": 1, "seconds": 0.3})
    started = time.monotonic()
    timed_out = pwsh("Set-CsOnlinePstnUsage", Usage={"Add": "Timeout-Usage"})
    assert timed_out.status_code == 504 and timed_out.json()["error"]["errorId"] == "OperationTimeout"
    assert time.monotonic() - started >= 0.3
    assert "Timeout-Usage" not in pwsh("Get-CsOnlinePstnUsage").json()["output"][0]["Usage"]
    assert pwsh("Set-CsOnlinePstnUsage", Usage={"Add": "Timeout-Usage"}).status_code == 200  # count exhausted

    faults(cmdletTimeout={"cmdlet": "Set-CsOnlinePstnUsage", "count": 1, "seconds": 0.1, "afterApply": True})
    assert pwsh("Set-CsOnlinePstnUsage", Usage={"Remove": "Timeout-Usage"}).status_code == 504
    assert "Timeout-Usage" not in http.get(f"/_admin/tenants/{tenant.tenant_id}/voice").json()["usages"]


def test_fault_configuration_is_validated(http: httpx.Client) -> None:
    assert http.put("/_admin/faults", json={"errorRate5xx": 2}).status_code == 400
    assert http.put("/_admin/faults", json={"throttle": {"requestsPerSecond": 0, "burst": 1}}).status_code == 400
    assert http.put("/_admin/faults", json={"errorStatus": 418}).status_code == 400
    assert http.put("/_admin/faults", json={"bogus": 1}).status_code == 400
    assert http.get("/_admin/faults").json()["remaining"] == {"storm429": 0, "cmdletTimeout": 0}
